// The set of metrics one service exports, and their Prometheus text rendering for GET
// /metrics. Each service creates one Registry at start and shares it (std::shared_ptr)
// with the code that defines metrics (metrics::HttpMetrics, later the router, worker and
// engine) and with the /metrics route (metrics::AddObservabilityRoutes).
//
// This is a thin layer over prometheus-cpp's core library: counters and gauges are
// prometheus-cpp's own Family<Counter> and Family<Gauge>, whose updates are thread-safe;
// counters of requests, which every io thread updates, are our sharded ShardedCounter
// (sharded_counter.h), exported the same way; histograms are our lock-free, sharded
// DurationHistogram (duration_histogram.h). What it adds: one place that owns them, the
// standard process_* metrics read fresh at every scrape, and serialization to a string
// (prometheus-cpp's civetweb server is not used; our own HttpServer serves /metrics).
//
// Typical use:
//   auto& requests = registry.AddShardedCounter(kHttpRequestsTotal, "HTTP requests answered.");
//   ShardedCounter& ok = requests.Add({{"code", "200"}});  // keep the reference
//   ok.Increment();
#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/labels.h>
#include <prometheus/metric_type.h>
#include <prometheus/registry.h>

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "metrics/duration_histogram.h"
#include "metrics/sharded_counter.h"

namespace supercluster::metrics {

using CounterFamily = prometheus::Family<prometheus::Counter>;
using GaugeFamily = prometheus::Family<prometheus::Gauge>;

// Upper bounds, in seconds, for histograms of request and inference latencies: from 0.5 ms
// (a cached or rejected request) to 60 s (a long generation), in 1-2.5-5 steps so that
// histogram_quantile() stays within a factor of about 2.5 anywhere in that range.
const BucketBoundaries& LatencyBuckets();

class Registry {
 public:
  Registry() = default;
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Define a family: `name` (from metrics/names.h), its HELP text, and labels that every
  // series of the family carries (e.g. {"region", "eu-west-1"}); per-series labels are
  // given to Family::Add. The returned family lives as long as this Registry. Defining a
  // name again with the same constant labels returns the existing family.
  //
  // A name or label name that Prometheus rejects, or a name already defined with another
  // type, is a bug in the calling code (names are constants, never input): it is reported
  // on stderr and the process aborts at startup, where the definition runs.
  CounterFamily& AddCounter(const std::string& name, const std::string& help,
                            const prometheus::Labels& constant_labels = {});
  GaugeFamily& AddGauge(const std::string& name, const std::string& help,
                        const prometheus::Labels& constant_labels = {});
  // A counter for events that many threads count at once, such as requests (one update per
  // request from every io thread): cheaper to update than AddCounter's, same exposition.
  // Same name rules; like prometheus-cpp, defining the name again with other constant
  // labels aborts too.
  ShardedCounterFamily& AddShardedCounter(const std::string& name, const std::string& help,
                                          const prometheus::Labels& constant_labels = {});
  // Buckets are given per series: family.Add(labels, LatencyBuckets()); observations are
  // std::chrono durations, exported in seconds.
  DurationHistogramFamily& AddDurationHistogram(const std::string& name, const std::string& help,
                                                const prometheus::Labels& constant_labels = {});

  // Has every Serialize() call `update` first, in the order hooks were added: for gauges
  // that show a state read at scrape time rather than events counted as they happen (how
  // long ago a cache last heard from the store). `update` runs on the scraping thread, so
  // it must be thread-safe, quick and not call back into this Registry's Add* or
  // Serialize; whatever it reads must outlive every scrape (stop the server that serves
  // /metrics first).
  void AddScrapeHook(std::function<void()> update);

  // Every metric defined here plus the process_* metrics (read from /proc/self now), in
  // the Prometheus text exposition format 0.0.4. Thread-safe; cheap enough to call from an
  // io thread per scrape.
  std::string Serialize() const;

 private:
  // What a name was defined as.
  enum class Kind { kCounter, kShardedCounter, kGauge, kHistogram };
  // Records that `name` is a metric of `kind`; aborts (see above) when it is already one
  // of another kind. prometheus-cpp checks this among its own families only.
  void ClaimName(const std::string& name, Kind kind);

  prometheus::Registry registry_;
  mutable std::mutex mutex_;  // guards what follows
  std::map<std::string, Kind> types_;
  std::vector<std::unique_ptr<ShardedCounterFamily>> sharded_counters_;
  std::vector<std::unique_ptr<DurationHistogramFamily>> histograms_;
  std::vector<std::function<void()>> scrape_hooks_;
};

}  // namespace supercluster::metrics
