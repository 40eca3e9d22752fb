// The tenant gate: an index from API key hash to tenant, rebuilt from the cache's snapshot
// only when the cache's version moves and read per request from a reference each thread
// keeps (store::DerivedView); each thread's own copies of the tenant records it hands out;
// and per-tenant counters (a token bucket and an in-flight count) that outlive index
// rebuilds, found per request through a map each thread keeps.
#include "router/tenant_gate.h"

#include <openssl/evp.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstring>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "base/adaptive_mutex.h"
#include "base/thread_slot.h"
#include "crypto/bytes.h"
#include "crypto/secret.h"
#include "store/derived_view.h"

namespace supercluster::router {

namespace {

using Clock = std::chrono::steady_clock;

// Keys longer than this are refused before hashing: no real key is this long, and hashing
// megabytes per request would be a cheap way to load the router.
constexpr size_t kMaxApiKeyBytes = 1024;

// The key of "Bearer KEY" (scheme case-insensitive, RFC 7235), or "" when the value is not
// that shape. A key is visible ASCII without spaces.
std::string_view BearerToken(std::string_view authorization) {
  constexpr std::string_view kScheme = "bearer";
  if (authorization.size() <= kScheme.size()) return {};
  for (size_t i = 0; i < kScheme.size(); ++i) {
    char c = authorization[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + ('a' - 'A'));
    if (c != kScheme[i]) return {};
  }
  std::string_view rest = authorization.substr(kScheme.size());
  if (rest.front() != ' ') return {};
  while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
  while (!rest.empty() && rest.back() == ' ') rest.remove_suffix(1);
  for (char c : rest) {
    auto byte = static_cast<unsigned char>(c);
    if (byte <= 0x20 || byte >= 0x7f) return {};
  }
  return rest;
}

}  // namespace

namespace {

// OpenSSL's SHA-256, fetched from its providers once. Given EVP_sha256() instead, OpenSSL 3
// fetches the implementation again on every EVP_Digest call, which cost as much as
// hashing a short key itself (callgrind: 2.2k of the 5.5k instructions per request).
// Never freed: it lives as long as the process.
const EVP_MD* Sha256() {
  static const EVP_MD* const md = [] {
    const EVP_MD* fetched = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    return fetched != nullptr ? fetched : EVP_sha256();
  }();
  return md;
}

using Sha256Digest = std::array<uint8_t, 32>;

// False only when OpenSSL fails.
bool Sha256Of(std::string_view data, Sha256Digest* digest) {
  // One digest context per thread, reset by each use: EVP_Digest makes and frees one per
  // call (0.3k instructions per request, callgrind).
  thread_local const std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> context(
      EVP_MD_CTX_new(), EVP_MD_CTX_free);
  unsigned int length = 0;
  return context && EVP_DigestInit_ex(context.get(), Sha256(), nullptr) == 1 &&
         EVP_DigestUpdate(context.get(), data.data(), data.size()) == 1 &&
         EVP_DigestFinal_ex(context.get(), digest->data(), &length) == 1 &&
         length == digest->size();
}

// A SHA-256 digest is evenly spread already: its first bytes are a good hash. (The index
// holds only digests from the store's records; a caller's guess is only looked up.)
struct DigestHash {
  size_t operator()(const Sha256Digest& digest) const {
    size_t value;
    std::memcpy(&value, digest.data(), sizeof value);
    return value;
  }
};

}  // namespace

std::string HashApiKey(std::string_view api_key) {
  Sha256Digest digest;
  if (!Sha256Of(api_key, &digest)) return std::string();  // an empty hash matches no tenant
  return crypto::ToHex(digest);
}

namespace {

// Every tenant of one snapshot, and which tenant each key hash belongs to.
struct TenantIndex {
  uint64_t thread_slot_owner = 0;  // of the threads' copies of its tenants (ThreadCopyOf)
  std::vector<store::Tenant> tenants;
  std::unordered_map<Sha256Digest, size_t, DigestHash> tenant_by_hash;  // -> tenants[i]
};

TenantIndex BuildIndex(const store::PrefixSnapshot& snapshot) {
  TenantIndex index;
  index.thread_slot_owner = base::NewThreadSlotOwnerId();
  std::unordered_map<Sha256Digest, std::string, DigestHash> owner_of_hash;  // duplicates
  std::vector<Sha256Digest> ambiguous;
  for (const auto& [key, entry] : snapshot.entries) {
    auto tenant = store::DecodeTenant(entry.value, key);
    if (!tenant.ok()) {
      // One bad record must not lock every other tenant out; this one gets 401s.
      spdlog::warn("tenant gate: ignoring {}: {}", key, tenant.status().message());
      continue;
    }
    size_t position = index.tenants.size();
    for (const std::string& hash : tenant->api_key_hashes) {
      crypto::Bytes bytes;
      // Hex of either case: the digest's bytes are what is compared.
      if (!crypto::FromHex(hash, &bytes) || bytes.size() != sizeof(Sha256Digest)) {
        spdlog::warn("tenant gate: tenant {} has an api_key_hashes entry that is not a "
                     "SHA-256 hex digest; ignored",
                     tenant->id);
        continue;
      }
      Sha256Digest digest;
      std::copy(bytes.begin(), bytes.end(), digest.begin());
      auto [existing, inserted] = owner_of_hash.emplace(digest, tenant->id);
      if (!inserted && existing->second != tenant->id) {
        ambiguous.push_back(digest);
        spdlog::warn("tenant gate: tenants {} and {} share an API key hash; that key is "
                     "refused for both until one is removed",
                     existing->second, tenant->id);
        continue;
      }
      index.tenant_by_hash.emplace(digest, position);
    }
    index.tenants.push_back(std::move(*tenant));
  }
  // A key shared by two tenants could be answered as either; refusing it is the only
  // answer that never hands tenant A's caller to tenant B.
  for (const Sha256Digest& digest : ambiguous) index.tenant_by_hash.erase(digest);
  return index;
}

// The calling thread's own copy of tenants[position] of `index`. A thread keeps copies of
// the tenants of the last index it read (of any gate), made on first use: the pointers a
// request copies then count on this thread's lines, where one copy shared by all threads
// would have every io thread write its count.
std::shared_ptr<const store::Tenant> ThreadCopyOf(const TenantIndex& index, size_t position) {
  struct Copies {
    std::vector<std::shared_ptr<const store::Tenant>> tenants;  // null until asked for
  };
  Copies& copies = base::ThreadSlotOf<Copies>(index.thread_slot_owner);
  // Only a fresh slot differs in size: it belongs to this index alone.
  if (copies.tenants.size() != index.tenants.size()) {
    copies.tenants.assign(index.tenants.size(), nullptr);
  }
  std::shared_ptr<const store::Tenant>& copy = copies.tenants[position];
  if (!copy) copy = std::make_shared<const store::Tenant>(index.tenants[position]);
  return copy;
}

// Counters of one tenant, shared by every thread. Shared with its tickets, which may
// outlive the gate.
struct TenantCounters {
  base::AdaptiveMutex mutex;  // guards tokens and refilled_at; held for a few instructions
  double tokens = -1;         // < 0: not yet filled (the first request finds a full bucket)
  Clock::time_point refilled_at;
  std::atomic<int64_t> in_flight{0};
};

class Ticket final : public AdmissionTicket {
 public:
  explicit Ticket(std::shared_ptr<TenantCounters> counters) : counters_(std::move(counters)) {}
  ~Ticket() override { counters_->in_flight.fetch_sub(1, std::memory_order_relaxed); }

