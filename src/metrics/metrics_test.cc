#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "metrics/http_metrics.h"
#include "metrics/names.h"
#include "metrics/registry.h"
#include "metrics/sharded_counter.h"
#include "metrics/thread_shard.h"

namespace supercluster::metrics {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;
using std::chrono::nanoseconds;

// The value of the sample whose name and labels are exactly `series` (as the text format
// writes them, labels sorted by name and `le` last), or nullopt when there is none.
std::optional<double> SampleValue(const std::string& text, const std::string& series) {
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (line.size() > series.size() && line.starts_with(series) && line[series.size()] == ' ') {
      return std::stod(line.substr(series.size() + 1));
    }
  }
  return std::nullopt;
}

bool HasLine(const std::string& text, const std::string& wanted) {
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (line == wanted) return true;
  }
  return false;
}

// ---- Registry ----

TEST(RegistryTest, CounterSeriesAppearWithHelpTypeAndLabels) {
  Registry registry;
  CounterFamily& family = registry.AddCounter("test_events_total", "Events seen.");
  family.Add({{"kind", "a"}, {"zone", "z1"}}).Increment(3);
  family.Add({{"kind", "b"}, {"zone", "z1"}}).Increment();
  family.Add({{"kind", "a"}, {"zone", "z1"}}).Increment(0.5);

  std::string text = registry.Serialize();
  EXPECT_TRUE(HasLine(text, "# HELP test_events_total Events seen.")) << text;
  EXPECT_TRUE(HasLine(text, "# TYPE test_events_total counter")) << text;
  EXPECT_EQ(SampleValue(text, R"(test_events_total{kind="a",zone="z1"})"), 3.5) << text;
  EXPECT_EQ(SampleValue(text, R"(test_events_total{kind="b",zone="z1"})"), 1) << text;
}

TEST(RegistryTest, GaugeCarriesConstantLabels) {
  Registry registry;
  GaugeFamily& family =
      registry.AddGauge("test_queue_depth", "Items waiting.", {{"region", "eu-west-1"}});
  prometheus::Gauge& gauge = family.Add({});
  gauge.Set(7);
  gauge.Decrement(2);

  std::string text = registry.Serialize();
  EXPECT_TRUE(HasLine(text, "# TYPE test_queue_depth gauge")) << text;
  EXPECT_EQ(SampleValue(text, R"(test_queue_depth{region="eu-west-1"})"), 5) << text;
}

// A hook sets its gauge from the state it reads at every scrape, so each scrape shows the
// state of that moment; hooks run in the order they were added.
TEST(RegistryTest, ScrapeHooksRunBeforeEveryScrapeInOrder) {
  Registry registry;
  prometheus::Gauge& gauge = registry.AddGauge("test_state_age_seconds", "Age.").Add({});
  int state = 1;
  std::vector<std::string> order;
  registry.AddScrapeHook([&] {
    order.push_back("first");
    gauge.Set(state);
  });
  registry.AddScrapeHook([&] { order.push_back("second"); });
  EXPECT_EQ(SampleValue(registry.Serialize(), "test_state_age_seconds"), 1);
  state = 42;
  EXPECT_EQ(SampleValue(registry.Serialize(), "test_state_age_seconds"), 42);
  EXPECT_EQ(order, (std::vector<std::string>{"first", "second", "first", "second"}));
}

TEST(RegistryTest, HistogramBucketsAreCumulativeWithCountAndSum) {
  Registry registry;
  DurationHistogramFamily& family =
      registry.AddDurationHistogram("test_wait_seconds", "Waiting time.");
  DurationHistogram& histogram = family.Add({{"queue", "q"}}, BucketBoundaries{1, 2, 5});
  // An upper bound is inclusive: 1 s falls in the le="1" bucket.
  for (int value : {500, 1000, 1500, 3000, 10000}) histogram.Observe(milliseconds(value));

  std::string text = registry.Serialize();
  EXPECT_TRUE(HasLine(text, "# TYPE test_wait_seconds histogram")) << text;
  EXPECT_EQ(SampleValue(text, R"(test_wait_seconds_bucket{queue="q",le="1"})"), 2) << text;
  EXPECT_EQ(SampleValue(text, R"(test_wait_seconds_bucket{queue="q",le="2"})"), 3) << text;
  EXPECT_EQ(SampleValue(text, R"(test_wait_seconds_bucket{queue="q",le="5"})"), 4) << text;
  EXPECT_EQ(SampleValue(text, R"(test_wait_seconds_bucket{queue="q",le="+Inf"})"), 5) << text;
  EXPECT_EQ(SampleValue(text, R"(test_wait_seconds_count{queue="q"})"), 5) << text;
  EXPECT_EQ(SampleValue(text, R"(test_wait_seconds_sum{queue="q"})"), 16) << text;
}

