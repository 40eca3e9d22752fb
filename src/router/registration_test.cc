// The router's lease-bound record: present while the router lives (kept alive past its
// TTL), gone once revoked.
#include "router/registration.h"

#include <gtest/gtest.h>

#include <thread>

#include "store/temp_sqlite_store.h"

namespace supercluster::router {
namespace {

TEST(RouterRegistrationTest, KeepsTheRecordAliveAndRemovesItOnRevoke) {
  store::SqliteStoreOptions options;
  options.lease_sweep_interval = std::chrono::milliseconds(50);
  auto store = store::testing::OpenTempSqliteStore(options);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  {
    store::RouterEndpoint record{"r1", "us-east-1", "regional", "http://127.0.0.1:8090"};
    const std::string key = store::keys::Router("us-east-1", "r1");
    auto registration = RouterRegistration::Start(**store, record, std::chrono::seconds(1));
    ASSERT_TRUE(registration.ok()) << registration.status().ToString();
    auto read = [&]() -> std::optional<store::RouterEndpoint> {
      auto value = (*store)->Get(key);
      EXPECT_TRUE(value.ok());
      if (!value.ok() || !value->has_value()) return std::nullopt;
      auto decoded = store::DecodeRouterEndpoint((*value)->value, key);
      EXPECT_TRUE(decoded.ok());
      return decoded.ok() ? std::optional(*decoded) : std::nullopt;
    };
    ASSERT_TRUE(read().has_value());
    EXPECT_EQ(read()->address, "http://127.0.0.1:8090");
    std::this_thread::sleep_for(std::chrono::milliseconds(2500));  // 2.5 TTLs
    EXPECT_TRUE(read().has_value()) << "kept alive";
    (*registration)->Revoke();
    EXPECT_FALSE(read().has_value()) << "revoked at once";
    (*registration)->Revoke();  // twice is harmless
  }
}

}  // namespace
}  // namespace supercluster::router
