// The data-plane cache when its real etcd dies: it keeps answering with the last state,
// its staleness grows while etcd is down, and it catches up once etcd is back.
#include <gtest/gtest.h>

#include <thread>

#include "store/etcd_test_cluster.h"
#include "store/prefix_cache.h"

namespace supercluster::store::testing {
namespace {

using namespace std::chrono_literals;

template <class Condition>
bool Eventually(Condition condition, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return condition();
}

bool CacheHas(const PrefixCache& cache, const std::string& key) {
  return cache.Snapshot()->entries.count(key) == 1;
}

TEST(PrefixCacheEtcdTest, KeepsServingWhileEtcdIsDownAndCatchesUpAfter) {
  EtcdClusterOptions options;
  options.members = 1;
  auto cluster = EtcdTestCluster::Start(options);
  ASSERT_TRUE(cluster.ok()) << cluster.status().ToString();
  auto store = EtcdStore::Open((*cluster)->StoreOptions());
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  ASSERT_TRUE((*store)->Put("/sc/v1/instances/us-east-1/i-1", "serving").ok());

  auto cache = PrefixCache::Start(**store, "/sc/v1/instances/",
                                  {.probe_interval = 100ms, .max_retry_interval = 400ms});
  ASSERT_TRUE(cache.ok()) << cache.status().ToString();
  ASSERT_TRUE(CacheHas(**cache, "/sc/v1/instances/us-east-1/i-1"));

  ASSERT_TRUE((*cluster)->Kill(0).ok());
  std::this_thread::sleep_for(1500ms);
  EXPECT_TRUE(CacheHas(**cache, "/sc/v1/instances/us-east-1/i-1")) << "lost its last state";
  auto stale = (*cache)->Staleness();
  EXPECT_GE(stale, 1000ms);
  std::this_thread::sleep_for(300ms);
  EXPECT_GT((*cache)->Staleness(), stale) << "staleness must grow while etcd is down";

  ASSERT_TRUE((*cluster)->Restart(0).ok());
  ASSERT_TRUE(Eventually([&] {
    return (*store)->Put("/sc/v1/instances/us-east-1/i-2", "serving").ok();
  }, 10s));
  EXPECT_TRUE(Eventually([&] { return CacheHas(**cache, "/sc/v1/instances/us-east-1/i-2"); }, 10s))
      << "did not catch up after etcd came back";
  EXPECT_TRUE(Eventually([&] { return (*cache)->Staleness() < 1s; }, 5s));
}

}  // namespace
}  // namespace supercluster::store::testing