TEST(RegistryTest, HistogramBoundsAreExactToTheNanosecond) {
  Registry registry;
  DurationHistogram& histogram =
      registry.AddDurationHistogram("test_edge_seconds", "Edges.").Add({}, {0.0005, 0.001});
  histogram.Observe(microseconds(500));                     // on the bound: le="0.0005"
  histogram.Observe(microseconds(500) + nanoseconds(1));   // just above: le="0.001"
  histogram.Observe(milliseconds(1) + nanoseconds(1));     // above the last: +Inf only

  std::string text = registry.Serialize();
  EXPECT_EQ(SampleValue(text, R"(test_edge_seconds_bucket{le="0.0005"})"), 1) << text;
  EXPECT_EQ(SampleValue(text, R"(test_edge_seconds_bucket{le="0.001"})"), 2) << text;
  EXPECT_EQ(SampleValue(text, R"(test_edge_seconds_bucket{le="+Inf"})"), 3) << text;
  std::optional<double> sum = SampleValue(text, "test_edge_seconds_sum");
  ASSERT_TRUE(sum.has_value()) << text;
  EXPECT_NEAR(*sum, 0.002000002, 1e-12);
}

TEST(RegistryTest, HistogramSeriesCarryConstantLabelsAndAreFoundAgain) {
  Registry registry;
  DurationHistogramFamily& family =
      registry.AddDurationHistogram("test_hop_seconds", "Hops.", {{"tier", "regional"}});
  EXPECT_EQ(&registry.AddDurationHistogram("test_hop_seconds", "Hops.", {{"tier", "regional"}}),
            &family);
  DurationHistogram& worker = family.Add({{"kind", "worker"}}, {1});
  EXPECT_EQ(&family.Add({{"kind", "worker"}}, {2, 3}), &worker);  // bounds of the first Add
  worker.Observe(milliseconds(10));
  family.Add({{"kind", "router"}}, {1}).Observe(std::chrono::seconds(2));

  std::string text = registry.Serialize();
  EXPECT_TRUE(HasLine(text, "# TYPE test_hop_seconds histogram")) << text;
  EXPECT_EQ(SampleValue(text, R"(test_hop_seconds_bucket{kind="worker",tier="regional",le="1"})"),
            1)
      << text;
  EXPECT_EQ(SampleValue(text, R"(test_hop_seconds_bucket{kind="router",tier="regional",le="1"})"),
            0)
      << text;
  EXPECT_EQ(SampleValue(text, R"(test_hop_seconds_count{kind="router",tier="regional"})"), 1);
  EXPECT_EQ(text.find(R"(le="2")"), std::string::npos) << text;
}

TEST(RegistryTest, ConcurrentObservationsLoseNothing) {
  Registry registry;
  DurationHistogram& histogram =
      registry.AddDurationHistogram("test_busy_seconds", "Busy.").Add({}, {0.001, 0.01});
  constexpr int kThreads = 4;
  constexpr int kPerThread = 20000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&histogram] {
      for (int i = 0; i < kPerThread; ++i) {
        histogram.Observe(i % 2 == 0 ? microseconds(100) : milliseconds(5));
      }
    });
  }
  for (std::thread& thread : threads) thread.join();

  std::string text = registry.Serialize();
  constexpr double kTotal = kThreads * kPerThread;
  EXPECT_EQ(SampleValue(text, R"(test_busy_seconds_bucket{le="0.001"})"), kTotal / 2) << text;
  EXPECT_EQ(SampleValue(text, R"(test_busy_seconds_bucket{le="0.01"})"), kTotal);
  EXPECT_EQ(SampleValue(text, "test_busy_seconds_count"), kTotal);
  std::optional<double> sum = SampleValue(text, "test_busy_seconds_sum");
  ASSERT_TRUE(sum.has_value());
  EXPECT_NEAR(*sum, kTotal / 2 * (0.0001 + 0.005), 1e-6);
}

