#include "metrics/sharded_counter.h"

#include <prometheus/check_names.h>
#include <prometheus/metric_type.h>

#include <cstdio>
#include <cstdlib>
#include <utility>

namespace supercluster::metrics {

uint64_t ShardedCounter::Value() const {
  uint64_t total = 0;
  for (const Shard& shard : shards_) total += shard.count.load(std::memory_order_relaxed);
  return total;
}

prometheus::ClientMetric ShardedCounter::Collect() const {
  prometheus::ClientMetric metric;
  metric.counter.value = static_cast<double>(Value());
  return metric;
}

ShardedCounterFamily::ShardedCounterFamily(std::string name, std::string help,
                                           prometheus::Labels constant_labels)
    : name_(std::move(name)),
      help_(std::move(help)),
      constant_labels_(std::move(constant_labels)) {}

ShardedCounter& ShardedCounterFamily::Add(const prometheus::Labels& labels) {
  for (const auto& [label, value] : labels) {
    const char* reason = !prometheus::CheckLabelName(label) ? "invalid label name"
                         : constant_labels_.count(label) != 0 ? "label name is a constant label's"
                                                              : nullptr;
    if (reason != nullptr) {
      std::fprintf(stderr, "supercluster: counter '%s': %s '%s'\n", name_.c_str(), reason,
                   label.c_str());
      std::abort();
    }
  }
  std::lock_guard<std::mutex> lock(mutex_);
  std::unique_ptr<ShardedCounter>& series = series_[labels];
  if (!series) series = std::make_unique<ShardedCounter>();
  return *series;
}

prometheus::MetricFamily ShardedCounterFamily::Collect() const {
  prometheus::MetricFamily family;
  family.name = name_;
  family.help = help_;
  family.type = prometheus::MetricType::Counter;
  std::lock_guard<std::mutex> lock(mutex_);
  family.metric.reserve(series_.size());
  for (const auto& [labels, series] : series_) {
    prometheus::ClientMetric metric = series->Collect();
    for (const auto& [name, value] : constant_labels_) metric.label.push_back({name, value});
    for (const auto& [name, value] : labels) metric.label.push_back({name, value});
    family.metric.push_back(std::move(metric));
  }
  return family;
}

}  // namespace supercluster::metrics
