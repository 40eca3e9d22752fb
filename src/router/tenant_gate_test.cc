// The tenant gate against a real SQLite store followed by a PrefixCache: API keys map to
// their own tenant only, bad headers and bad records are refused, changes in the store are
// followed, and the rate, concurrency, size and region limits hold.
#include "router/tenant_gate.h"

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <sstream>
#include <thread>

#include "store/sqlite_store.h"
#include "store/temp_sqlite_store.h"

namespace supercluster::router {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

template <class Condition>
bool Eventually(Condition condition, std::chrono::milliseconds timeout = 10s) {
  auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return condition();
}

store::Tenant MakeTenant(std::string id, std::vector<std::string> keys) {
  store::Tenant tenant;
  tenant.id = std::move(id);
  for (const auto& key : keys) tenant.api_key_hashes.push_back(HashApiKey(key));
  return tenant;
}

// A clock the test moves by hand.
struct ManualClock {
  Clock::time_point now = Clock::time_point() + 1000s;
  // Default options, but the rate limit reads this clock.
  TenantGateOptions Options() {
    TenantGateOptions options;
    options.clock = [this] { return now; };
    return options;
  }
};

class TenantGateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto opened = store::testing::OpenTempSqliteStore();
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    store_ = std::move(*opened);
    Put(MakeTenant("acme", {"key-acme-1", "key-acme-2"}));
    Put(MakeTenant("globex", {"key-globex"}));
    auto cache = store::PrefixCache::Start(*store_, store::keys::Tenant(""),
                                           {.probe_interval = 100ms});
    ASSERT_TRUE(cache.ok()) << cache.status().ToString();
    cache_ = std::move(*cache);
  }

  void TearDown() override {
    cache_.reset();
    store_.reset();
  }

  void Put(const store::Tenant& tenant) {
    ASSERT_TRUE(store_->Put(store::keys::Tenant(tenant.id), store::Encode(tenant)).ok());
  }

  std::string IdFor(const TenantGate& gate, const std::string& authorization) {
    auto tenant = gate.Authenticate(authorization);
    return tenant.ok() ? (*tenant)->id : "(" + std::string(base::StatusCodeName(tenant.status().code())) + ")";
  }

  store::testing::TempSqliteStore store_;
  std::unique_ptr<store::PrefixCache> cache_;
};