TEST(RegistryTest, DefiningANameAgainReturnsTheSameFamily) {
  Registry registry;
  CounterFamily& first = registry.AddCounter("test_again_total", "Defined twice.");
  CounterFamily& second = registry.AddCounter("test_again_total", "Defined twice.");
  EXPECT_EQ(&first, &second);
}

TEST(RegistryDeathTest, InvalidNameAbortsNamingTheMetric) {
  EXPECT_DEATH(
      {
        Registry registry;
        registry.AddCounter("bad name", "Spaces are not allowed.");
      },
      "cannot define metric 'bad name'");
}

TEST(RegistryDeathTest, SameNameWithAnotherTypeAborts) {
  EXPECT_DEATH(
      {
        Registry registry;
        registry.AddCounter("test_clash", "A counter.");
        registry.AddGauge("test_clash", "Then a gauge.");
      },
      "cannot define metric 'test_clash'");
}

TEST(RegistryDeathTest, AHistogramNameUsedByACounterAborts) {
  EXPECT_DEATH(
      {
        Registry registry;
        registry.AddCounter("test_taken", "A counter.");
        registry.AddDurationHistogram("test_taken", "Then a histogram.");
      },
      "cannot define metric 'test_taken'");
}

TEST(RegistryDeathTest, AHistogramLabelNamedLeAborts) {
  EXPECT_DEATH(
      {
        Registry registry;
        registry.AddDurationHistogram("test_le_seconds", "Le.").Add({{"le", "1"}}, {1});
      },
      "invalid label name 'le'");
}

TEST(RegistryTest, LatencyBucketsSpanHalfAMillisecondToAMinuteInOrder) {
  const BucketBoundaries& buckets = LatencyBuckets();
  ASSERT_FALSE(buckets.empty());
  EXPECT_EQ(buckets.front(), 0.0005);
  EXPECT_EQ(buckets.back(), 60);
  for (size_t i = 1; i < buckets.size(); ++i) {
    EXPECT_LT(buckets[i - 1], buckets[i]);
    // Coarser steps would make histogram_quantile() estimates too rough.
    EXPECT_LE(buckets[i] / buckets[i - 1], 2.5);
  }
}

// ---- Sharded metrics ----

// Runs `body` on `threads` threads at once, each told its index, and waits for them.
void OnThreads(int threads, const std::function<void(int)>& body) {
  std::vector<std::thread> running;
  for (int t = 0; t < threads; ++t) running.emplace_back(body, t);
  for (std::thread& thread : running) thread.join();
}

TEST(ThreadShardTest, EachThreadKeepsOneShardAndTheFirstSixteenDiffer) {
  std::vector<size_t> first(kMetricShards);
  std::vector<bool> stable(kMetricShards);
  OnThreads(static_cast<int>(kMetricShards), [&](int t) {
    first[t] = ThreadShard();
    bool same = true;
    for (int i = 0; i < 1000; ++i) same = same && ThreadShard() == first[t];
    stable[t] = same;
  });
  std::set<size_t> distinct;
  for (size_t t = 0; t < kMetricShards; ++t) {
    EXPECT_LT(first[t], kMetricShards);
    EXPECT_TRUE(stable[t]) << "thread " << t;
    distinct.insert(first[t]);
  }
  EXPECT_EQ(distinct.size(), kMetricShards) << "round-robin: as many shards as threads";
}

TEST(ShardedCounterTest, EachShardHasCacheLinesOfItsOwn) {
  EXPECT_GE(alignof(ShardedCounter), kCacheLineBytes);
  EXPECT_GE(sizeof(ShardedCounter), kMetricShards * kCacheLineBytes);
}

