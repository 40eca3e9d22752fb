#include "worker/worker_metrics.h"

#include "metrics/names.h"

namespace supercluster::worker {
namespace {

// Model loads take from milliseconds (a small file in the page cache) to minutes.
const metrics::BucketBoundaries& LoadBuckets() {
  static const metrics::BucketBoundaries buckets = {0.01, 0.05, 0.1, 0.5, 1,   2.5,
                                                    5,    10,   30,  60,  120, 300};
  return buckets;
}

}  // namespace

WorkerMetrics::WorkerMetrics(std::shared_ptr<metrics::Registry> registry)
    : registry_(std::move(registry)),
      load_time_(registry_
                     ->AddDurationHistogram(metrics::kGpuClusterModelLoadTimeSeconds,
                                    "Time to load the model until the worker could serve.")
                     .Add({}, LoadBuckets())),
      first_token_(registry_
                       ->AddDurationHistogram(metrics::kWorkerTimeToFirstTokenSeconds,
                                      "Time from a request's arrival to its first token.")
                       .Add({}, metrics::LatencyBuckets())),
      latency_(registry_
                   ->AddDurationHistogram(metrics::kGpuClusterInferenceLatencySeconds,
                                  "Time from a request's arrival to the end of its answer.")
                   .Add({}, metrics::LatencyBuckets())),
      queue_depth_(registry_
                       ->AddGauge(metrics::kGpuClusterQueueDepth,
                                  "Requests admitted by the engine but not yet running.")
                       .Add({})),
      running_(
          registry_
              ->AddGauge(metrics::kWorkerRunningSequences, "Sequences the engine is running now.")
              .Add({})),
      tokens_per_second_(registry_
                             ->AddGauge(metrics::kWorkerTokensPerSecond,
                                        "Tokens per second generated, over the last 5 s.")
                             .Add({})),
      requests_per_second_(registry_
                               ->AddGauge(metrics::kGpuClusterRps,
                                          "Inference requests finished per second, over 10 s.")
                               .Add({})),
      rejected_(registry_->AddCounter(metrics::kWorkerRejectedTotal,
                                      "Requests turned away before they ran, by why.")) {}

void WorkerMetrics::ObserveModelLoad(std::chrono::duration<double> seconds) {
  load_time_.Observe(std::chrono::duration_cast<std::chrono::nanoseconds>(seconds));
}

void WorkerMetrics::ObserveFirstToken(std::chrono::duration<double> seconds) {
  first_token_.Observe(std::chrono::duration_cast<std::chrono::nanoseconds>(seconds));
}

void WorkerMetrics::ObserveFinished(std::chrono::duration<double> seconds) {
  latency_.Observe(std::chrono::duration_cast<std::chrono::nanoseconds>(seconds));
  std::lock_guard lock(mutex_);
  auto now = std::chrono::steady_clock::now();
  finished_.push_back(now);
  while (!finished_.empty() && now - finished_.front() > kRateWindow) finished_.pop_front();
}

void WorkerMetrics::CountRejected(const std::string& outcome) {
  rejected_.Add({{metrics::kOutcomeLabel, outcome}}).Increment();
}

void WorkerMetrics::Refresh(const engine::EngineStats& stats) {
  queue_depth_.Set(stats.queued);
  running_.Set(stats.running);
  tokens_per_second_.Set(stats.tokens_per_second);
  std::lock_guard lock(mutex_);
  auto now = std::chrono::steady_clock::now();
  while (!finished_.empty() && now - finished_.front() > kRateWindow) finished_.pop_front();
  requests_per_second_.Set(static_cast<double>(finished_.size()) /
                           std::chrono::duration<double>(kRateWindow).count());
}

}  // namespace supercluster::worker