TEST(HashApiKeyTest, IsLowerCaseHexSha256) {
  // FIPS 180-2, appendix B.1: SHA-256("abc").
  EXPECT_EQ(HashApiKey("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(HashApiKey("").size(), 64u);
}

TEST_F(TenantGateTest, EachKeyGivesItsOwnTenantOnly) {
  TenantGate gate(*cache_, {});
  for (int round = 0; round < 200; ++round) {
    ASSERT_EQ(IdFor(gate, "Bearer key-acme-1"), "acme");
    ASSERT_EQ(IdFor(gate, "Bearer key-globex"), "globex");
    ASSERT_EQ(IdFor(gate, "Bearer key-acme-2"), "acme");
  }
  EXPECT_EQ(IdFor(gate, "bearer key-globex"), "globex") << "the scheme is case-insensitive";
  EXPECT_EQ(IdFor(gate, "BEARER   key-globex"), "globex");
  auto tenant = gate.Authenticate("Bearer key-acme-1");
  ASSERT_TRUE(tenant.ok());
  EXPECT_EQ((*tenant)->api_key_hashes.size(), 2u);
}

// Each thread keeps a reference to a gate's index: two gates read on one thread (two
// routers in one process) must never answer from each other's.
TEST_F(TenantGateTest, TwoGatesOnOneThreadKeepTheirOwnTenants) {
  auto other_store = store::testing::OpenTempSqliteStore();
  ASSERT_TRUE(other_store.ok()) << other_store.status().ToString();
  store::Tenant initech = MakeTenant("initech", {"key-initech"});
  ASSERT_TRUE(
      (*other_store)->Put(store::keys::Tenant(initech.id), store::Encode(initech)).ok());
  auto other_cache = store::PrefixCache::Start(**other_store, store::keys::Tenant(""));
  ASSERT_TRUE(other_cache.ok()) << other_cache.status().ToString();
  TenantGate gate(*cache_, {});
  TenantGate other_gate(**other_cache, {});
  for (int round = 0; round < 3; ++round) {
    EXPECT_EQ(IdFor(gate, "Bearer key-acme-1"), "acme");
    EXPECT_EQ(IdFor(other_gate, "Bearer key-acme-1"), "(unauthenticated)");
    EXPECT_EQ(IdFor(other_gate, "Bearer key-initech"), "initech");
    EXPECT_EQ(IdFor(gate, "Bearer key-initech"), "(unauthenticated)");
  }
  other_cache->reset();
}

// Authenticate hands each thread a copy of its own of each tenant (so that copying the
// pointer per request writes no line another thread writes): one per thread, the same one
// on each call, and a new one once the store's record changed.
TEST_F(TenantGateTest, EachThreadGetsItsOwnCopyOfATenant) {
  TenantGate gate(*cache_, {});
  auto first = gate.Authenticate("Bearer key-acme-1");
  auto again = gate.Authenticate("Bearer key-acme-2");
  ASSERT_TRUE(first.ok() && again.ok());
  EXPECT_EQ(first->get(), again->get()) << "one copy per thread, whichever key found it";
  std::shared_ptr<const store::Tenant> other_thread;
  std::thread([&] {
    auto found = gate.Authenticate("Bearer key-acme-1");
    ASSERT_TRUE(found.ok());
    other_thread = *found;
  }).join();
  ASSERT_TRUE(other_thread);
  EXPECT_NE(other_thread.get(), first->get());
  EXPECT_EQ(other_thread->id, "acme");
  EXPECT_EQ(other_thread->api_key_hashes, (*first)->api_key_hashes);

  store::Tenant changed = MakeTenant("acme", {"key-acme-1"});
  changed.requests_per_second = 7;
  Put(changed);
  EXPECT_TRUE(Eventually([&] {
    auto now = gate.Authenticate("Bearer key-acme-1");
    return now.ok() && (*now)->requests_per_second == 7;
  }));
  EXPECT_EQ((*first)->requests_per_second, 0) << "a copy handed out is never changed";
  EXPECT_EQ((*first)->api_key_hashes.size(), 2u);
}

TEST_F(TenantGateTest, MissingMalformedAndUnknownKeysAreUnauthenticated) {
  TenantGate gate(*cache_, {});
  std::vector<std::string> refused = {
      "",
      "Basic a2V5LWFjbWUtMTo=",
      "Basic key-acme-1",
      "Bearer",
      "Bearer ",
      "Bearer    ",
      "Bearerkey-acme-1",
      "Token key-acme-1",
      "key-acme-1",
      "Bearer key-acme-1 key-globex",
      "Bearer key-acme-1\tx",
      std::string("Bearer key-acme-1\0", 18),
      "Bearer key-acme-1\x7f",
      "Bearer KEY-ACME-1",
      "Bearer key-acme-",
      "Bearer unknown",
      "Bearer " + HashApiKey("key-acme-1"),  // the stored hash is not a key
      "Bearer " + std::string(100000, 'k'),
  };
  for (const auto& header : refused) {
    auto tenant = gate.Authenticate(header);
    ASSERT_FALSE(tenant.ok()) << "accepted '" << header.substr(0, 40) << "'";
    EXPECT_EQ(tenant.status().code(), base::StatusCode::kUnauthenticated);
    EXPECT_EQ(tenant.status().message().find("key-acme"), std::string::npos)
        << "the error repeats the key: " << tenant.status().message();
  }
}

TEST_F(TenantGateTest, FollowsTenantChangesInTheStore) {
  TenantGate gate(*cache_, {});
  ASSERT_EQ(IdFor(gate, "Bearer key-acme-1"), "acme");
  EXPECT_EQ(IdFor(gate, "Bearer key-initech"), "(unauthenticated)");

  Put(MakeTenant("initech", {"key-initech"}));
  EXPECT_TRUE(Eventually([&] { return IdFor(gate, "Bearer key-initech") == "initech"; }));

  // acme rotates: key 1 is revoked, key 3 added.
  Put(MakeTenant("acme", {"key-acme-2", "key-acme-3"}));
  EXPECT_TRUE(Eventually([&] { return IdFor(gate, "Bearer key-acme-3") == "acme"; }));
  EXPECT_EQ(IdFor(gate, "Bearer key-acme-1"), "(unauthenticated)");
  EXPECT_EQ(IdFor(gate, "Bearer key-acme-2"), "acme");

  ASSERT_TRUE(store_->Delete(store::keys::Tenant("globex")).ok());
  EXPECT_TRUE(Eventually([&] { return IdFor(gate, "Bearer key-globex") == "(unauthenticated)"; }));

  // Limits follow too: the record's new rate is what Admit sees.
  store::Tenant slow = MakeTenant("slow", {"key-slow"});
  slow.requests_per_second = 1;
  Put(slow);
  EXPECT_TRUE(Eventually([&] { return IdFor(gate, "Bearer key-slow") == "slow"; }));
  auto tenant = gate.Authenticate("Bearer key-slow");
  ASSERT_TRUE(tenant.ok());
  EXPECT_EQ((*tenant)->requests_per_second, 1);
}

TEST_F(TenantGateTest, BadRecordsAndSharedKeysLockOutOnlyThemselves) {
  ASSERT_TRUE(store_->Put(store::keys::Tenant("broken"), "{not json").ok());
  store::Tenant odd = MakeTenant("odd", {"key-odd"});
  odd.api_key_hashes.push_back("not-a-digest");
  odd.api_key_hashes.push_back(std::string(64, 'g'));
  Put(odd);
  // Two tenants claim the same key: neither may be served with it.
  Put(MakeTenant("twin-a", {"key-shared", "key-twin-a"}));
  Put(MakeTenant("twin-b", {"key-shared", "key-twin-b"}));
  TenantGate gate(*cache_, {});
  // twin-b was put last: once it is seen, so are the others (the cache applies the
  // store's changes in order). Waiting for an earlier one only let the check below run
  // while key-shared still belonged to twin-a alone.
  EXPECT_TRUE(Eventually([&] { return IdFor(gate, "Bearer key-twin-b") == "twin-b"; }));
  EXPECT_EQ(IdFor(gate, "Bearer key-twin-a"), "twin-a");
  EXPECT_EQ(IdFor(gate, "Bearer key-odd"), "odd");
  EXPECT_EQ(IdFor(gate, "Bearer key-shared"), "(unauthenticated)");
  EXPECT_EQ(IdFor(gate, "Bearer key-acme-1"), "acme");
}

// The index is rebuilt when the store's tenants change, not per request: a bad record is
// reported once per rebuild, so the number of reports counts the rebuilds.
TEST_F(TenantGateTest, IndexIsRebuiltOnlyWhenTheRevisionMoves) {
  ASSERT_TRUE(store_->Put(store::keys::Tenant("broken"), "{not json").ok());
  TenantGate gate(*cache_, {});
  ASSERT_TRUE(Eventually([&] {
    auto snapshot = cache_->Snapshot();
    return snapshot->entries.count(store::keys::Tenant("broken")) == 1;
  }));
  std::ostringstream log;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(log);
  auto logger = spdlog::default_logger();
  logger->sinks().push_back(sink);
  auto count_reports = [&] {
    std::string text = log.str();
    size_t count = 0;
    for (size_t at = text.find("ignoring"); at != std::string::npos;
         at = text.find("ignoring", at + 1)) {
      ++count;
    }
    return count;
  };
  for (int i = 0; i < 100; ++i) ASSERT_EQ(IdFor(gate, "Bearer key-acme-1"), "acme");
  EXPECT_EQ(count_reports(), 1u);
  Put(MakeTenant("initech", {"key-initech"}));
  EXPECT_TRUE(Eventually([&] { return IdFor(gate, "Bearer key-initech") == "initech"; }));
  for (int i = 0; i < 100; ++i) ASSERT_EQ(IdFor(gate, "Bearer key-globex"), "globex");
  EXPECT_EQ(count_reports(), 2u);
  logger->sinks().pop_back();
}

TEST_F(TenantGateTest, UpperCaseStoredHashesMatch) {
  store::Tenant shouting = MakeTenant("shouting", {});
  std::string hash = HashApiKey("key-shouting");
  for (char& c : hash) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  shouting.api_key_hashes.push_back(hash);
  Put(shouting);
  TenantGate gate(*cache_, {});
  EXPECT_TRUE(Eventually([&] { return IdFor(gate, "Bearer key-shouting") == "shouting"; }));
}

TEST_F(TenantGateTest, RateLimitIsATokenBucket) {
  ManualClock clock;
  TenantGate gate(*cache_, clock.Options());
  store::Tenant tenant = MakeTenant("acme", {});
  tenant.requests_per_second = 2;  // burst 2
  std::chrono::seconds retry_after{0};

  EXPECT_TRUE(gate.Admit(tenant, 10, &retry_after).ok());
  EXPECT_TRUE(gate.Admit(tenant, 10, &retry_after).ok());
  auto refused = gate.Admit(tenant, 10, &retry_after);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), base::StatusCode::kResourceExhausted);
  EXPECT_EQ(refused.status().message(), "tenant acme is over its rate of 2 requests per second");
  EXPECT_EQ(retry_after, 1s);

  clock.now += 500ms;  // one token back
  EXPECT_TRUE(gate.Admit(tenant, 10, &retry_after).ok());
  EXPECT_FALSE(gate.Admit(tenant, 10, &retry_after).ok());

  clock.now += 10s;  // the bucket holds at most the burst
  EXPECT_TRUE(gate.Admit(tenant, 10, &retry_after).ok());
  EXPECT_TRUE(gate.Admit(tenant, 10, &retry_after).ok());
  EXPECT_FALSE(gate.Admit(tenant, 10, nullptr).ok());

  // Another tenant has its own bucket.
  store::Tenant other = MakeTenant("globex", {});
  other.requests_per_second = 2;
  EXPECT_TRUE(gate.Admit(other, 10, &retry_after).ok());

  // Under one request a second the burst is still one, and the wait is longer.
  store::Tenant trickle = MakeTenant("trickle", {});
  trickle.requests_per_second = 0.25;
  EXPECT_TRUE(gate.Admit(trickle, 10, &retry_after).ok());
  EXPECT_FALSE(gate.Admit(trickle, 10, &retry_after).ok());
  EXPECT_EQ(retry_after, 4s);
  clock.now += 4s;
  EXPECT_TRUE(gate.Admit(trickle, 10, &retry_after).ok());
}

