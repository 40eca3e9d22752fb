// Where a router finds the other regions' routers: store records, --via overrides, and the
// spill preference of its own region's record.
#include "router/peer_directory.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "store/records.h"
#include "store/temp_sqlite_store.h"

namespace supercluster::router {
namespace {

class PeerDirectoryTest : public ::testing::Test {
 protected:
  void SetUp() override { store_ = store::testing::OpenTempSqliteStore().value(); }
  void TearDown() override { store_.reset(); }
  void PutRouter(const std::string& region, const std::string& id, const std::string& tier,
                 const std::string& address) {
    store::RouterEndpoint record{id, region, tier, address};
    ASSERT_TRUE(store_->Put(store::keys::Router(region, id), store::Encode(record)).ok());
  }

  store::testing::TempSqliteStore store_;
};

TEST_F(PeerDirectoryTest, RecordsViaOverridesAndSpillPreference) {
  PutRouter("us-east-1", "a", "regional", "http://10.0.0.1:8090");
  PutRouter("us-east-1", "b", "regional", "http://10.0.0.2:8090");  // same region: one is kept
  PutRouter("us-west-2", "a", "regional", "http://10.0.1.1:8090");
  PutRouter("eu-west-1", "a", "regional", "not an address");       // skipped
  PutRouter("global", "g", "global", "http://10.0.9.9:8090");      // not a regional router
  store::Region region;
  region.name = "us-east-1";
  region.peers = {"us-west-2", "ap-south-1"};
  ASSERT_TRUE(store_->Put(store::keys::Region("us-east-1"), store::Encode(region)).ok());
  auto routers = store::PrefixCache::Start(*store_, store::keys::RouterPrefix("")).value();
  auto regions = store::PrefixCache::Start(*store_, store::keys::Region("")).value();

  auto from_east = PeerDirectory::Create(routers.get(), regions.get(),
                                         {"us-west-2=127.0.0.1:7001", "ap-south-1=127.0.0.1:7002"},
                                         "us-east-1");
  ASSERT_TRUE(from_east.ok()) << from_east.status().ToString();
  std::vector<PeerRouter> peers = (*from_east)->RegionalRouters();
  ASSERT_EQ(peers.size(), 2u);
  EXPECT_EQ(peers[0].region, "ap-south-1") << "a --via region needs no record";
  EXPECT_EQ(peers[0].endpoint.port, 7002);
  EXPECT_EQ(peers[1].region, "us-west-2");
  EXPECT_EQ(peers[1].endpoint.host, "127.0.0.1") << "--via wins over the registered address";
  EXPECT_EQ((*from_east)->SpillPreference(),
            (std::vector<std::string>{"us-west-2", "ap-south-1"}));

  auto from_global = PeerDirectory::Create(routers.get(), regions.get(), {}, "");
  ASSERT_TRUE(from_global.ok());
  peers = (*from_global)->RegionalRouters();
  ASSERT_EQ(peers.size(), 2u);
  EXPECT_EQ(peers[0].region, "us-east-1");
  EXPECT_EQ(peers[0].endpoint.host, "10.0.0.1");
  EXPECT_EQ(peers[1].region, "us-west-2");
  EXPECT_TRUE((*from_global)->SpillPreference().empty());
}

// The list is decoded once per change of the store's copy and kept per thread: a record
// added or removed later must still show, and two directories read on one thread must
// never hand out each other's lists.
TEST_F(PeerDirectoryTest, FollowsTheStoreAndKeepsDirectoriesApartOnOneThread) {
  PutRouter("us-east-1", "a", "regional", "http://10.0.0.1:8090");
  auto routers = store::PrefixCache::Start(*store_, store::keys::RouterPrefix("")).value();
  auto global = PeerDirectory::Create(routers.get(), nullptr, {}, "");
  auto east = PeerDirectory::Create(nullptr, nullptr, {"us-west-2=127.0.0.1:7001"}, "us-east-1");
  ASSERT_TRUE(global.ok() && east.ok());
  auto regions = [](const PeerDirectory& directory) {
    std::vector<std::string> names;
    for (const PeerRouter& peer : directory.RegionalRouters()) names.push_back(peer.region);
    return names;
  };
  auto wait_for = [&](const std::vector<std::string>& expected) {
    for (int i = 0; i < 200 && regions(**global) != expected; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return regions(**global);
  };
  EXPECT_EQ(regions(**global), std::vector<std::string>{"us-east-1"});
  EXPECT_EQ(regions(**east), std::vector<std::string>{"us-west-2"});

  PutRouter("us-west-2", "a", "regional", "http://10.0.1.1:8090");
  EXPECT_EQ(wait_for({"us-east-1", "us-west-2"}),
            (std::vector<std::string>{"us-east-1", "us-west-2"}));
  EXPECT_EQ(regions(**east), std::vector<std::string>{"us-west-2"});
  EXPECT_EQ((*east)->RegionalRouters()[0].endpoint.port, 7001);
  EXPECT_EQ((*global)->RegionalRouters()[1].endpoint.host, "10.0.1.1");

  ASSERT_TRUE(store_->Delete(store::keys::Router("us-east-1", "a")).ok());
  EXPECT_EQ(wait_for({"us-west-2"}), std::vector<std::string>{"us-west-2"});

  // Two directories without a store share a version (0): only their identity tells their
  // lists apart.
  auto west = PeerDirectory::Create(nullptr, nullptr, {"us-east-1=127.0.0.1:7002"}, "us-west-2");
  ASSERT_TRUE(west.ok());
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(regions(**east), std::vector<std::string>{"us-west-2"});
    EXPECT_EQ(regions(**west), std::vector<std::string>{"us-east-1"});
  }
}

// A region is known by a region record (even with no router running there), a router
// record, --via, or being the own region; nothing else.
TEST_F(PeerDirectoryTest, KnowsTheClustersRegionsOnly) {
  PutRouter("us-west-2", "a", "regional", "http://10.0.1.1:8090");
  store::Region quiet;
  quiet.name = "eu-west-1";  // a region whose routers are all down
  ASSERT_TRUE(store_->Put(store::keys::Region("eu-west-1"), store::Encode(quiet)).ok());
  auto routers = store::PrefixCache::Start(*store_, store::keys::RouterPrefix("")).value();
  auto regions = store::PrefixCache::Start(*store_, store::keys::Region("")).value();
  auto east = PeerDirectory::Create(routers.get(), regions.get(), {"ap-south-1=127.0.0.1:7002"},
                                    "us-east-1");
  ASSERT_TRUE(east.ok());
  for (const char* known : {"us-east-1", "us-west-2", "eu-west-1", "ap-south-1"}) {
    EXPECT_TRUE((*east)->KnowsRegion(known)) << known;
  }
  for (const char* unknown : {"nowhere", "", "us-east", "global"}) {
    EXPECT_FALSE((*east)->KnowsRegion(unknown)) << unknown;
  }
}

// A region an operator drains (its record's `accepting` false) leaves the peers of the
// global tier and of spills, and comes back when the record says so again; it stays known.
TEST_F(PeerDirectoryTest, ADrainedRegionIsNoPeerUntilItAcceptsAgain) {
  PutRouter("us-east-1", "a", "regional", "http://10.0.0.1:8090");
  PutRouter("us-west-2", "a", "regional", "http://10.0.1.1:8090");
  auto put_region = [&](const std::string& name, bool accepting) {
    store::Region region;
    region.name = name;
    region.accepting = accepting;
    ASSERT_TRUE(store_->Put(store::keys::Region(name), store::Encode(region)).ok());
  };
  put_region("us-east-1", true);
  put_region("us-west-2", true);
  auto routers = store::PrefixCache::Start(*store_, store::keys::RouterPrefix("")).value();
  auto regions = store::PrefixCache::Start(*store_, store::keys::Region("")).value();
  auto global = PeerDirectory::Create(routers.get(), regions.get(), {}, "");
  auto east = PeerDirectory::Create(routers.get(), regions.get(), {}, "us-east-1");
  ASSERT_TRUE(global.ok() && east.ok());
  auto names = [](const PeerDirectory& directory) {
    std::vector<std::string> found;
    for (const PeerRouter& peer : directory.RegionalRouters()) found.push_back(peer.region);
    return found;
  };
  auto wait_for = [&](const PeerDirectory& directory, const std::vector<std::string>& expected) {
    for (int i = 0; i < 200 && names(directory) != expected; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return names(directory);
  };
  EXPECT_EQ(names(**global), (std::vector<std::string>{"us-east-1", "us-west-2"}));

  put_region("us-west-2", false);
  EXPECT_EQ(wait_for(**global, {"us-east-1"}), std::vector<std::string>{"us-east-1"});
  EXPECT_EQ(wait_for(**east, {}), std::vector<std::string>{}) << "nowhere to spill to";
  EXPECT_TRUE((*global)->KnowsRegion("us-west-2"));

  put_region("us-west-2", true);
  EXPECT_EQ(wait_for(**global, {"us-east-1", "us-west-2"}),
            (std::vector<std::string>{"us-east-1", "us-west-2"}));
  EXPECT_EQ(names(**east), std::vector<std::string>{"us-west-2"});
}

TEST_F(PeerDirectoryTest, RejectsMalformedVia) {
  for (const std::string via : {"us-east-1", "=127.0.0.1:1", "us-east-1=no port here"}) {
    auto directory = PeerDirectory::Create(nullptr, nullptr, {via}, "x");
    ASSERT_FALSE(directory.ok()) << via;
    EXPECT_NE(directory.status().message().find("--via " + via), std::string::npos);
  }
  auto none = PeerDirectory::Create(nullptr, nullptr, {}, "x");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE((*none)->RegionalRouters().empty());
}

}  // namespace
}  // namespace supercluster::router
