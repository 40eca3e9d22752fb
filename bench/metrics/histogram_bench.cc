// histogram_bench: what one update costs in the metrics every request updates.
//
// The latency histogram: metrics::DurationHistogram (sharded, thread_shard.h: a relaxed
// atomic per bucket and for the sum in the calling thread's shard, no lock) next to
// prometheus-cpp's Histogram (a mutex per observation), the anchor, in the same run: each
// with 1 thread and with several (2 unless --threads says) observing into the same series
// at once, as the io threads of a server do for one route. The bounds are
// metrics::LatencyBuckets() and the durations cycle through 0.3 ms to 3 s.
//
// The request counter: metrics::ShardedCounter next to one std::atomic<uint64_t> that all
// threads add to (what sharding saves) and prometheus-cpp's Counter (an atomic<double>
// compare-and-swap loop), the same way.
//
// Prints nanoseconds per update (wall time divided by each thread's updates) and ratios.
//
// Usage: histogram_bench [--observations N] [--threads LIST]
//   N: updates per thread, default 5,000,000; LIST: thread counts, default 1,2
#include <prometheus/counter.h>
#include <prometheus/histogram.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "machine_line.h"
#include "thread_counts.h"
#include "metrics/duration_histogram.h"
#include "metrics/registry.h"
#include "metrics/sharded_counter.h"

namespace {

using Clock = std::chrono::steady_clock;

constexpr std::array<int64_t, 8> kDurationsNs = {300'000,     1'200'000,   4'000'000,
                                                 20'000'000,  70'000'000,  400'000'000,
                                                 900'000'000, 3'000'000'000};

// Wall nanoseconds per observation when `threads` threads each make `count` calls of
// `observe(nanoseconds)` at once.
template <typename Observe>
double NanosecondsPerObservation(int threads, long count, Observe observe) {
  std::vector<std::thread> workers;
  const Clock::time_point start = Clock::now();
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([count, &observe] {
      for (long i = 0; i < count; ++i) observe(kDurationsNs[static_cast<size_t>(i) % 8]);
    });
  }
  for (std::thread& worker : workers) worker.join();
  return std::chrono::duration<double, std::nano>(Clock::now() - start).count() /
         static_cast<double>(count);
}

}  // namespace

int main(int argc, char** argv) {
  long count = 5'000'000;
  std::vector<int> thread_counts = {1, 2};
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--observations") == 0 && i + 1 < argc) {
      count = std::atol(argv[++i]);
    } else if (std::strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
      std::optional<std::vector<int>> parsed = supercluster::bench::ParseThreadCounts(argv[++i]);
      if (!parsed) {
        std::fprintf(stderr, "histogram_bench: --threads wants counts such as 1,2,4\n");
        return 2;
      }
      thread_counts = *parsed;
    } else {
      std::fprintf(stderr, "usage: histogram_bench [--observations N] [--threads LIST]\n");
      return 2;
    }
  }
  if (count <= 0) {
    std::fprintf(stderr, "histogram_bench: --observations must be positive\n");
    return 2;
  }
  const supercluster::metrics::BucketBoundaries& bounds = supercluster::metrics::LatencyBuckets();
  std::printf("%s; %ld observations per thread\n\n", supercluster::bench::MachineLine().c_str(),
              count);
  std::printf("| threads | DurationHistogram ns | prometheus-cpp Histogram ns | ratio |\n");
  std::printf("|---:|---:|---:|---:|\n");
  for (int threads : thread_counts) {
    supercluster::metrics::DurationHistogram ours(bounds);
    prometheus::Histogram anchor(bounds);
    const double ours_ns = NanosecondsPerObservation(threads, count, [&ours](int64_t ns) {
      ours.Observe(std::chrono::nanoseconds(ns));
    });
    const double anchor_ns = NanosecondsPerObservation(threads, count, [&anchor](int64_t ns) {
      anchor.Observe(static_cast<double>(ns) / 1e9);
    });
    // Both must have counted every observation.
    const uint64_t expected = static_cast<uint64_t>(threads) * static_cast<uint64_t>(count);
    if (ours.Collect().histogram.sample_count != expected ||
        anchor.Collect().histogram.sample_count != expected) {
      std::fprintf(stderr, "histogram_bench: an observation was lost\n");
      return 1;
    }
    std::printf("| %d | %.1f | %.1f | %.2f |\n", threads, ours_ns, anchor_ns, ours_ns / anchor_ns);
  }

  std::printf("\n| threads | ShardedCounter ns | one shared atomic ns | prometheus-cpp Counter ns |"
              " ratio to prometheus-cpp |\n");
  std::printf("|---:|---:|---:|---:|---:|\n");
  for (int threads : thread_counts) {
    supercluster::metrics::ShardedCounter ours;
    std::atomic<uint64_t> shared{0};
    prometheus::Counter anchor;
    const double ours_ns =
        NanosecondsPerObservation(threads, count, [&ours](int64_t) { ours.Increment(); });
    const double shared_ns = NanosecondsPerObservation(
        threads, count, [&shared](int64_t) { shared.fetch_add(1, std::memory_order_relaxed); });
    const double anchor_ns =
        NanosecondsPerObservation(threads, count, [&anchor](int64_t) { anchor.Increment(); });
    const uint64_t expected = static_cast<uint64_t>(threads) * static_cast<uint64_t>(count);
    if (ours.Value() != expected || shared.load() != expected ||
        anchor.Value() != static_cast<double>(expected)) {
      std::fprintf(stderr, "histogram_bench: an increment was lost\n");
      return 1;
    }
    std::printf("| %d | %.1f | %.1f | %.1f | %.2f |\n", threads, ours_ns, shared_ns, anchor_ns,
                ours_ns / anchor_ns);
  }
  return 0;
}