TEST_F(TenantGateTest, ZeroLimitsUseTheDefaults) {
  ManualClock clock;
  TenantGateOptions options = clock.Options();
  options.default_requests_per_second = 3;
  options.default_max_concurrent_requests = 2;
  TenantGate gate(*cache_, options);
  store::Tenant tenant = MakeTenant("acme", {});
  std::vector<std::shared_ptr<AdmissionTicket>> held;
  for (int i = 0; i < 2; ++i) {
    auto admitted = gate.Admit(tenant, 0, nullptr);
    ASSERT_TRUE(admitted.ok());
    held.push_back(std::move(*admitted));
  }
  EXPECT_FALSE(gate.Admit(tenant, 0, nullptr).ok()) << "default concurrency 2";
  held.clear();
  EXPECT_TRUE(gate.Admit(tenant, 0, nullptr).ok()) << "third of the default burst 3";
  EXPECT_FALSE(gate.Admit(tenant, 0, nullptr).ok()) << "default rate 3";
}

TEST_F(TenantGateTest, ConcurrencySlotIsReleasedWithTheTicket) {
  ManualClock clock;
  TenantGate gate(*cache_, clock.Options());
  store::Tenant tenant = MakeTenant("acme", {});
  tenant.requests_per_second = 3;
  tenant.max_concurrent_requests = 1;
  std::chrono::seconds retry_after{0};

  auto first = gate.Admit(tenant, 10, &retry_after);
  ASSERT_TRUE(first.ok());
  for (int i = 0; i < 5; ++i) {
    auto refused = gate.Admit(tenant, 10, &retry_after);
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.status().code(), base::StatusCode::kResourceExhausted);
    EXPECT_EQ(retry_after, 1s);
  }
  first->reset();
  // The refusals spent no tokens: two of the three remain.
  auto second = gate.Admit(tenant, 10, &retry_after);
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  second->reset();
  EXPECT_TRUE(gate.Admit(tenant, 10, &retry_after).ok());
}