 private:
  std::shared_ptr<TenantCounters> counters_;
};

}  // namespace

struct TenantGate::State {
  State(const store::PrefixCache& cache, TenantGateOptions gate_options)
      : options(std::move(gate_options)),
        index(&cache, [](const store::PrefixSnapshot* snapshot) { return BuildIndex(*snapshot); }) {
    if (!options.clock) options.clock = [] { return Clock::now(); };
  }

  // This gate's counters of `tenant_id`, found through the calling thread's map: the shared
  // map and its lock are taken only on a thread's first request of each tenant. A thread
  // keeps the map of the last gate it used.
  const std::shared_ptr<TenantCounters>& CountersOf(const std::string& tenant_id) {
    struct ThreadMap {
      std::unordered_map<std::string, std::shared_ptr<TenantCounters>> by_tenant;
    };
    ThreadMap& map = base::ThreadSlotOf<ThreadMap>(thread_slot_owner);
    auto [found, inserted] = map.by_tenant.try_emplace(tenant_id);
    if (inserted) {
      std::lock_guard lock(counters_mutex);
      std::shared_ptr<TenantCounters>& shared = counters_by_tenant[tenant_id];
      if (!shared) shared = std::make_shared<TenantCounters>();
      found->second = shared;
    }
    return found->second;
  }

  const uint64_t thread_slot_owner = base::NewThreadSlotOwnerId();  // of the threads' maps
  TenantGateOptions options;
  // Rebuilt once per change of the cache's copy; read per request from each thread's own
  // reference.
  const store::DerivedView<TenantIndex> index;

