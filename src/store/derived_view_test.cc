// DerivedView over a real SQLite store's PrefixCache: derived once per change of the copy,
// following puts and deletes, never mixing two views on one thread, and derived once
// without a cache.
#include "store/derived_view.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "store/temp_sqlite_store.h"

namespace supercluster::store {
namespace {

using namespace std::chrono_literals;

class DerivedViewTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto opened = testing::OpenTempSqliteStore();
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    store_ = std::move(*opened);
    ASSERT_TRUE(store_->Put("/test/a", "1").ok());
    auto cache = PrefixCache::Start(*store_, "/test/");
    ASSERT_TRUE(cache.ok()) << cache.status().ToString();
    cache_ = std::move(*cache);
  }
  void TearDown() override {
    cache_.reset();
    store_.reset();
  }

  // The keys of the copy, counting each derivation in `derivations`.
  DerivedView<std::vector<std::string>>::Derive KeysCounting(std::atomic<int>& derivations) {
    return [&derivations](const PrefixSnapshot* snapshot) {
      ++derivations;
      std::vector<std::string> keys;
      if (snapshot != nullptr) {
        for (const auto& [key, kv] : snapshot->entries) keys.push_back(key);
      }
      return keys;
    };
  }

  testing::TempSqliteStore store_;
  std::unique_ptr<PrefixCache> cache_;
};

TEST_F(DerivedViewTest, DerivesOncePerChangeAndFollowsTheStore) {
  std::atomic<int> derivations{0};
  DerivedView<std::vector<std::string>> view(cache_.get(), KeysCounting(derivations));
  for (int i = 0; i < 100; ++i) ASSERT_EQ(view.Current(), std::vector<std::string>{"/test/a"});
  // Other threads take the value derived already.
  std::thread([&view] { EXPECT_EQ(view.Current().size(), 1u); }).join();
  EXPECT_EQ(derivations.load(), 1);

  ASSERT_TRUE(store_->Put("/test/b", "2").ok());
  for (int i = 0; i < 500 && view.Current().size() != 2; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(view.Current(), (std::vector<std::string>{"/test/a", "/test/b"}));
  const int after_put = derivations.load();
  for (int i = 0; i < 100; ++i) view.Current();
  EXPECT_EQ(derivations.load(), after_put) << "nothing changed: no derivation";

  ASSERT_TRUE(store_->Delete("/test/a").ok());
  for (int i = 0; i < 500 && view.Current().size() != 1; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(view.Current(), std::vector<std::string>{"/test/b"});
}

// Each thread keeps one copy per value type: two views of that type read in turn on one
// thread (at the same version, as two views without a cache are) must each give their own.
TEST_F(DerivedViewTest, TwoViewsOnOneThreadKeepTheirOwnValues) {
  DerivedView<std::vector<std::string>> first(
      nullptr, [](const PrefixSnapshot*) { return std::vector<std::string>{"first"}; });
  DerivedView<std::vector<std::string>> second(
      nullptr, [](const PrefixSnapshot*) { return std::vector<std::string>{"second"}; });
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(first.Current(), std::vector<std::string>{"first"});
    EXPECT_EQ(second.Current(), std::vector<std::string>{"second"});
  }
}

TEST_F(DerivedViewTest, WithoutACacheDerivesOnceFromNothing) {
  std::atomic<int> derivations{0};
  DerivedView<std::vector<std::string>> view(nullptr, KeysCounting(derivations));
  for (int i = 0; i < 10; ++i) EXPECT_TRUE(view.Current().empty());
  std::thread([&view] { EXPECT_TRUE(view.Current().empty()); }).join();
  EXPECT_EQ(derivations.load(), 1);
}

}  // namespace
}  // namespace supercluster::store