TEST_F(TenantGateTest, ConcurrencyHoldsUnderThreads) {
  TenantGate gate(*cache_, {});
  store::Tenant tenant = MakeTenant("acme", {});
  tenant.requests_per_second = 1e9;
  tenant.max_concurrent_requests = 3;
  std::atomic<int> running{0};
  std::atomic<int> most{0};
  std::atomic<int> admitted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 2000; ++i) {
        auto admission = gate.Admit(tenant, 0, nullptr);
        if (!admission.ok()) continue;
        ++admitted;
        int now = ++running;
        int seen = most.load();
        while (now > seen && !most.compare_exchange_weak(seen, now)) {
        }
        --running;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_LE(most.load(), 3);
  EXPECT_GT(admitted.load(), 0);
}

// The counters are found through a map per thread, but they are the tenant's, shared by
// every thread: tokens one thread took are gone for the others.
TEST_F(TenantGateTest, RateLimitHoldsAcrossThreads) {
  ManualClock clock;
  TenantGate gate(*cache_, clock.Options());
  store::Tenant tenant = MakeTenant("acme", {});
  tenant.requests_per_second = 2;  // burst 2
  std::thread([&] {
    EXPECT_TRUE(gate.Admit(tenant, 0, nullptr).ok());
    EXPECT_TRUE(gate.Admit(tenant, 0, nullptr).ok());
  }).join();
  EXPECT_FALSE(gate.Admit(tenant, 0, nullptr).ok()) << "the other thread took the burst";
  std::thread([&] { EXPECT_FALSE(gate.Admit(tenant, 0, nullptr).ok()); }).join();
}