TEST(ShardedCounterTest, IncrementsFromManyThreadsSumExactly) {
  ShardedCounter counter;
  EXPECT_EQ(counter.Value(), 0u);
  constexpr int kThreads = 8;
  constexpr uint64_t kPerThread = 100000;
  // Each thread adds a different amount now and then, so that a shard counted twice or
  // left out changes the total.
  OnThreads(kThreads, [&counter](int t) {
    for (uint64_t i = 0; i < kPerThread; ++i) counter.Increment();
    counter.Increment(static_cast<uint64_t>(t) + 1);
  });
  constexpr uint64_t kExpected = kThreads * kPerThread + kThreads * (kThreads + 1) / 2;
  EXPECT_EQ(counter.Value(), kExpected);
  EXPECT_EQ(counter.Collect().counter.value, static_cast<double>(kExpected));
}

TEST(ShardedCounterTest, SeriesAreFoundAgainAndCountedFromManyThreadsInTheExposition) {
  Registry registry;
  ShardedCounterFamily& family = registry.AddShardedCounter("test_hits_total", "Hits.");
  EXPECT_EQ(&registry.AddShardedCounter("test_hits_total", "Hits."), &family);
  ShardedCounter& a = family.Add({{"kind", "a"}});
  EXPECT_EQ(&family.Add({{"kind", "a"}}), &a);
  ShardedCounter& b = family.Add({{"kind", "b"}});
  EXPECT_NE(&b, &a);
  family.Add({{"kind", "never"}});
  OnThreads(8, [&](int) {
    for (int i = 0; i < 100000; ++i) (i % 4 == 0 ? b : a).Increment();
  });

  std::string text = registry.Serialize();
  EXPECT_TRUE(HasLine(text, "# TYPE test_hits_total counter")) << text;
  EXPECT_EQ(SampleValue(text, R"(test_hits_total{kind="a"})"), 600000) << text;
  EXPECT_EQ(SampleValue(text, R"(test_hits_total{kind="b"})"), 200000) << text;
  EXPECT_EQ(SampleValue(text, R"(test_hits_total{kind="never"})"), 0) << text;
}

TEST(DurationHistogramTest, ObservationsFromManyThreadsSumExactly) {
  DurationHistogram histogram(BucketBoundaries{0.001, 0.01, 1});
  constexpr int kThreads = 8;
  constexpr int kPerThread = 100000;
  // Durations whose sum in nanoseconds is exact; each thread's share differs, so that a
  // shard left out or counted twice shows.
  const std::vector<nanoseconds> kDurations = {microseconds(100), milliseconds(5),
                                               std::chrono::seconds(2) + nanoseconds(7)};
  OnThreads(kThreads, [&](int t) {
    for (int i = 0; i < kPerThread; ++i) histogram.Observe(kDurations[(i + t) % 3]);
    for (int i = 0; i <= t; ++i) histogram.Observe(kDurations[0]);
  });
  std::vector<uint64_t> per_bucket(3, 0);  // bucket of kDurations[i] is i (le 0.001, 0.01, +Inf)
  int64_t sum_ns = 0;
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kPerThread; ++i) {
      ++per_bucket[(i + t) % 3];
      sum_ns += kDurations[(i + t) % 3].count();
    }
    per_bucket[0] += t + 1;
    sum_ns += (t + 1) * kDurations[0].count();
  }

  prometheus::ClientMetric metric = histogram.Collect();
  ASSERT_EQ(metric.histogram.bucket.size(), 4u);
  EXPECT_EQ(metric.histogram.bucket[0].cumulative_count, per_bucket[0]);
  EXPECT_EQ(metric.histogram.bucket[1].cumulative_count, per_bucket[0] + per_bucket[1]);
  EXPECT_EQ(metric.histogram.bucket[2].cumulative_count, per_bucket[0] + per_bucket[1]);
  const uint64_t total = per_bucket[0] + per_bucket[1] + per_bucket[2];
  EXPECT_EQ(metric.histogram.bucket[3].cumulative_count, total);
  EXPECT_EQ(metric.histogram.sample_count, total);
  EXPECT_EQ(metric.histogram.sample_sum, static_cast<double>(sum_ns) / 1e9);
}

