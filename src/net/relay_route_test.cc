// The relay's delay and route syntax, including the malformed and hostile forms a typo or a
// script bug produces.
#include "net/relay_route.h"

#include <gtest/gtest.h>

namespace supercluster::net {
namespace {

using namespace std::chrono_literals;

TEST(RelayRouteTest, ParsesDelaysInEveryUnit) {
  EXPECT_EQ(*ParseRelayDuration("12ms"), 12ms);
  EXPECT_EQ(*ParseRelayDuration("1.5ms"), 1500us);
  EXPECT_EQ(*ParseRelayDuration("250us"), 250us);
  EXPECT_EQ(*ParseRelayDuration("0.065s"), 65ms);
  EXPECT_EQ(*ParseRelayDuration("2s"), 2s);
  EXPECT_EQ(*ParseRelayDuration("0"), 0us);
  EXPECT_EQ(*ParseRelayDuration("0ms"), 0us);
  EXPECT_EQ(*ParseRelayDuration("0.0001ms"), 0us);  // below a microsecond: dropped
  EXPECT_EQ(*ParseRelayDuration("3600s"), 1h);
}

TEST(RelayRouteTest, RejectsMalformedDelaysWithTheTextQuoted) {
  for (const char* text : {"", "12", "ms", "-5ms", "+5ms", "1.ms", ".5ms", "5 ms", "5MS",
                           "5m", "1e3ms", "0x10ms", "inf", "nan", "5ms5", "9999999999ms",
                           "1.0000000001s", "3601s", "1000000000us"}) {
    auto parsed = ParseRelayDuration(text);
    EXPECT_FALSE(parsed.ok()) << "accepted '" << text << "'";
    if (!parsed.ok()) {
      EXPECT_NE(parsed.status().message().find(std::string("'") + text), std::string::npos)
          << parsed.status().message();
    }
  }
  // Control bytes are not echoed raw into the message.
  auto hostile = ParseRelayDuration(std::string("5\n\x1b[2Jms", 8));
  ASSERT_FALSE(hostile.ok());
  EXPECT_EQ(hostile.status().message().find('\n'), std::string::npos);
  EXPECT_EQ(hostile.status().message().find('\x1b'), std::string::npos);
}

TEST(RelayRouteTest, FormatsDelays) {
  EXPECT_EQ(FormatRelayDuration(12ms), "12ms");
  EXPECT_EQ(FormatRelayDuration(1500us), "1.5ms");
  EXPECT_EQ(FormatRelayDuration(1005us), "1.005ms");
  EXPECT_EQ(FormatRelayDuration(250us), "250us");
  EXPECT_EQ(FormatRelayDuration(0us), "0ms");
}

TEST(RelayRouteTest, ParsesNamedAndUnnamedRoutes) {
  auto named = ParseRelayRoute("us-east-1>us-west-2=127.0.0.1:7101=127.0.0.1:7002@65ms");
  ASSERT_TRUE(named.ok()) << named.status().ToString();
  EXPECT_EQ(named->name, "us-east-1>us-west-2");
  EXPECT_EQ(named->listen.port, 7101);
  EXPECT_EQ(named->target.host, "127.0.0.1");
  EXPECT_EQ(named->target.port, 7002);
  EXPECT_EQ(named->rtt, 65ms);

  auto unnamed = ParseRelayRoute("127.0.0.1:0=localhost:8080@1.5ms");
  ASSERT_TRUE(unnamed.ok()) << unnamed.status().ToString();
  EXPECT_EQ(unnamed->name, "127.0.0.1:0");
  EXPECT_EQ(unnamed->target.host, "localhost");
  EXPECT_EQ(unnamed->rtt, 1500us);
}

TEST(RelayRouteTest, RejectsMalformedRoutes) {
  for (const char* text : {"", "@12ms", "127.0.0.1:1@12ms", "127.0.0.1:1=127.0.0.1:2",
                           "127.0.0.1:1=127.0.0.1:2@", "127.0.0.1:1=127.0.0.1:2@fast",
                           "a=b=127.0.0.1:1=127.0.0.1:2@1ms", "=127.0.0.1:1=127.0.0.1:2@1ms",
                           "a b=127.0.0.1:1=127.0.0.1:2@1ms", "x/y=127.0.0.1:1=127.0.0.1:2@1ms",
                           "127.0.0.1:1=nonsense@1ms", "nonsense=127.0.0.1:1@1ms",
                           "127.0.0.1:99999=127.0.0.1:1@1ms", "=@", "==@1ms"}) {
    auto parsed = ParseRelayRoute(text);
    EXPECT_FALSE(parsed.ok()) << "accepted '" << text << "'";
    if (!parsed.ok()) {
      EXPECT_NE(parsed.status().message().find("[NAME=]LISTEN=TARGET@RTT"), std::string::npos)
          << parsed.status().message();
    }
  }
  EXPECT_FALSE(ParseRelayRoute(std::string(65, 'n') + "=127.0.0.1:1=127.0.0.1:2@1ms").ok());
  EXPECT_FALSE(ParseRelayRoute(std::string(100000, '=') + "@1ms").ok());
}

}  // namespace
}  // namespace supercluster::net
