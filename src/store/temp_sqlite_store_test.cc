// The test-only temporary store: a working store whose directory goes with it, and whose
// options are the caller's but for the path.
#include "store/temp_sqlite_store.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <string>

namespace supercluster::store::testing {
namespace {

TEST(TempSqliteStoreTest, WorksAndRemovesItsDirectoryWithTheStore) {
  auto opened = OpenTempSqliteStore();
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  TempSqliteStore store = std::move(*opened);
  const std::string directory = store.get_deleter().directory;
  ASSERT_TRUE(std::filesystem::exists(directory + "/state.db"));
  ASSERT_TRUE(store->Put("/test/key", "value").ok());
  auto read = store->Get("/test/key");
  ASSERT_TRUE(read.ok() && read->has_value());
  EXPECT_EQ((*read)->value, "value");
  store.reset();
  EXPECT_FALSE(std::filesystem::exists(directory));
}

TEST(TempSqliteStoreTest, TwoStoresHaveDirectoriesOfTheirOwn) {
  SqliteStoreOptions options;
  options.path = "/nonexistent/ignored.db";  // replaced
  auto first = OpenTempSqliteStore(options);
  auto second = OpenTempSqliteStore(options);
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_NE(first->get_deleter().directory, second->get_deleter().directory);
  ASSERT_TRUE((*first)->Put("/test/key", "first").ok());
  auto read = (*second)->Get("/test/key");
  ASSERT_TRUE(read.ok());
  EXPECT_FALSE(read->has_value());
}

}  // namespace
}  // namespace supercluster::store::testing
