// The router's metrics (the supercluster_router_* names in metrics/names.h), defined once on
// the service's Registry and updated by RouterService and its proxy. Thread-safe.
#pragma once

#include <array>
#include <chrono>
#include <memory>
#include <string>

#include "metrics/registry.h"

namespace supercluster::router {

// How a proxied request ended; the `outcome` label.
enum class RequestOutcome {
  kOk,
  kUpstreamError,
  kStreamBroken,
  kNoUpstream,
  kUnauthenticated,
  kRateLimited,
  kTooLarge,
  kBadRequest,
  kNotFound,
  kRegionForbidden,
  kPlaintextForbidden,
  kCancelled,  // the last: RouterMetrics keeps one counter per outcome up to here
};
const char* RequestOutcomeName(RequestOutcome outcome);

class RouterMetrics {
 public:
  RouterMetrics(std::shared_ptr<metrics::Registry> registry, const std::string& tier);

  void RequestDone(RequestOutcome outcome);
  // `to_router`: the upstream was another router, not a worker.
  void UpstreamLatency(bool to_router, std::chrono::nanoseconds time_to_head);
  void Ejected();
  void Spilled();
  void Retried();
  void SetUpstreamsAvailable(int64_t count);

 private:
  std::shared_ptr<metrics::Registry> registry_;
  // By RequestOutcome's value. Sharded: every request updates one, from every io thread.
  std::array<metrics::ShardedCounter*, static_cast<size_t>(RequestOutcome::kCancelled) + 1>
      outcomes_;
  metrics::DurationHistogram* worker_latency_;
  metrics::DurationHistogram* router_latency_;
  prometheus::Counter* ejections_;
  prometheus::Counter* spills_;
  prometheus::Counter* retries_;
  prometheus::Gauge* available_;
};

}  // namespace supercluster::router