// The lines of family `name` in `text`: HELP and TYPE in order, then the samples sorted
// (prometheus-cpp writes a family's series in its hash table's order). Empty when the
// family's lines are not together.
std::vector<std::string> FamilyLines(const std::string& text, const std::string& name) {
  std::vector<std::string> header, samples;
  bool seen = false, ended = false;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    const bool comment = line.starts_with("# HELP " + name + " ") ||
                         line.starts_with("# TYPE " + name + " ");
    const bool sample = line.starts_with(name + "{") || line.starts_with(name + " ");
    if (!comment && !sample) {
      ended = seen;
      continue;
    }
    if (ended) return {};
    seen = true;
    (comment ? header : samples).push_back(line);
  }
  std::sort(samples.begin(), samples.end());
  header.insert(header.end(), samples.begin(), samples.end());
  return header;
}

// The exposition of a sharded counter family is what prometheus-cpp writes for a counter
// family with the same name, help, labels and values.
TEST(ShardedCounterTest, ExpositionIsPrometheusCppsForACounter) {
  struct Series {
    prometheus::Labels labels;
    uint64_t value;
  };
  const std::vector<Series> series = {
      {{{"outcome", "ok"}}, 3},
      {{{"outcome", "upstream_error"}, {"a", "x\"y\\z"}}, 12345678912345},
      {{{"outcome", "zero"}}, 0},
      {{{"b", "1"}}, 100000000000000000},  // 1e17, written in exponent form
      {{}, 800000},
  };
  for (const prometheus::Labels& constant :
       {prometheus::Labels{}, prometheus::Labels{{"tier", "regional"}, {"zone", "z"}}}) {
    Registry ours;
    Registry anchor;
    ShardedCounterFamily& sharded =
        ours.AddShardedCounter("test_oracle_total", "Requests, by outcome.", constant);
    CounterFamily& counters =
        anchor.AddCounter("test_oracle_total", "Requests, by outcome.", constant);
    for (const Series& one : series) {
      // Spread over threads, so that the value is a sum over shards.
      OnThreads(4, [&](int t) {
        sharded.Add(one.labels).Increment(one.value / 4 + (t == 0 ? one.value % 4 : 0));
      });
      counters.Add(one.labels).Increment(static_cast<double>(one.value));
    }
    std::vector<std::string> expected = FamilyLines(anchor.Serialize(), "test_oracle_total");
    ASSERT_EQ(expected.size(), 2 + series.size()) << anchor.Serialize();
    EXPECT_EQ(FamilyLines(ours.Serialize(), "test_oracle_total"), expected) << ours.Serialize();
  }
}

TEST(RegistryDeathTest, AShardedCounterNameUsedAgainAsAGaugeAborts) {
  EXPECT_DEATH(
      {
        Registry registry;
        registry.AddShardedCounter("test_taken_total", "A sharded counter.");
        registry.AddGauge("test_taken_total", "Then a gauge.");
      },
      "cannot define metric 'test_taken_total': already defined with another type");
  EXPECT_DEATH(
      {
        Registry registry;
        registry.AddDurationHistogram("test_taken_seconds", "A histogram.");
        registry.AddShardedCounter("test_taken_seconds", "Then a sharded counter.");
      },
      "cannot define metric 'test_taken_seconds': already defined with another type");
}

TEST(RegistryDeathTest, AShardedCounterAndAPrometheusCppCounterOfOneNameAbort) {
  // Both are counters, but the exposition would have two families of that name.
  EXPECT_DEATH(
      {
        Registry registry;
        registry.AddCounter("test_twice_total", "A counter.");
        registry.AddShardedCounter("test_twice_total", "Then a sharded one.");
      },
      "cannot define metric 'test_twice_total': already defined as the other kind of counter");
  EXPECT_DEATH(
      {
        Registry registry;
        registry.AddShardedCounter("test_twice_total", "A sharded counter.");
        registry.AddCounter("test_twice_total", "Then a prometheus-cpp one.");
      },
      "cannot define metric 'test_twice_total': already defined as the other kind of counter");
}

