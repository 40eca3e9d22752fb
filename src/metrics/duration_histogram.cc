#include "metrics/duration_histogram.h"

#include <prometheus/check_names.h>
#include <prometheus/metric_type.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <utility>

namespace supercluster::metrics {

bool IsHistogramLabelName(const std::string& name) {
  return prometheus::CheckLabelName(name) && name != "le";
}

DurationHistogram::DurationHistogram(const BucketBoundaries& bounds)
    : sum_index_(bounds.size() + 1),
      lines_per_shard_((sum_index_ + kSlotsPerLine) / kSlotsPerLine),
      // Value-initialized: every slot 0.
      lines_(std::make_unique<CacheLine[]>(kMetricShards * lines_per_shard_)) {
  bounds_ns_.reserve(bounds.size());
  for (double seconds : bounds) bounds_ns_.push_back(std::llround(seconds * 1e9));
}

void DurationHistogram::Observe(std::chrono::nanoseconds duration) {
  const int64_t nanoseconds = duration.count();
  // The first bound at or above the duration; past the end is the +Inf bucket.
  const size_t bucket = static_cast<size_t>(
      std::lower_bound(bounds_ns_.begin(), bounds_ns_.end(), nanoseconds) - bounds_ns_.begin());
  const size_t shard = ThreadShard();
  Slot(shard, bucket).fetch_add(1, std::memory_order_relaxed);
  // Two's complement: a negative duration (a clock that stepped back) subtracts.
  Slot(shard, sum_index_)
      .fetch_add(static_cast<uint64_t>(nanoseconds), std::memory_order_relaxed);
}

prometheus::ClientMetric DurationHistogram::Collect() const {
  std::vector<uint64_t> totals(sum_index_ + 1, 0);  // the slots of one shard, summed
  for (size_t shard = 0; shard < kMetricShards; ++shard) {
    for (size_t i = 0; i <= sum_index_; ++i) {
      totals[i] += Slot(shard, i).load(std::memory_order_relaxed);
    }
  }
  prometheus::ClientMetric metric;
  metric.histogram.bucket.reserve(bounds_ns_.size() + 1);
  uint64_t cumulative = 0;
  for (size_t i = 0; i <= bounds_ns_.size(); ++i) {
    cumulative += totals[i];
    prometheus::ClientMetric::Bucket bucket;
    bucket.cumulative_count = cumulative;
    bucket.upper_bound = i < bounds_ns_.size() ? static_cast<double>(bounds_ns_[i]) / 1e9
                                               : std::numeric_limits<double>::infinity();
    metric.histogram.bucket.push_back(bucket);
  }
  metric.histogram.sample_count = cumulative;
  metric.histogram.sample_sum =
      static_cast<double>(static_cast<int64_t>(totals[sum_index_])) / 1e9;
  return metric;
}

DurationHistogramFamily::DurationHistogramFamily(std::string name, std::string help,
                                                 prometheus::Labels constant_labels)
    : name_(std::move(name)), help_(std::move(help)), constant_labels_(std::move(constant_labels)) {}

DurationHistogram& DurationHistogramFamily::Add(const prometheus::Labels& labels,
                                                const BucketBoundaries& bounds) {
  for (const auto& [label, value] : labels) {
    if (!IsHistogramLabelName(label)) {
      std::fprintf(stderr, "supercluster: histogram '%s': invalid label name '%s'\n",
                   name_.c_str(), label.c_str());
      std::abort();
    }
  }
  std::lock_guard<std::mutex> lock(mutex_);
  std::unique_ptr<DurationHistogram>& series = series_[labels];
  if (!series) series = std::make_unique<DurationHistogram>(bounds);
  return *series;
}

prometheus::MetricFamily DurationHistogramFamily::Collect() const {
  prometheus::MetricFamily family;
  family.name = name_;
  family.help = help_;
  family.type = prometheus::MetricType::Histogram;
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& [labels, series] : series_) {
    prometheus::ClientMetric metric = series->Collect();
    // All labels sorted by name (constant and series labels are disjoint: a name in both
    // would be a bug in the definitions). prometheus-cpp's families, and
    // ShardedCounterFamily after them, put the constant labels first instead; Prometheus
    // reads either order.
    std::map<std::string, std::string> all(constant_labels_.begin(), constant_labels_.end());
    all.insert(labels.begin(), labels.end());
    for (const auto& [name, value] : all) metric.label.push_back({name, value});
    family.metric.push_back(std::move(metric));
  }
  return family;
}

}  // namespace supercluster::metrics