  std::mutex counters_mutex;  // guards the map (not the counters in it)
  std::unordered_map<std::string, std::shared_ptr<TenantCounters>> counters_by_tenant;
};

TenantGate::TenantGate(const store::PrefixCache& tenants, TenantGateOptions options)
    : state_(std::make_unique<State>(tenants, std::move(options))) {}

TenantGate::~TenantGate() = default;

base::Result<std::shared_ptr<const store::Tenant>> TenantGate::Authenticate(
    std::string_view authorization) const {
  if (authorization.empty()) {
    return base::Unauthenticated("missing Authorization header (expected 'Bearer <API key>')");
  }
  std::string_view key = BearerToken(authorization);
  if (key.empty()) {
    return base::Unauthenticated("malformed Authorization header (expected 'Bearer <API key>')");
  }
  if (key.size() > kMaxApiKeyBytes) return base::Unauthenticated("unknown API key");
  Sha256Digest digest;
  if (!Sha256Of(key, &digest)) return base::Unauthenticated("unknown API key");
  // Looking the hash up in a hash map is not a timing leak of the stored keys: the lookup's
  // time depends on SHA-256 of the caller's own guess, which the caller cannot steer toward
  // a stored hash (that would need a preimage), so how far a guess's hash matched tells
  // nothing about the stored key. The final comparison is constant-time all the same.
  const TenantIndex& index = state_->index.Current();
  auto found = index.tenant_by_hash.find(digest);
  if (found == index.tenant_by_hash.end() ||
      !crypto::ConstantTimeEquals(found->first, digest)) {
    return base::Unauthenticated("unknown API key");
  }
  return ThreadCopyOf(index, found->second);
}

base::Result<std::shared_ptr<AdmissionTicket>> TenantGate::Admit(
    const store::Tenant& tenant, uint64_t request_bytes, std::chrono::seconds* retry_after) {
  const TenantGateOptions& options = state_->options;
  if (request_bytes > options.max_request_bytes) {
    return base::OutOfRange("request body of " + std::to_string(request_bytes) +
                            " bytes is over the limit of " +
                            std::to_string(options.max_request_bytes) + " bytes");
  }
  double rate = tenant.requests_per_second > 0 ? tenant.requests_per_second
                                               : options.default_requests_per_second;
  double burst = std::max(1.0, rate);
  int64_t max_concurrent = tenant.max_concurrent_requests > 0
                               ? tenant.max_concurrent_requests
                               : options.default_max_concurrent_requests;
  Clock::time_point now = options.clock();

  const std::shared_ptr<TenantCounters>& counters = state_->CountersOf(tenant.id);
  {
    std::lock_guard lock(counters->mutex);
    if (counters->tokens < 0) {
      counters->tokens = burst;
    } else if (now > counters->refilled_at) {
      double seconds = std::chrono::duration<double>(now - counters->refilled_at).count();
      counters->tokens = std::min(burst, counters->tokens + seconds * rate);
    } else {
      counters->tokens = std::min(burst, counters->tokens);  // the limit may have shrunk
    }
    counters->refilled_at = std::max(counters->refilled_at, now);

    if (counters->tokens < 1) {
      if (retry_after) {
        double wait = rate > 0 ? (1 - counters->tokens) / rate : 1;
        *retry_after = std::chrono::seconds(std::max<int64_t>(1, std::llround(std::ceil(wait))));
      }
      return base::ResourceExhausted(fmt::format(
          "tenant {} is over its rate of {:g} requests per second", tenant.id, rate));
    }
    // Counted under the lock, so two requests cannot both take the last slot.
    if (counters->in_flight.load(std::memory_order_relaxed) >= max_concurrent) {
      if (retry_after) *retry_after = std::chrono::seconds(1);
      return base::ResourceExhausted("tenant " + tenant.id + " has " +
                                     std::to_string(max_concurrent) +
                                     " requests in flight, its limit");
    }
    counters->tokens -= 1;
    counters->in_flight.fetch_add(1, std::memory_order_relaxed);
  }
  return std::shared_ptr<AdmissionTicket>(std::make_shared<Ticket>(counters));
}

bool TenantGate::RegionAllowed(const store::Tenant& tenant, const std::string& region) {
  if (tenant.allowed_regions.empty()) return true;
  if (region.empty()) return false;
  for (const std::string& allowed : tenant.allowed_regions) {
    if (!allowed.empty() && allowed.back() == '*') {
      std::string_view prefix(allowed.data(), allowed.size() - 1);
      if (std::string_view(region).substr(0, prefix.size()) == prefix) return true;
    } else if (allowed == region) {
      return true;
    }
  }
  return false;
}

}  // namespace supercluster::router
