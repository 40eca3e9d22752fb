// The router's admission of tenants: who is calling (API key -> tenant), and whether this
// request may go on under the tenant's limits (requests per second, concurrent requests,
// request size, allowed regions, plaintext allowed). It reads tenants from a watched cache
// of the store, so it never touches the store per request.
//
// Threading: every method is thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "store/prefix_cache.h"
#include "store/records.h"

namespace supercluster::router {

// SHA-256 of an API key, lower-case hex: what tenant records store.
std::string HashApiKey(std::string_view api_key);

struct TenantGateOptions {
  // Used when a tenant record gives 0 for its limit.
  double default_requests_per_second = 100;
  int64_t default_max_concurrent_requests = 64;
  uint64_t max_request_bytes = 1 << 20;  // body size over which a request is refused
  // The clock the rate limit reads; tests inject one. Empty: std::chrono::steady_clock.
  std::function<std::chrono::steady_clock::time_point()> clock;
};

// Held while a request runs; releasing it (destroying) frees the concurrency slot.
class AdmissionTicket {
 public:
  virtual ~AdmissionTicket() = default;
};

struct Admission {
  store::Tenant tenant;
  std::unique_ptr<AdmissionTicket> ticket;
};

class TenantGate {
 public:
  // `tenants` follows keys::Tenant("") (every tenant). Precondition: it outlives the gate.
  TenantGate(const store::PrefixCache& tenants, TenantGateOptions options);
  ~TenantGate();

  // From an Authorization header value ("Bearer KEY"). kUnauthenticated (-> 401) for a
  // missing, malformed or unknown key.
  base::Result<store::Tenant> Authenticate(const std::string& authorization) const;

  // Checks the limits and takes a concurrency slot. kResourceExhausted (-> 429, with
  // `retry_after` set when not null) over the rate or concurrency; kOutOfRange (-> 413)
  // over the size. The rate limit is a token bucket per tenant: requests_per_second
  // tokens a second, holding at most max(1, requests_per_second). A refused request
  // spends no token and takes no slot.
  base::Result<Admission> Admit(const store::Tenant& tenant, uint64_t request_bytes,
                                std::chrono::seconds* retry_after);

  // Whether the tenant may be served in `region` (its allowed_regions; empty = any). An
  // entry is a region name, or a prefix ending in '*' ("us-east-*" allows "us-east-1";
  // "*" allows any region).
  static bool RegionAllowed(const store::Tenant& tenant, const std::string& region);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace supercluster::router
