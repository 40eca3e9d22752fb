// A Prometheus histogram of durations that request paths update without a lock, and its
// family (one series per label set). Every latency the services export is one of these
// (metrics::Registry::AddDurationHistogram).
//
// prometheus-cpp's own Histogram takes a mutex in every Observe, so that a scrape sees
// count, sum and buckets from one moment. Every io thread of a server updates the same
// series (one per route), so that mutex is shared by all of them on every request. Here
// each bucket and the sum are separate atomics: an observation is a search of the bounds
// and two relaxed additions. The price is that a scrape taken while observations go on may
// count one in the buckets whose duration is not yet in the sum (or the other way round);
// each figure is exact on its own, and Prometheus tolerates the skew of a single sample.
//
// Shared atomics still cost a cache-line transfer per addition when the last one came from
// another core, so the counts and the sum are sharded (thread_shard.h): kMetricShards
// copies, each on cache lines of its own; a thread adds to its own copy only, and Collect
// sums the copies. A series of LatencyBuckets() takes 3 KiB.
#pragma once

#include <prometheus/client_metric.h>
#include <prometheus/labels.h>
#include <prometheus/metric_family.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "metrics/thread_shard.h"

namespace supercluster::metrics {

// Upper bounds of a histogram's buckets, in seconds, ascending.
using BucketBoundaries = std::vector<double>;

// Whether Prometheus accepts `name` as a label of a histogram ("le" is the buckets' own).
bool IsHistogramLabelName(const std::string& name);

class DurationHistogram {
 public:
  // Precondition: `bounds` ascending (seconds). A +Inf bucket is added after the last.
  explicit DurationHistogram(const BucketBoundaries& bounds);
  DurationHistogram(const DurationHistogram&) = delete;
  DurationHistogram& operator=(const DurationHistogram&) = delete;

  // Thread-safe and lock-free: two relaxed additions on the calling thread's shard. A
  // duration equal to a bound falls in that bound's bucket (Prometheus' `le`, "less than or
  // equal").
  void Observe(std::chrono::nanoseconds duration);

  // Cumulative bucket counts, count and sum (in seconds), as the text format wants them:
  // the totals of all shards.
  prometheus::ClientMetric Collect() const;

 private:
  static constexpr size_t kSlotsPerLine = kCacheLineBytes / sizeof(std::atomic<uint64_t>);
  struct alignas(kCacheLineBytes) CacheLine {
    std::atomic<uint64_t> slots[kSlotsPerLine];
  };
  // Slot `index` of `shard`. A shard's slots are the count of each bucket (not cumulative;
  // +Inf last), then the sum in nanoseconds (an int64_t kept modulo 2^64).
  std::atomic<uint64_t>& Slot(size_t shard, size_t index) const {
    return lines_[shard * lines_per_shard_ + index / kSlotsPerLine].slots[index % kSlotsPerLine];
  }

  std::vector<int64_t> bounds_ns_;
  size_t sum_index_;        // bounds_ns_.size() + 1
  size_t lines_per_shard_;  // enough for sum_index_ + 1 slots
  std::unique_ptr<CacheLine[]> lines_;  // kMetricShards * lines_per_shard_
};

class DurationHistogramFamily {
 public:
  // `constant_labels` go on every series. Made by Registry::AddDurationHistogram.
  DurationHistogramFamily(std::string name, std::string help, prometheus::Labels constant_labels);

  // The series with these labels, made with `bounds` the first time; later calls with the
  // same labels return it and ignore `bounds`. The reference stays valid as long as the
  // family. Thread-safe (a lock, taken only here and by Collect: keep the reference).
  // A label name that Prometheus rejects, or "le", is a bug in the calling code: reported
  // on stderr, and the process aborts.
  DurationHistogram& Add(const prometheus::Labels& labels, const BucketBoundaries& bounds);

  const std::string& name() const { return name_; }
  const prometheus::Labels& constant_labels() const { return constant_labels_; }
  prometheus::MetricFamily Collect() const;

 private:
  const std::string name_;
  const std::string help_;
  const prometheus::Labels constant_labels_;
  mutable std::mutex mutex_;
  std::map<prometheus::Labels, std::unique_ptr<DurationHistogram>> series_;
};

}  // namespace supercluster::metrics