TEST(RegistryDeathTest, AShardedCounterDefinedAgainWithOtherConstantLabelsAborts) {
  EXPECT_DEATH(
      {
        Registry registry;
        registry.AddShardedCounter("test_tiers_total", "Tiers.", {{"tier", "global"}});
        registry.AddShardedCounter("test_tiers_total", "Tiers.", {{"tier", "regional"}});
      },
      "cannot define metric 'test_tiers_total': already defined with other constant labels");
}

TEST(RegistryDeathTest, BadShardedCounterDefinitionsAbort) {
  EXPECT_DEATH(
      {
        Registry registry;
        registry.AddShardedCounter("bad name", "Spaces are not allowed.");
      },
      "cannot define metric 'bad name'");
  EXPECT_DEATH(
      {
        Registry registry;
        registry.AddShardedCounter("test_labels_total", "Labels.").Add({{"bad label", "x"}});
      },
      "counter 'test_labels_total': invalid label name 'bad label'");
  EXPECT_DEATH(
      {
        Registry registry;
        registry.AddShardedCounter("test_labels_total", "Labels.", {{"tier", "regional"}})
            .Add({{"tier", "global"}});
      },
      "counter 'test_labels_total': label name is a constant label's 'tier'");
}

// ---- Process metrics ----

TEST(ProcessMetricsTest, PresentAndPlausible) {
  Registry registry;
  std::string text = registry.Serialize();

  EXPECT_TRUE(HasLine(text, "# TYPE process_cpu_seconds_total counter")) << text;
  std::optional<double> cpu = SampleValue(text, kProcessCpuSecondsTotal);
  ASSERT_TRUE(cpu.has_value()) << text;
  EXPECT_GE(*cpu, 0);

  std::optional<double> rss = SampleValue(text, kProcessResidentMemoryBytes);
  ASSERT_TRUE(rss.has_value()) << text;
  EXPECT_GT(*rss, 0);
  EXPECT_LT(*rss, 64.0 * 1024 * 1024 * 1024);

  // The exact count depends on what the test runner left open; OpenFdsFollowsTheProcess
  // checks that it is the process's own.
  std::optional<double> fds = SampleValue(text, kProcessOpenFds);
  ASSERT_TRUE(fds.has_value()) << text;
  EXPECT_GE(*fds, 0);
  EXPECT_LT(*fds, 100000);

  // Started at most a few minutes ago (this test binary), and not in the future. Start
  // times are in clock ticks from a boot time in whole seconds, hence the 2 s slack.
  std::optional<double> start = SampleValue(text, kProcessStartTimeSeconds);
  ASSERT_TRUE(start.has_value()) << text;
  double now = static_cast<double>(std::time(nullptr));
  EXPECT_LE(*start, now + 2);
  EXPECT_GT(*start, now - 600);
}

TEST(ProcessMetricsTest, OpenFdsFollowsTheProcess) {
  Registry registry;
  double before = SampleValue(registry.Serialize(), kProcessOpenFds).value_or(-1);
  int extra = dup(STDERR_FILENO);
  ASSERT_GE(extra, 0);
  double during = SampleValue(registry.Serialize(), kProcessOpenFds).value_or(-1);
  close(extra);
  EXPECT_EQ(during, before + 1);
}

// ---- HttpMetrics ----

