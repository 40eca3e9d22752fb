// The router's admission of tenants: who is calling (API key -> tenant), and whether this
// request may go on under the tenant's limits (requests per second, concurrent requests,
// request size, allowed regions, plaintext allowed). It reads tenants from a watched cache
// of the store, so it never touches the store per request.
//
// Threading: every method is thread-safe. What a request does per call writes no cache line
// that other threads' requests write too, except its own tenant's counters: the index of
// keys is read through each thread's own reference, each thread gets its own copy of each
// tenant record, and the counters of each tenant are found through a per-thread map.
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

// Held while a request runs; releasing its last reference frees the concurrency slot. It
// may outlive the gate.
class AdmissionTicket {
 public:
  virtual ~AdmissionTicket() = default;
};

class TenantGate {
 public:
  // `tenants` follows keys::Tenant("") (every tenant). Precondition: it outlives the gate.
  TenantGate(const store::PrefixCache& tenants, TenantGateOptions options);
  ~TenantGate();

  // From an Authorization header value ("Bearer KEY"). kUnauthenticated (-> 401) for a
  // missing, malformed or unknown key. The record is the calling thread's own copy of the
  // store's (a later call on this thread after the store changed gets a new one): copies
  // of the pointer made on this thread count on a line no other thread writes.
  base::Result<std::shared_ptr<const store::Tenant>> Authenticate(
      std::string_view authorization) const;

  // Checks the limits of tenant.id and takes a concurrency slot. kResourceExhausted (-> 429,
  // with `retry_after` set when not null) over the rate or concurrency; kOutOfRange (->
  // 413) over the size. The rate limit is a token bucket per tenant id: requests_per_second
  // tokens a second, holding at most max(1, requests_per_second). A refused request
  // spends no token and takes no slot.
  base::Result<std::shared_ptr<AdmissionTicket>> Admit(const store::Tenant& tenant,
                                                       uint64_t request_bytes,
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
