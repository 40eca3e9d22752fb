// PrefixCache against each backend: it follows the store, keeps answering with its last
// state while the store is cut off (a partition injected between the cache and a real
// store), reports growing staleness meanwhile (also as its metric), and catches up after.
#include "store/prefix_cache.h"

#include "store/cache_metrics.h"
#include "store/election.h"

#include <atomic>
#include <optional>
#include <sstream>
#include <thread>

#include "metrics/names.h"
#include "metrics/registry.h"

#include "store/store_test_backend.h"

namespace supercluster::store::testing {
namespace {

using namespace std::chrono_literals;

// The value of `registry`'s staleness gauge for `prefix` in a fresh scrape, if present.
std::optional<double> ExportedStaleness(const metrics::Registry& registry,
                                        const std::string& prefix) {
  const std::string series = std::string(metrics::kStoreCacheStalenessSeconds) + "{" +
                             metrics::kPrefixLabel + "=\"" + prefix + "\"} ";
  std::istringstream lines(registry.Serialize());
  for (std::string line; std::getline(lines, line);) {
    if (line.starts_with(series)) return std::stod(line.substr(series.size()));
  }
  return std::nullopt;
}

// Forwards to a real store until Cut(); then every call fails as an unreachable store's
// would, and running watches end with kUnavailable, like a network partition.
class PartitionableStore : public Store {
 public:
  explicit PartitionableStore(std::unique_ptr<Store> inner) : inner_(std::move(inner)) {}
  void Cut() { cut_.store(true); }
  void Heal() { cut_.store(false); }

  base::Result<std::optional<KeyValue>> Get(const std::string& key) override {
    if (cut_) return Unreachable();
    return inner_->Get(key);
  }
  base::Result<RangeResult> Range(const std::string& prefix, const RangeOptions& options) override {
    if (cut_) return Unreachable();
    return inner_->Range(prefix, options);
  }
  base::Result<int64_t> Put(const std::string& key, const std::string& value,
                            LeaseId lease) override {
    if (cut_) return Unreachable();
    return inner_->Put(key, value, lease);
  }
  base::Result<int64_t> Delete(const std::string& key) override {
    if (cut_) return Unreachable();
    return inner_->Delete(key);
  }
  base::Result<TxnResult> Txn(const std::vector<Compare>& compares,
                              const std::vector<Operation>& then_ops,
                              const std::vector<Operation>& else_ops) override {
    if (cut_) return Unreachable();
    return inner_->Txn(compares, then_ops, else_ops);
  }
  base::Result<LeaseId> GrantLease(std::chrono::seconds ttl) override {
    if (cut_) return Unreachable();
    return inner_->GrantLease(ttl);
  }
  base::Status KeepAlive(LeaseId lease) override {
    if (cut_) return Unreachable();
    return inner_->KeepAlive(lease);
  }
  base::Status RevokeLease(LeaseId lease) override {
    if (cut_) return Unreachable();
    return inner_->RevokeLease(lease);
  }
  base::Result<std::unique_ptr<Watch>> WatchPrefix(const std::string& prefix,
                                                   int64_t from_revision,
                                                   WatchCallback callback) override {
    if (cut_) return Unreachable();
    auto ended = std::make_shared<std::atomic<bool>>(false);
    return inner_->WatchPrefix(
        prefix, from_revision,
        [this, ended, callback](const std::vector<WatchEvent>& events, const base::Status& status) {
          if (ended->load()) return;
          if (cut_) {
            ended->store(true);
            callback({}, Unreachable());
            return;
          }
          callback(events, status);
        });
  }

 private:
  static base::Status Unreachable() { return base::Unavailable("store cut off by the test"); }