TEST(HttpMetricsTest, CountsRequestsAndBucketsDurations) {
  auto registry = std::make_shared<Registry>();
  HttpMetrics metrics(registry);
  metrics.OnRequestDone("GET", "/v1/echo", 200, microseconds(300));  // <= 0.0005
  metrics.OnRequestDone("GET", "/v1/echo", 200, milliseconds(3));    // <= 0.005
  metrics.OnRequestDone("GET", "/v1/echo", 404, milliseconds(20));   // <= 0.025
  metrics.OnRequestDone("POST", "/v1/echo", 200, std::chrono::seconds(2));
  metrics.OnRequestDone("GET", "other", 404, milliseconds(1));

  std::string text = registry->Serialize();
  const std::string requests = kHttpRequestsTotal;
  EXPECT_EQ(SampleValue(text, requests + R"({code="200",method="GET",route="/v1/echo"})"), 2)
      << text;
  EXPECT_EQ(SampleValue(text, requests + R"({code="404",method="GET",route="/v1/echo"})"), 1);
  EXPECT_EQ(SampleValue(text, requests + R"({code="200",method="POST",route="/v1/echo"})"), 1);
  EXPECT_EQ(SampleValue(text, requests + R"({code="404",method="GET",route="other"})"), 1);

  // One histogram per (method, route), whatever the code.
  const std::string bucket =
      std::string(kHttpRequestDurationSeconds) + R"(_bucket{method="GET",route="/v1/echo",le=")";
  EXPECT_EQ(SampleValue(text, bucket + R"(0.0005"})"), 1) << text;
  EXPECT_EQ(SampleValue(text, bucket + R"(0.001"})"), 1);
  EXPECT_EQ(SampleValue(text, bucket + R"(0.0025"})"), 1);
  EXPECT_EQ(SampleValue(text, bucket + R"(0.005"})"), 2);
  EXPECT_EQ(SampleValue(text, bucket + R"(0.01"})"), 2);
  EXPECT_EQ(SampleValue(text, bucket + R"(0.025"})"), 3);
  EXPECT_EQ(SampleValue(text, bucket + R"(60"})"), 3);
  EXPECT_EQ(SampleValue(text, bucket + R"(+Inf"})"), 3);
  const std::string duration = kHttpRequestDurationSeconds;
  std::optional<double> sum =
      SampleValue(text, duration + R"(_sum{method="GET",route="/v1/echo"})");
  ASSERT_TRUE(sum.has_value());
  EXPECT_NEAR(*sum, 0.0233, 1e-9);
  EXPECT_EQ(SampleValue(text, duration + R"(_count{method="POST",route="/v1/echo"})"), 1);
  EXPECT_EQ(SampleValue(text, duration + R"(_bucket{method="POST",route="/v1/echo",le="1"})"), 0);
  EXPECT_EQ(SampleValue(text, duration + R"(_bucket{method="POST",route="/v1/echo",le="2.5"})"), 1);
}

TEST(HttpMetricsTest, UnknownMethodsAndCodesShareOneLabelValue) {
  auto registry = std::make_shared<Registry>();
  HttpMetrics metrics(registry);
  metrics.OnRequestDone("BREW", "/", 200, milliseconds(1));
  metrics.OnRequestDone("get", "/", 200, milliseconds(1));
  metrics.OnRequestDone("GET", "/", 42, milliseconds(1));
  metrics.OnRequestDone("GET", "/", 499, milliseconds(1));

  std::string text = registry->Serialize();
  const std::string requests = kHttpRequestsTotal;
  EXPECT_EQ(SampleValue(text, requests + R"({code="200",method="other",route="/"})"), 2) << text;
  EXPECT_EQ(SampleValue(text, requests + R"({code="other",method="GET",route="/"})"), 1);
  EXPECT_EQ(SampleValue(text, requests + R"({code="499",method="GET",route="/"})"), 1);
  EXPECT_EQ(text.find("BREW"), std::string::npos);
}

TEST(HttpMetricsTest, ConnectionsOpenRisesAndFalls) {
  auto registry = std::make_shared<Registry>();
  HttpMetrics metrics(registry);
  EXPECT_EQ(SampleValue(registry->Serialize(), kHttpConnectionsOpen), 0);
  metrics.OnConnectionOpened();
  metrics.OnConnectionOpened();
  metrics.OnConnectionOpened();
  metrics.OnConnectionClosed();
  EXPECT_EQ(SampleValue(registry->Serialize(), kHttpConnectionsOpen), 2);
}

TEST(HttpMetricsTest, TwoObserversOnOneRegistryShareTheSeries) {
  auto registry = std::make_shared<Registry>();
  HttpMetrics first(registry);
  HttpMetrics second(registry);
  first.OnRequestDone("GET", "/", 200, milliseconds(1));
  second.OnRequestDone("GET", "/", 200, milliseconds(1));
  first.OnConnectionOpened();
  second.OnConnectionOpened();

  std::string text = registry->Serialize();
  EXPECT_EQ(
      SampleValue(text, std::string(kHttpRequestsTotal) + R"({code="200",method="GET",route="/"})"),
      2)
      << text;
  EXPECT_EQ(SampleValue(text, kHttpConnectionsOpen), 2);
}

