// The balancer's choices and memory, with an injected clock and random source so that
// every run sees the same sequence.
#include "router/balancer.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <memory>
#include <queue>
#include <random>
#include <thread>
#include <vector>

namespace supercluster::router {
namespace {

using std::chrono::milliseconds;

class FakeTime {
 public:
  Balancer::TimePoint now() const { return now_; }
  void Advance(milliseconds step) { now_ += step; }
  Balancer::Clock clock() {
    return [this] { return now_; };
  }

 private:
  Balancer::TimePoint now_ = Balancer::TimePoint{} + std::chrono::hours(1);
};

Balancer::Random SeededRandom(uint64_t seed) {
  auto engine = std::make_shared<std::mt19937_64>(seed);
  return [engine] { return (*engine)(); };
}

TEST(BalancerTest, FiveTimesSlowerUpstreamGetsAProportionallySmallerShare) {
  FakeTime time;
  Balancer balancer({}, time.clock(), SeededRandom(7));
  const std::vector<std::string_view> ids = {"fast-1", "fast-2", "fast-3", "slow"};
  std::map<std::string, milliseconds> service_time = {
      {"fast-1", milliseconds(10)}, {"fast-2", milliseconds(10)}, {"fast-3", milliseconds(10)},
      {"slow", milliseconds(50)}};
  // A request every millisecond for 20 simulated seconds; completions in time order.
  using Done = std::pair<Balancer::TimePoint, std::string>;
  std::priority_queue<Done, std::vector<Done>, std::greater<Done>> in_flight;
  std::map<std::string, int> picks;
  for (int tick = 0; tick < 20000; ++tick) {
    time.Advance(milliseconds(1));
    while (!in_flight.empty() && in_flight.top().first <= time.now()) {
      balancer.OnFinish(in_flight.top().second, Outcome::kSuccess,
                        service_time[in_flight.top().second]);
      in_flight.pop();
    }
    std::optional<std::string> pick(balancer.Pick(ids));
    ASSERT_TRUE(pick.has_value());
    ++picks[*pick];
    balancer.OnStart(*pick);
    in_flight.push({time.now() + service_time[*pick], *pick});
  }
  double fast_average = (picks["fast-1"] + picks["fast-2"] + picks["fast-3"]) / 3.0;
  EXPECT_GT(picks["slow"], 0) << "the slow upstream still gets some traffic";
  // At 5x the latency its fair share is at most a fifth of a fast one's.
  EXPECT_LT(picks["slow"], fast_average / 5) << "slow " << picks["slow"] << " fast " << fast_average;
  for (const char* fast : {"fast-1", "fast-2", "fast-3"}) {
    EXPECT_GT(picks[fast], fast_average * 0.8);
  }
}

TEST(BalancerTest, PeakEwmaJumpsUpAtOnceAndDecaysSlowly) {
  FakeTime time;
  BalancerOptions options;
  options.ewma_decay = milliseconds(10000);
  Balancer balancer(options, time.clock(), SeededRandom(1));
  balancer.OnStart("a");
  balancer.OnFinish("a", Outcome::kSuccess, milliseconds(10));
  balancer.OnStart("a");
  balancer.OnFinish("a", Outcome::kSuccess, milliseconds(500));
  EXPECT_DOUBLE_EQ(balancer.States()[0].ewma_ms, 500);
  time.Advance(milliseconds(1000));  // a tenth of the time constant
  balancer.OnStart("a");
  balancer.OnFinish("a", Outcome::kSuccess, milliseconds(10));
  double ewma = balancer.States()[0].ewma_ms;
  EXPECT_GT(ewma, 400);  // 500 e^-0.1 + 10 (1 - e^-0.1) = 453
  EXPECT_LT(ewma, 500);
  time.Advance(milliseconds(100000));  // ten time constants later it has caught up
  balancer.OnStart("a");
  balancer.OnFinish("a", Outcome::kSuccess, milliseconds(10));
  EXPECT_NEAR(balancer.States()[0].ewma_ms, 10, 0.1);
}

TEST(BalancerTest, OutstandingRequestsRaiseTheCost) {
  FakeTime time;
  Balancer balancer({}, time.clock(), SeededRandom(3));
  // Same latency; "busy" has three requests in flight, so two choices always pick "idle".
  for (const char* id : {"busy", "idle"}) {
    balancer.OnStart(id);
    balancer.OnFinish(id, Outcome::kSuccess, milliseconds(10));
  }
  for (int i = 0; i < 3; ++i) balancer.OnStart("busy");
  for (int i = 0; i < 20; ++i) EXPECT_EQ(balancer.Pick({"busy", "idle"}), "idle");
  EXPECT_EQ(balancer.Outstanding("busy"), 3);
}

TEST(BalancerTest, AlwaysFailingUpstreamIsEjectedForLongerEachTime) {
  FakeTime time;
  BalancerOptions options;
  options.failures_to_eject = 5;
  options.base_ejection_time = milliseconds(1000);
  options.max_ejection_time = milliseconds(2500);
  Balancer balancer(options, time.clock(), SeededRandom(5));
  std::vector<std::string> ejections;
  balancer.SetEjectionObserver([&](const std::string& id) { ejections.push_back(id); });
  auto fail = [&] {
    balancer.OnStart("bad");
    balancer.OnFinish("bad", Outcome::kFailure, milliseconds(1));
  };
  for (int i = 0; i < 4; ++i) fail();
  EXPECT_TRUE(balancer.Available("bad")) << "four failures are not five";
  fail();
  EXPECT_FALSE(balancer.Available("bad"));
  EXPECT_EQ(ejections.size(), 1u);
  EXPECT_EQ(balancer.Pick({"bad", "good"}), "good");
  EXPECT_EQ(balancer.Pick({"bad"}), std::nullopt);

  time.Advance(milliseconds(999));
  EXPECT_FALSE(balancer.Available("bad"));
  time.Advance(milliseconds(1));
  EXPECT_TRUE(balancer.Available("bad")) << "back on probation after 1 x base";
  fail();  // one failure on probation ejects again, now for 2 x base
  EXPECT_FALSE(balancer.Available("bad"));
  EXPECT_EQ(ejections.size(), 2u);
  time.Advance(milliseconds(1999));
  EXPECT_FALSE(balancer.Available("bad"));
  time.Advance(milliseconds(1));
  EXPECT_TRUE(balancer.Available("bad"));
  fail();  // third time: 3 x base = 3000, capped at 2500
  EXPECT_EQ(balancer.States()[0].ejection_remaining_ms, 2500);
  EXPECT_EQ(balancer.States()[0].times_ejected, 3);

  // A success after probation ends it: failures must again reach five.
  time.Advance(milliseconds(2500));
  balancer.OnStart("bad");
  balancer.OnFinish("bad", Outcome::kSuccess, milliseconds(1));
  for (int i = 0; i < 4; ++i) fail();
  EXPECT_TRUE(balancer.Available("bad"));
}

TEST(BalancerTest, SaturationAndAbandonmentAreNotFailures) {
  FakeTime time;
  Balancer balancer({}, time.clock(), SeededRandom(5));
  for (int i = 0; i < 20; ++i) {
    balancer.OnStart("w");
    balancer.OnFinish("w", i % 2 ? Outcome::kSaturated : Outcome::kAbandoned, milliseconds(1));
  }
  EXPECT_TRUE(balancer.Available("w"));
  EXPECT_EQ(balancer.Outstanding("w"), 0);
}

TEST(BalancerTest, HealthChecksMarkDownAndUpAndMeasureRoundTrip) {
  FakeTime time;
  Balancer balancer({}, time.clock(), SeededRandom(5));
  balancer.OnHealthCheck("r", HealthCheckResult::kPassed, milliseconds(40));
  EXPECT_DOUBLE_EQ(balancer.RoundTripMs("r"), 40);
  balancer.OnHealthCheck("r", HealthCheckResult::kFailed, milliseconds(0));
  EXPECT_TRUE(balancer.Available("r")) << "one failed check is not enough";
  balancer.OnHealthCheck("r", HealthCheckResult::kFailed, milliseconds(0));
  EXPECT_FALSE(balancer.Available("r"));
  balancer.OnHealthCheck("r", HealthCheckResult::kPassed, milliseconds(40));
  EXPECT_TRUE(balancer.Available("r"));
  balancer.OnHealthCheck("r", HealthCheckResult::kConnectFailed, milliseconds(0));
  EXPECT_FALSE(balancer.Available("r")) << "a refused connection counts at once";
  EXPECT_DOUBLE_EQ(balancer.RoundTripMs("unknown"), -1);
}

// The global tier's per-request question: may it go there, and how near is it?

TEST(BalancerTest, RetainForgetsOthers) {
  FakeTime time;
  Balancer balancer({}, time.clock(), SeededRandom(5));
  balancer.OnStart("a");
  balancer.OnStart("b");
  balancer.Retain({"b"});
  auto states = balancer.States();
  ASSERT_EQ(states.size(), 1u);
  EXPECT_EQ(states[0].id, "b");
}

RetryBudgetOptions BudgetOptions(double ratio, double min_retries_per_second,
                                 milliseconds window) {
  RetryBudgetOptions options;
  options.ratio = ratio;
  options.min_retries_per_second = min_retries_per_second;
  options.window = window;
  return options;
}

TEST(RetryBudgetTest, CapsRetriesAtTheRatioWithAFloor) {
  RetryBudget budget(BudgetOptions(0.2, 1, milliseconds(10000)));
  auto now = std::chrono::steady_clock::time_point{} + std::chrono::hours(1);
  // With no traffic the floor allows 1/s x 10 s = 10 retries.
  int allowed = 0;
  for (int i = 0; i < 100; ++i) allowed += budget.TryRetry(now) ? 1 : 0;
  EXPECT_EQ(allowed, 10);
  // 1000 requests raise the allowance to 200 in all.
  for (int i = 0; i < 1000; ++i) budget.RecordRequest(now);
  allowed = 0;
  for (int i = 0; i < 1000; ++i) allowed += budget.TryRetry(now) ? 1 : 0;
  EXPECT_EQ(allowed, 190);
  EXPECT_EQ(budget.RetriesInWindow(now), 200);
  // Once the window has passed, the old counts no longer weigh.
  now += std::chrono::seconds(11);
  EXPECT_EQ(budget.RequestsInWindow(now), 0);
  EXPECT_TRUE(budget.TryRetry(now));
}

// A retry per ten first tries within a second, and no allowance besides.
BalancerOptions TenPercentRetryBudget() {
  BalancerOptions options;
  options.retry_budget = BudgetOptions(0.1, 0, milliseconds(1000));
  return options;
}

TEST(RetryBudgetTest, BalancerUsesTheBudget) {
  FakeTime time;
  Balancer balancer(TenPercentRetryBudget(), time.clock(), SeededRandom(5));
  EXPECT_FALSE(balancer.TryRetry());
  for (int i = 0; i < 50; ++i) balancer.OnStart("a");  // retries: no budget from them
  EXPECT_FALSE(balancer.TryRetry());
  for (int i = 0; i < 50; ++i) balancer.OnFirstStart("a");
  int allowed = 0;
  for (int i = 0; i < 50; ++i) allowed += balancer.TryRetry() ? 1 : 0;
  EXPECT_EQ(allowed, 5);
  EXPECT_EQ(balancer.Outstanding("a"), 100);
}

// The proxy's first try goes through PickAndStart instead of Pick and OnFirstStart: it must
// count what those two count, the request for the retry budget only on a first try.
TEST(RetryBudgetTest, PickAndStartCountsWhatPickAndOnFirstStartCount) {
  FakeTime time;
  Balancer balancer(TenPercentRetryBudget(), time.clock(), SeededRandom(5));
  const std::vector<std::string_view> ids = {"a", "b"};
  std::map<std::string, int64_t> picked;
  for (int i = 0; i < 40; ++i) ++picked[std::string(*balancer.PickAndStart(ids, false))];
  EXPECT_FALSE(balancer.TryRetry());  // retries only: no budget from them
  for (int i = 0; i < 60; ++i) ++picked[std::string(*balancer.PickAndStart(ids, true))];
  EXPECT_EQ(balancer.Outstanding("a"), picked["a"]);
  EXPECT_EQ(balancer.Outstanding("b"), picked["b"]);
  // Counted as started, so the load evens out: two choices by outstanding requests.
  EXPECT_LE(std::abs(picked["a"] - picked["b"]), 2);
  int allowed = 0;
  for (int i = 0; i < 50; ++i) allowed += balancer.TryRetry() ? 1 : 0;
  EXPECT_EQ(allowed, 6);
  // None available: nothing picked, nothing counted.
  EXPECT_EQ(balancer.PickAndStart({}, true), std::nullopt);
  EXPECT_EQ(balancer.Outstanding("a") + balancer.Outstanding("b"), 100);
}

// The global tier's choice: the nearest available region by measured round trip, counted
// as started (and, on a first try, as a request for the retry budget) when asked.
TEST(BalancerTest, NearestAndStartTakesTheNearestAvailableRegion) {
  FakeTime time;
  BalancerOptions options = TenPercentRetryBudget();
  options.failures_to_eject = 1;
  Balancer balancer(options, time.clock(), SeededRandom(5));
  balancer.OnHealthCheck("west", HealthCheckResult::kPassed, milliseconds(65));
  balancer.OnHealthCheck("east", HealthCheckResult::kPassed, milliseconds(12));
  balancer.OnHealthCheck("down", HealthCheckResult::kPassed, milliseconds(2));
  balancer.OnHealthCheck("down", HealthCheckResult::kConnectFailed, milliseconds(0));
  balancer.OnHealthCheck("ejected", HealthCheckResult::kPassed, milliseconds(1));
  balancer.OnStart("ejected");
  balancer.OnFinish("ejected", Outcome::kFailure, milliseconds(0));
  const std::vector<std::string_view> all = {"north", "west", "east", "down", "ejected"};

  EXPECT_EQ(balancer.NearestAndStart(all, false, false), "east")
      << "nearest of the available ones (not the marked-down or ejected ones)";
  EXPECT_EQ(balancer.Outstanding("east"), 0) << "not started when not asked";
  EXPECT_EQ(balancer.NearestAndStart({"north", "west"}, false, false), "west")
      << "a measured region before one not measured yet";
  EXPECT_EQ(balancer.NearestAndStart({"north", "south"}, false, false), "north")
      << "a tie goes to the earlier";
  balancer.OnHealthCheck("east-2", HealthCheckResult::kPassed, milliseconds(12));
  EXPECT_EQ(balancer.NearestAndStart({"east-2", "east"}, false, false), "east-2");
  EXPECT_EQ(balancer.NearestAndStart({"down"}, true, true), std::nullopt);
  EXPECT_EQ(balancer.Outstanding("down"), 0) << "none available: nothing counted";

  for (int i = 0; i < 10; ++i) EXPECT_EQ(balancer.NearestAndStart(all, true, false), "east");
  EXPECT_EQ(balancer.Outstanding("east"), 10);
  EXPECT_FALSE(balancer.TryRetry()) << "retries' starts give no budget";
  for (int i = 0; i < 20; ++i) EXPECT_EQ(balancer.NearestAndStart(all, true, true), "east");
  EXPECT_EQ(balancer.Outstanding("east"), 30);
  int allowed = 0;
  for (int i = 0; i < 10; ++i) allowed += balancer.TryRetry() ? 1 : 0;
  EXPECT_EQ(allowed, 2) << "a tenth of the 20 first tries";

  time.Advance(options.base_ejection_time);
  EXPECT_EQ(balancer.NearestAndStart(all, false, false), "ejected")
      << "back, and nearest, once its ejection is over";
}

// The per-request path takes no lock: from several threads at once, every request started
// is finished exactly once in the counts, the latency estimate follows the samples, and a
// failing upstream is still ejected, once.
TEST(BalancerConcurrencyTest, ManyThreadsKeepTheCountsAndEjectAFailingUpstream) {
  BalancerOptions options;
  options.failures_to_eject = 3;
  options.base_ejection_time = std::chrono::hours(1);  // stays out for the rest of the test
  Balancer balancer(options);  // the real clock and per-thread random engines
  std::atomic<int> ejections{0};
  balancer.SetEjectionObserver([&](const std::string& id) {
    EXPECT_EQ(id, "bad");
    ++ejections;
  });
  const std::vector<std::string_view> good = {"a", "b"};
  const std::vector<std::string_view> bad = {"bad"};
  std::atomic<int> bad_tries{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 20000; ++i) {
        // Every tenth request can only go to "bad", while it is available.
        const bool to_bad = i % 10 == 0;
        std::optional<std::string_view> picked = balancer.PickAndStart(to_bad ? bad : good, i % 2 == 0);
        if (!picked) {
          EXPECT_TRUE(to_bad) << "a and b are never unavailable";
          continue;
        }
        if (to_bad) ++bad_tries;
        balancer.OnFinish(std::string(*picked), to_bad ? Outcome::kFailure : Outcome::kSuccess,
                          std::chrono::microseconds(100 + i % 50));
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(balancer.Outstanding("a"), 0);
  EXPECT_EQ(balancer.Outstanding("b"), 0);
  EXPECT_EQ(balancer.Outstanding("bad"), 0);
  EXPECT_EQ(ejections.load(), 1) << "ejected once, and not let back within the hour";
  // Three failures eject it; the other threads' picks already under way may add a few.
  EXPECT_GE(bad_tries.load(), 3);
  EXPECT_LE(bad_tries.load(), 3 + 3 * 2);
  EXPECT_FALSE(balancer.Available("bad"));
  // An upstream's estimate is its samples' (100 to 149 µs) once it has any; until then the
  // initial 20 ms, which two choices by latency may keep: the other one answered faster.
  int sampled = 0;
  for (const UpstreamState& state : balancer.States()) {
    if (state.id == "bad" || state.ewma_ms == 20) continue;
    ++sampled;
    EXPECT_GE(state.ewma_ms, 0.099) << state.id;
    EXPECT_LE(state.ewma_ms, 0.150) << state.id;
  }
  EXPECT_GE(sampled, 1);
}

// Each thread finds entries through its own copy of the list: dropping an id (Retain) must
// reach that copy, or the thread would go on counting on an entry nobody reads.
TEST(BalancerConcurrencyTest, AThreadsCopyFollowsRetain) {
  FakeTime time;
  Balancer balancer({}, time.clock(), SeededRandom(5));
  balancer.OnStart("a");  // this thread's copy now holds "a"
  EXPECT_EQ(balancer.Outstanding("a"), 1);
  balancer.Retain({"b"});  // "a" forgotten
  balancer.OnStart("a");   // mentioned again: a new entry
  EXPECT_EQ(balancer.Outstanding("a"), 1) << "counted on the dropped entry";
  // One more from another thread, whose copy is made after the change.
  std::thread([&] { balancer.OnStart("a"); }).join();
  EXPECT_EQ(balancer.Outstanding("a"), 2);
  balancer.OnFinish("a", Outcome::kSuccess, milliseconds(1));
  balancer.OnFinish("a", Outcome::kSuccess, milliseconds(1));
  balancer.OnFinish("a", Outcome::kSuccess, milliseconds(1));
  EXPECT_EQ(balancer.Outstanding("a"), 0) << "never below none";
}

// A thread keeps copies for a few balancers: many balancers used in turn on one thread
// each keep their own entries.
TEST(BalancerConcurrencyTest, ManyBalancersOnOneThreadKeepTheirOwnEntries) {
  FakeTime time;
  std::vector<std::unique_ptr<Balancer>> balancers;
  for (int i = 0; i < 7; ++i) {
    balancers.push_back(std::make_unique<Balancer>(BalancerOptions{}, time.clock(), SeededRandom(5)));
  }
  for (int round = 0; round < 3; ++round) {
    for (size_t i = 0; i < balancers.size(); ++i) {
      for (size_t k = 0; k <= i; ++k) balancers[i]->OnStart("x");
    }
  }
  for (size_t i = 0; i < balancers.size(); ++i) {
    EXPECT_EQ(balancers[i]->Outstanding("x"), static_cast<int64_t>(3 * (i + 1))) << i;
  }
}

// First tries are counted for the retry budget from any thread, each in its own shard, and
// summed when a retry is asked for.
TEST(RetryBudgetTest, RequestsRecordedOnManyThreadsAllCount) {
  RetryBudget budget(BudgetOptions(0.5, 0, milliseconds(10000)));
  const auto now = std::chrono::steady_clock::time_point{} + std::chrono::hours(1);
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) budget.RecordRequest(now + milliseconds(i % 3000));
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(budget.RequestsInWindow(now + milliseconds(2999)), 60000);
  // i % 3000 falls in the third second for 3,000 of each thread's 10,000 requests.
  EXPECT_EQ(budget.RequestsInWindow(now + milliseconds(11500)), 18000)
      << "the first two seconds' requests have left the window";
  int allowed = 0;
  for (int i = 0; i < 40000; ++i) allowed += budget.TryRetry(now + milliseconds(2999)) ? 1 : 0;
  EXPECT_EQ(allowed, 30000);
}

}  // namespace
}  // namespace supercluster::router