  std::unique_ptr<Store> inner_;
  std::atomic<bool> cut_{false};
};

template <class Condition>
bool Eventually(Condition condition, std::chrono::milliseconds timeout = 10s) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return condition();
}

bool CacheHas(const PrefixCache& cache, const std::string& key, const std::string& value) {
  auto snapshot = cache.Snapshot();
  auto found = snapshot->entries.find(key);
  return found != snapshot->entries.end() && found->second.value == value;
}

TEST_P(StoreConformanceTest, CacheFollowsTheStore) {
  ASSERT_TRUE(store().Put("cache/a", "1").ok());
  ASSERT_TRUE(store().Put("elsewhere", "x").ok());
  auto cache = PrefixCache::Start(store(), "cache/", {.probe_interval = 100ms});
  ASSERT_TRUE(cache.ok()) << cache.status().ToString();
  EXPECT_TRUE(CacheHas(**cache, "cache/a", "1"));
  EXPECT_EQ((*cache)->Snapshot()->entries.size(), 1u);

  auto held = (*cache)->Snapshot();
  ASSERT_TRUE(store().Put("cache/b", "2").ok());
  ASSERT_TRUE(store().Delete("cache/a").ok());
  EXPECT_TRUE(Eventually([&] {
    auto snapshot = (*cache)->Snapshot();
    return snapshot->entries.size() == 1 && snapshot->entries.count("cache/b") == 1;
  }));
  // A snapshot already handed out never changes.
  EXPECT_EQ(held->entries.size(), 1u);
  EXPECT_EQ(held->entries.count("cache/a"), 1u);
  EXPECT_LT((*cache)->Staleness(), 1s);
}

TEST_P(StoreConformanceTest, CacheServesLastStateWhileTheStoreIsUnreachable) {
  PartitionableStore partitioned(backend().Open());
  ASSERT_TRUE(store().Put("cache/worker-1", "serving").ok());
  auto cache = PrefixCache::Start(partitioned, "cache/",
                                  {.probe_interval = 100ms, .max_retry_interval = 400ms});
  ASSERT_TRUE(cache.ok()) << cache.status().ToString();
  ASSERT_TRUE(CacheHas(**cache, "cache/worker-1", "serving"));
  metrics::Registry registry;
  ExportCacheStaleness(**cache, registry);
  EXPECT_LT(ExportedStaleness(registry, "cache/").value_or(99), 0.5);

  partitioned.Cut();
  ASSERT_TRUE(store().Put("cache/worker-2", "serving").ok());  // the cache cannot see this
  std::this_thread::sleep_for(1200ms);
  EXPECT_TRUE(CacheHas(**cache, "cache/worker-1", "serving")) << "lost its last known state";
  EXPECT_EQ((*cache)->Snapshot()->entries.count("cache/worker-2"), 0u);
  auto stale = (*cache)->Staleness();
  EXPECT_GE(stale, 1000ms);
  EXPECT_GE(ExportedStaleness(registry, "cache/").value_or(0), 1.0) << "the metric must show it";
  std::this_thread::sleep_for(300ms);
  EXPECT_GT((*cache)->Staleness(), stale) << "staleness must keep growing while cut off";

  partitioned.Heal();
  EXPECT_TRUE(Eventually([&] { return CacheHas(**cache, "cache/worker-2", "serving"); }))
      << "did not catch up after the store came back";
  EXPECT_TRUE(Eventually([&] { return (*cache)->Staleness() < 500ms; }));
  EXPECT_LT(ExportedStaleness(registry, "cache/").value_or(99), 1.0);
  ASSERT_TRUE(store().Put("cache/worker-3", "serving").ok());
  EXPECT_TRUE(Eventually([&] { return CacheHas(**cache, "cache/worker-3", "serving"); }))
      << "no longer follows changes after healing";
}

TEST_P(StoreConformanceTest, CacheRefusesToStartWithoutTheStore) {
  PartitionableStore partitioned(backend().Open());
  partitioned.Cut();
  auto cache = PrefixCache::Start(partitioned, "cache/");
  EXPECT_FALSE(cache.ok());
  EXPECT_EQ(cache.status().code(), base::StatusCode::kUnavailable);
}

TEST_P(StoreConformanceTest, LeaderCutOffFromTheStoreStopsLeadingWithinTheTtl) {
  PartitionableStore partitioned(backend().Open());
  Election election(partitioned, "/sc/test/partitioned", 2s);
  ASSERT_TRUE(election.Campaign("cut-off", 5s).ok());
  EXPECT_TRUE(election.IsLeader());
  partitioned.Cut();
  auto cut_at = std::chrono::steady_clock::now();
  EXPECT_TRUE(Eventually([&] { return !election.IsLeader(); }, 5s));
  // The lease can expire at most a TTL after the cut; 500 ms of slack for a loaded machine.
  EXPECT_LE(std::chrono::steady_clock::now() - cut_at, 2500ms)
      << "still called itself leader after its lease could have expired";
  partitioned.Heal();
}

}  // namespace
}  // namespace supercluster::store::testing