TEST(HttpMetricsTest, OneMadeWhereAnotherWasCountsInItsOwnRegistry) {
  // Each thread remembers the series it used last; an HttpMetrics made later at the same
  // address must not be taken for the old one (whose registry lives on here).
  auto old_registry = std::make_shared<Registry>();
  auto new_registry = std::make_shared<Registry>();
  std::optional<HttpMetrics> metrics;
  metrics.emplace(old_registry);
  const HttpMetrics* old_address = &*metrics;
  metrics->OnRequestDone("GET", "/", 200, milliseconds(1));
  metrics.reset();
  metrics.emplace(new_registry);
  ASSERT_EQ(&*metrics, old_address);
  metrics->OnRequestDone("GET", "/", 200, milliseconds(1));

  const std::string series =
      std::string(kHttpRequestsTotal) + R"({code="200",method="GET",route="/"})";
  EXPECT_EQ(SampleValue(old_registry->Serialize(), series), 1);
  EXPECT_EQ(SampleValue(new_registry->Serialize(), series), 1);
}

TEST(HttpMetricsTest, ConcurrentUpdatesLoseNothing) {
  auto registry = std::make_shared<Registry>();
  HttpMetrics metrics(registry);
  constexpr int kThreads = 4;
  constexpr int kPerThread = 10000;

  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&metrics] {
      for (int i = 0; i < kPerThread; ++i) {
        metrics.OnConnectionOpened();
        // Two routes, so that threads also race to create series.
        metrics.OnRequestDone("GET", i % 2 == 0 ? "/even" : "/odd", 200, microseconds(100));
        metrics.OnConnectionClosed();
      }
    });
  }
  for (std::thread& thread : threads) thread.join();

  std::string text = registry->Serialize();
  const std::string requests = kHttpRequestsTotal;
  const std::string duration = kHttpRequestDurationSeconds;
  constexpr double kPerRoute = kThreads * kPerThread / 2;
  EXPECT_EQ(SampleValue(text, requests + R"({code="200",method="GET",route="/even"})"), kPerRoute)
      << text;
  EXPECT_EQ(SampleValue(text, requests + R"({code="200",method="GET",route="/odd"})"), kPerRoute);
  EXPECT_EQ(SampleValue(text, duration + R"(_count{method="GET",route="/even"})"), kPerRoute);
  EXPECT_EQ(SampleValue(text, duration + R"(_bucket{method="GET",route="/odd",le="0.0005"})"),
            kPerRoute);
  EXPECT_EQ(SampleValue(text, kHttpConnectionsOpen), 0);
}

// ---- promtool ----

std::string ShellQuote(const std::string& text) {
  std::string quoted = "'";
  for (char c : text) {
    quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  }
  return quoted + "'";
}

TEST(PromtoolTest, ExpositionPassesPromtoolCheckAndLint) {
  auto registry = std::make_shared<Registry>();
  HttpMetrics metrics(registry);
  metrics.OnConnectionOpened();
  metrics.OnRequestDone("GET", "/metrics", 200, microseconds(800));
  metrics.OnRequestDone("POST", "/v1/chat/completions", 503, std::chrono::seconds(3));
  metrics.OnRequestDone("BREW", "other", 404, milliseconds(2));

  std::string path = testing::TempDir() + "metrics_test_" + std::to_string(getpid()) + ".prom";
  {
    std::ofstream file(path);
    file << registry->Serialize();
    ASSERT_TRUE(file.good()) << "cannot write " << path;
  }
  std::string script = std::string(SUPERCLUSTER_SOURCE_DIR) + "/tests/promtool_check.sh";
  int status = std::system((ShellQuote(script) + " " + ShellQuote(path)).c_str());
  std::remove(path.c_str());

  ASSERT_TRUE(WIFEXITED(status)) << "promtool_check.sh did not exit normally";
  constexpr int kSkipped = 77;  // promtool_check.sh: promtool is not installed
  if (WEXITSTATUS(status) == kSkipped) GTEST_SKIP() << "promtool is not installed";
  EXPECT_EQ(WEXITSTATUS(status), 0) << "promtool's findings are printed above";
}

}  // namespace
}  // namespace supercluster::metrics
