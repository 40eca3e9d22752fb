// A Prometheus counter of events that many threads count at once (one per request, from
// every io thread of a server), and its family. Defined with
// metrics::Registry::AddShardedCounter and exported exactly as a prometheus-cpp counter.
//
// prometheus-cpp's Counter is one atomic<double> updated by a compare-and-swap loop: every
// thread that counts writes the same cache line, and each increment after another core's
// costs a cache-line transfer. A ShardedCounter keeps kMetricShards uint64_t counts, each
// on a cache line of its own (thread_shard.h); an increment is one relaxed addition to the
// calling thread's count, and Value() sums them. Counters updated rarely (a retry, an
// ejection) gain nothing from this and stay prometheus-cpp's.
#pragma once

#include <prometheus/client_metric.h>
#include <prometheus/labels.h>
#include <prometheus/metric_family.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "metrics/thread_shard.h"

namespace supercluster::metrics {

class ShardedCounter {
 public:
  ShardedCounter() = default;
  ShardedCounter(const ShardedCounter&) = delete;
  ShardedCounter& operator=(const ShardedCounter&) = delete;

  // Thread-safe and lock-free.
  void Increment(uint64_t amount = 1) {
    shards_[ThreadShard()].count.fetch_add(amount, std::memory_order_relaxed);
  }

  // The sum of all increments that happened before (an increment racing the call may or may
  // not be in it).
  uint64_t Value() const;

  // Value() as a prometheus-cpp counter's ClientMetric (a double).
  prometheus::ClientMetric Collect() const;

 private:
  struct alignas(kCacheLineBytes) Shard {
    std::atomic<uint64_t> count{0};
  };
  std::array<Shard, kMetricShards> shards_;
};

class ShardedCounterFamily {
 public:
  // `constant_labels` go on every series. Made by Registry::AddShardedCounter.
  ShardedCounterFamily(std::string name, std::string help, prometheus::Labels constant_labels);

  // The series with these labels, made at 0 the first time; later calls with the same labels
  // return it. The reference stays valid as long as the family. Thread-safe (a lock, taken
  // only here and by Collect: keep the reference). A label name that Prometheus rejects, or
  // one of the constant labels' names, is a bug in the calling code (prometheus-cpp's
  // Family::Add throws): reported on stderr, and the process aborts.
  ShardedCounter& Add(const prometheus::Labels& labels);

  const std::string& name() const { return name_; }
  const prometheus::Labels& constant_labels() const { return constant_labels_; }
  // As prometheus-cpp's Family<Counter>::Collect: constant labels first, then the series'
  // own, each sorted by name. Series in the order of their labels (prometheus-cpp's order
  // is its hash table's).
  prometheus::MetricFamily Collect() const;

 private:
  const std::string name_;
  const std::string help_;
  const prometheus::Labels constant_labels_;
  mutable std::mutex mutex_;
  std::map<prometheus::Labels, std::unique_ptr<ShardedCounter>> series_;
};

}  // namespace supercluster::metrics
