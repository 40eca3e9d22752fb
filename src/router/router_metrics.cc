#include "router/router_metrics.h"

#include "metrics/names.h"

namespace supercluster::router {

const char* RequestOutcomeName(RequestOutcome outcome) {
  switch (outcome) {
    case RequestOutcome::kOk: return "ok";
    case RequestOutcome::kUpstreamError: return "upstream_error";
    case RequestOutcome::kStreamBroken: return "stream_broken";
    case RequestOutcome::kNoUpstream: return "no_upstream";
    case RequestOutcome::kUnauthenticated: return "unauthenticated";
    case RequestOutcome::kRateLimited: return "rate_limited";
    case RequestOutcome::kTooLarge: return "too_large";
    case RequestOutcome::kBadRequest: return "bad_request";
    case RequestOutcome::kNotFound: return "not_found";
    case RequestOutcome::kRegionForbidden: return "region_forbidden";
    case RequestOutcome::kPlaintextForbidden: return "plaintext_forbidden";
    case RequestOutcome::kCancelled: return "cancelled";
  }
  return "unknown";
}

RouterMetrics::RouterMetrics(std::shared_ptr<metrics::Registry> registry, const std::string& tier)
    : registry_(std::move(registry)) {
  prometheus::Labels tier_label = {{"tier", tier}};
  auto& requests = registry_->AddShardedCounter(
      metrics::kRouterRequestsTotal, "Client requests proxied by the router, by outcome.",
      tier_label);
  for (size_t i = 0; i < outcomes_.size(); ++i) {
    auto outcome = static_cast<RequestOutcome>(i);
    outcomes_[i] = &requests.Add({{"outcome", RequestOutcomeName(outcome)}});
  }
  auto& latency = registry_->AddDurationHistogram(
      metrics::kRouterUpstreamLatencySeconds,
      "Time from sending a request upstream to its response head, in seconds.", tier_label);
  worker_latency_ = &latency.Add({{"kind", "worker"}}, metrics::LatencyBuckets());
  router_latency_ = &latency.Add({{"kind", "router"}}, metrics::LatencyBuckets());
  ejections_ = &registry_->AddCounter(metrics::kRouterEjectionsTotal,
                                      "Upstreams ejected after consecutive failures.", tier_label)
                    .Add({});
  spills_ = &registry_->AddCounter(metrics::kRouterSpillsTotal,
                                   "Requests handed to another region's router.", tier_label)
                 .Add({});
  retries_ = &registry_->AddCounter(metrics::kRouterRetriesTotal,
                                    "Second and later attempts of a request.", tier_label)
                  .Add({});
  available_ = &registry_->AddGauge(metrics::kRouterUpstreamsAvailable,
                                    "Upstreams that may get traffic now.", tier_label)
                    .Add({});
}

void RouterMetrics::RequestDone(RequestOutcome outcome) {
  outcomes_[static_cast<size_t>(outcome)]->Increment();
}

void RouterMetrics::UpstreamLatency(bool to_router, std::chrono::nanoseconds time_to_head) {
  (to_router ? router_latency_ : worker_latency_)->Observe(time_to_head);
}

void RouterMetrics::Ejected() { ejections_->Increment(); }
void RouterMetrics::Spilled() { spills_->Increment(); }
void RouterMetrics::Retried() { retries_->Increment(); }
void RouterMetrics::SetUpstreamsAvailable(int64_t count) {
  available_->Set(static_cast<double>(count));
}

}  // namespace supercluster::router
