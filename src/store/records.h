// Typed cluster records and where they live in the store (the key layout in
// docs/state.md). Every record is a JSON object with "schema" (its format version) and
// "kind"; a reader refuses a record written by a newer schema instead of misreading it,
// so old binaries fail loudly during a rolling upgrade.
//
// Routers, workers, the KMS and the controller read and write these; the store itself
// only sees opaque bytes.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "base/status.h"

namespace supercluster::store {

// The schema version this binary writes and the newest it can read.
inline constexpr int kRecordSchemaVersion = 1;

// Key layout. Every key starts with the cluster prefix, so several clusters could share
// one etcd.
namespace keys {
inline constexpr const char* kRoot = "/sc/v1/";
std::string Region(const std::string& region);
std::string InstancePrefix(const std::string& region);  // "" region: every region
std::string Instance(const std::string& region, const std::string& instance_id);
std::string ModelDeployment(const std::string& model, const std::string& region);
std::string Tenant(const std::string& tenant_id);
std::string Policy(const std::string& policy_id);
std::string RouterPrefix(const std::string& region);
std::string Router(const std::string& region, const std::string& router_id);
std::string Election(const std::string& name);
}  // namespace keys

struct Region {
  std::string name;                // "us-east-1"
  std::string display_name;
  std::vector<std::string> peers;  // regions to spill over to, in order of preference
  bool accepting = true;           // false: drained by an operator
};

// The lifecycle an instance goes through; never skips a step forward, and only a verified
// wipe lets an instance serve again (see docs/architecture.md).
enum class InstanceState {
  kLaunching,
  kLoading,
  kAttesting,
  kServing,
  kDraining,
  kWiping,
  kVerified,
  kFailed,
};
const char* InstanceStateName(InstanceState state);
base::Result<InstanceState> ParseInstanceState(const std::string& text);

struct Instance {
  std::string id;
  std::string region;
  InstanceState state = InstanceState::kLaunching;
  std::string address;           // where its worker API listens
  std::string model;
  int64_t capacity = 0;          // concurrent sequences it can run
  std::string attestation_b64;   // its current attestation document, base64
  std::string capacity_type;     // "reserved" or "on-demand"
  int64_t updated_unix_ms = 0;
};

struct ModelDeployment {
  std::string model;
  std::string region;
  std::string manifest_digest;  // content address of the model manifest
  int64_t desired_instances = 0;
};

struct Tenant {
  std::string id;
  std::string display_name;
  std::vector<std::string> api_key_hashes;  // SHA-256 hex of each API key; never the key
  std::string policy_id;
  double requests_per_second = 0;
  int64_t max_concurrent_requests = 0;
  std::vector<std::string> allowed_regions;  // empty: any region (residency policy)
  bool allow_plaintext = false;
};

struct Policy {
  std::string id;
  // Accepted measurement sets: each is PCR index -> hex digest.
  std::vector<std::map<int, std::string>> measurements;
  bool allow_debug = false;  // all-zero PCRs (debug enclaves)
  int64_t max_document_age_seconds = 300;
};

struct RouterEndpoint {
  std::string id;
  std::string region;
  std::string tier;  // "regional" or "global"
  std::string address;
};

// JSON encoding. Decoding errors name the key the bytes came from (`source`).
std::string Encode(const Region& record);
std::string Encode(const Instance& record);
std::string Encode(const ModelDeployment& record);
std::string Encode(const Tenant& record);
std::string Encode(const Policy& record);
std::string Encode(const RouterEndpoint& record);

base::Result<Region> DecodeRegion(const std::string& bytes, const std::string& source);
base::Result<Instance> DecodeInstance(const std::string& bytes, const std::string& source);
base::Result<ModelDeployment> DecodeModelDeployment(const std::string& bytes,
                                                    const std::string& source);
base::Result<Tenant> DecodeTenant(const std::string& bytes, const std::string& source);
base::Result<Policy> DecodePolicy(const std::string& bytes, const std::string& source);
base::Result<RouterEndpoint> DecodeRouterEndpoint(const std::string& bytes,
                                                  const std::string& source);

}  // namespace supercluster::store