// Each gate counts for itself, also when one thread uses two (the per-thread map is the
// last gate's): switching gates neither mixes nor forgets counts.
TEST_F(TenantGateTest, TwoGatesOnOneThreadCountApart) {
  ManualClock clock;
  TenantGate gate(*cache_, clock.Options());
  TenantGate other_gate(*cache_, clock.Options());
  store::Tenant tenant = MakeTenant("acme", {});
  tenant.requests_per_second = 1;  // burst 1
  EXPECT_TRUE(gate.Admit(tenant, 0, nullptr).ok());
  EXPECT_TRUE(other_gate.Admit(tenant, 0, nullptr).ok()) << "counted on the other gate";
  EXPECT_FALSE(gate.Admit(tenant, 0, nullptr).ok()) << "the first gate forgot its count";
  EXPECT_FALSE(other_gate.Admit(tenant, 0, nullptr).ok());
}

TEST_F(TenantGateTest, TicketMayOutliveTheGate) {
  std::shared_ptr<AdmissionTicket> ticket;
  {
    TenantGate gate(*cache_, {});
    auto admitted = gate.Admit(MakeTenant("acme", {}), 0, nullptr);
    ASSERT_TRUE(admitted.ok());
    ticket = std::move(*admitted);
  }
  ticket.reset();  // must not touch the destroyed gate
}

TEST_F(TenantGateTest, RequestSizeLimit) {
  TenantGateOptions options;
  options.max_request_bytes = 100;
  options.default_max_concurrent_requests = 1;
  TenantGate gate(*cache_, options);
  store::Tenant tenant = MakeTenant("acme", {});
  auto too_big = gate.Admit(tenant, 101, nullptr);
  ASSERT_FALSE(too_big.ok());
  EXPECT_EQ(too_big.status().code(), base::StatusCode::kOutOfRange);
  EXPECT_NE(too_big.status().message().find("100"), std::string::npos);
  auto too_big_again = gate.Admit(tenant, UINT64_MAX, nullptr);
  EXPECT_EQ(too_big_again.status().code(), base::StatusCode::kOutOfRange);
  // The refusals took no slot: the one slot is still free.
  EXPECT_TRUE(gate.Admit(tenant, 100, nullptr).ok());
}

TEST(TenantGateRegionTest, ExactNamesAndTrailingWildcards) {
  store::Tenant anywhere;
  EXPECT_TRUE(TenantGate::RegionAllowed(anywhere, "us-east-1"));
  EXPECT_TRUE(TenantGate::RegionAllowed(anywhere, "eu-west-3"));

  store::Tenant exact;
  exact.allowed_regions = {"us-east-1", "eu-west-1"};
  EXPECT_TRUE(TenantGate::RegionAllowed(exact, "us-east-1"));
  EXPECT_TRUE(TenantGate::RegionAllowed(exact, "eu-west-1"));
  EXPECT_FALSE(TenantGate::RegionAllowed(exact, "us-east-10"));
  EXPECT_FALSE(TenantGate::RegionAllowed(exact, "us-east"));
  EXPECT_FALSE(TenantGate::RegionAllowed(exact, "US-EAST-1"));
  EXPECT_FALSE(TenantGate::RegionAllowed(exact, ""));

  store::Tenant wildcard;
  wildcard.allowed_regions = {"us-east-*"};
  EXPECT_TRUE(TenantGate::RegionAllowed(wildcard, "us-east-1"));
  EXPECT_TRUE(TenantGate::RegionAllowed(wildcard, "us-east-2"));
  EXPECT_FALSE(TenantGate::RegionAllowed(wildcard, "us-west-1"));
  EXPECT_FALSE(TenantGate::RegionAllowed(wildcard, "us-east"));
  EXPECT_FALSE(TenantGate::RegionAllowed(wildcard, "eu-us-east-1"));

  store::Tenant middle;  // '*' is a wildcard only at the end
  middle.allowed_regions = {"us-*-1"};
  EXPECT_FALSE(TenantGate::RegionAllowed(middle, "us-east-1"));
  EXPECT_TRUE(TenantGate::RegionAllowed(middle, "us-*-1"));

  store::Tenant everything;
  everything.allowed_regions = {"*"};
  EXPECT_TRUE(TenantGate::RegionAllowed(everything, "ap-south-1"));
  EXPECT_FALSE(TenantGate::RegionAllowed(everything, ""));
}

}  // namespace
}  // namespace supercluster::router
