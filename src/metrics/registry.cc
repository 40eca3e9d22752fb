#include "metrics/registry.h"

#include <prometheus/check_names.h>
#include <prometheus/metric_family.h>
#include <prometheus/text_serializer.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <iterator>
#include <utility>
#include <vector>

#include "metrics/process_metrics.h"

namespace supercluster::metrics {
namespace {

// prometheus-cpp reports a bad definition by throwing. Exceptions must not leave this
// module, and a bad definition is a bug that shows on the first run, so say which metric
// and stop.
[[noreturn]] void AbortOnBadDefinition(const std::string& name, const char* reason) {
  std::fprintf(stderr, "supercluster: cannot define metric '%s': %s\n", name.c_str(), reason);
  std::abort();
}

template <typename T>
prometheus::Family<T>& Define(prometheus::detail::Builder<T> builder, const std::string& name,
                              const std::string& help, const prometheus::Labels& constant_labels,
                              prometheus::Registry& registry) {
  try {
    return builder.Name(name).Help(help).Labels(constant_labels).Register(registry);
  } catch (const std::exception& error) {
    AbortOnBadDefinition(name, error.what());
  }
}

}  // namespace

const BucketBoundaries& LatencyBuckets() {
  static const BucketBoundaries buckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                           0.25,   0.5,   1,      2.5,   5,    10,    25,   60};
  return buckets;
}

void Registry::ClaimName(const std::string& name, Kind kind) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto [it, added] = types_.emplace(name, kind);
  if (added || it->second == kind) return;
  // A sharded and a prometheus-cpp counter of one name would be two families of that name
  // in the exposition: as bad as two types.
  const bool both_counters = (kind == Kind::kCounter || kind == Kind::kShardedCounter) &&
                             (it->second == Kind::kCounter || it->second == Kind::kShardedCounter);
  AbortOnBadDefinition(name, both_counters ? "already defined as the other kind of counter"
                                           : "already defined with another type");
}

CounterFamily& Registry::AddCounter(const std::string& name, const std::string& help,
                                    const prometheus::Labels& constant_labels) {
  ClaimName(name, Kind::kCounter);
  return Define(prometheus::BuildCounter(), name, help, constant_labels, registry_);
}

GaugeFamily& Registry::AddGauge(const std::string& name, const std::string& help,
                                const prometheus::Labels& constant_labels) {
  ClaimName(name, Kind::kGauge);
  return Define(prometheus::BuildGauge(), name, help, constant_labels, registry_);
}

ShardedCounterFamily& Registry::AddShardedCounter(const std::string& name,
                                                  const std::string& help,
                                                  const prometheus::Labels& constant_labels) {
  if (!prometheus::CheckMetricName(name)) AbortOnBadDefinition(name, "invalid metric name");
  for (const auto& [label, value] : constant_labels) {
    if (!prometheus::CheckLabelName(label)) {
      AbortOnBadDefinition(name, ("invalid label name '" + label + "'").c_str());
    }
  }
  ClaimName(name, Kind::kShardedCounter);
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& family : sharded_counters_) {
    if (family->name() != name) continue;
    // As prometheus-cpp does for its own families.
    if (family->constant_labels() != constant_labels) {
      AbortOnBadDefinition(name, "already defined with other constant labels");
    }
    return *family;
  }
  sharded_counters_.push_back(std::make_unique<ShardedCounterFamily>(name, help, constant_labels));
  return *sharded_counters_.back();
}

DurationHistogramFamily& Registry::AddDurationHistogram(const std::string& name,
                                                        const std::string& help,
                                                        const prometheus::Labels& constant_labels) {
  if (!prometheus::CheckMetricName(name)) AbortOnBadDefinition(name, "invalid metric name");
  for (const auto& [label, value] : constant_labels) {
    if (!IsHistogramLabelName(label)) {
      AbortOnBadDefinition(name, ("invalid label name '" + label + "'").c_str());
    }
  }
  ClaimName(name, Kind::kHistogram);
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& family : histograms_) {
    if (family->name() == name && family->constant_labels() == constant_labels) return *family;
  }
  histograms_.push_back(std::make_unique<DurationHistogramFamily>(name, help, constant_labels));
  return *histograms_.back();
}

void Registry::AddScrapeHook(std::function<void()> update) {
  std::lock_guard<std::mutex> lock(mutex_);
  scrape_hooks_.push_back(std::move(update));
}

std::string Registry::Serialize() const {
  std::vector<std::function<void()>> hooks;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    hooks = scrape_hooks_;
  }
  for (const auto& update : hooks) update();  // outside the lock: a hook may set a gauge
  std::vector<prometheus::MetricFamily> families = registry_.Collect();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& family : sharded_counters_) families.push_back(family->Collect());
    for (const auto& family : histograms_) families.push_back(family->Collect());
  }
  std::vector<prometheus::MetricFamily> process = CollectProcessMetrics();
  families.insert(families.end(), std::make_move_iterator(process.begin()),
                  std::make_move_iterator(process.end()));
  return prometheus::TextSerializer().Serialize(families);
}

}  // namespace supercluster::metrics
