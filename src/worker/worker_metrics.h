// The worker's metrics (names in metrics/names.h): the spec's gpu_cluster_* series and the
// worker's own. The worker service updates them as requests arrive and finish; gauges that
// mirror the engine (queue depth, running sequences, tokens/s) and the request rate are set
// from Refresh(), which the worker service has the registry call before each scrape
// (metrics::Registry::AddScrapeHook). Thread-safe.
#pragma once

#include <chrono>
#include <deque>
#include <memory>
#include <mutex>
#include <string>

#include "engine/engine.h"
#include "metrics/registry.h"

namespace supercluster::worker {

class WorkerMetrics {
 public:
  explicit WorkerMetrics(std::shared_ptr<metrics::Registry> registry);

  void ObserveModelLoad(std::chrono::duration<double> seconds);
  void ObserveFirstToken(std::chrono::duration<double> seconds);
  // A request ended (any way): its latency from arrival, and one more for the rate.
  void ObserveFinished(std::chrono::duration<double> seconds);
  // outcome: one of the kWorkerRejectedTotal label values.
  void CountRejected(const std::string& outcome);
  // Sets the engine gauges and the request rate (over the last kRateWindow).
  void Refresh(const engine::EngineStats& stats);

  const std::shared_ptr<metrics::Registry>& registry() const { return registry_; }

  static constexpr std::chrono::seconds kRateWindow{10};

 private:
  std::shared_ptr<metrics::Registry> registry_;
  metrics::DurationHistogram& load_time_;
  metrics::DurationHistogram& first_token_;
  metrics::DurationHistogram& latency_;
  prometheus::Gauge& queue_depth_;
  prometheus::Gauge& running_;
  prometheus::Gauge& tokens_per_second_;
  prometheus::Gauge& requests_per_second_;
  metrics::CounterFamily& rejected_;

  std::mutex mutex_;
  std::deque<std::chrono::steady_clock::time_point> finished_;  // within the rate window
};

}  // namespace supercluster::worker
