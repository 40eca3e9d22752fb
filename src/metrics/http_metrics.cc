#include "metrics/http_metrics.h"

#include <array>
#include <string>
#include <string_view>
#include <utility>

#include "base/thread_slot.h"
#include "metrics/names.h"

namespace supercluster::metrics {
namespace {

// The methods of RFC 9110 plus PATCH. Anything else a client sends becomes "other", so
// that it cannot create series (and memory) at will.
std::string MethodLabel(const std::string& method) {
  static constexpr std::array<std::string_view, 9> kKnown = {
      "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"};
  for (std::string_view known : kKnown) {
    if (method == known) return method;
  }
  return "other";
}

std::string CodeLabel(int status) {
  if (status < 100 || status > 599) return "other";
  return std::to_string(status);
}

}  // namespace

HttpMetrics::HttpMetrics(std::shared_ptr<Registry> registry)
    : registry_(std::move(registry)),
      requests_(registry_->AddShardedCounter(kHttpRequestsTotal, "HTTP requests answered.")),
      durations_(registry_->AddDurationHistogram(
          kHttpRequestDurationSeconds,
          "Time from the start of an HTTP request to the end of its response in seconds.")),
      connections_open_(
          registry_->AddGauge(kHttpConnectionsOpen, "HTTP client connections open now.").Add({})) {}

void HttpMetrics::OnRequestDone(const std::string& method, const std::string& route, int status,
                                std::chrono::nanoseconds duration) {
  Series series = SeriesFor(method, route, status);
  series.requests->Increment();
  series.duration->Observe(duration);
}

void HttpMetrics::OnConnectionOpened() { connections_open_.Increment(); }

void HttpMetrics::OnConnectionClosed() { connections_open_.Decrement(); }

HttpMetrics::Series HttpMetrics::SeriesFor(const std::string& method, const std::string& route,
                                           int status) {
  // A server reports each request from the io thread that served it, and consecutive
  // requests there nearly always share method, route and status. Remembering the last one
  // per thread spares the labels' strings, the key, the lock and the lookup below (about
  // 300 instructions per request, docs/performance.md). Series pointers stay valid as long
  // as this object (the families never remove a series).
  struct LastSeries {
    int status = 0;
    std::string method;
    std::string route;
    Series series{};  // null pointers: none yet
  };
  LastSeries& last = base::ThreadSlotOf<LastSeries>(thread_slot_owner_);
  if (last.series.requests != nullptr && last.status == status && last.method == method &&
      last.route == route) {
    return last.series;
  }
  Series series = FindOrAddSeries(MethodLabel(method), route, CodeLabel(status));
  last.status = status;
  last.method = method;
  last.route = route;
  last.series = series;
  return series;
}

HttpMetrics::Series HttpMetrics::FindOrAddSeries(const std::string& method,
                                                 const std::string& route,
                                                 const std::string& code) {
  // Neither a method nor a code contains a space, so the key is unambiguous. It is built in
  // a buffer each thread keeps, so that finding a series allocates nothing.
  thread_local std::string key;
  key.clear();
  key.append(method).append(1, ' ').append(code).append(1, ' ').append(route);
  std::lock_guard<std::mutex> lock(series_mutex_);
  auto found = series_.find(key);
  if (found != series_.end()) return found->second;

  Series series;
  series.requests =
      &requests_.Add({{kMethodLabel, method}, {kRouteLabel, route}, {kCodeLabel, code}});
  // The duration series has no code label: one histogram per route is what latency
  // queries need, and it keeps the bucket series down.
  series.duration =
      &durations_.Add({{kMethodLabel, method}, {kRouteLabel, route}}, LatencyBuckets());
  series_.emplace(key, series);
  return series;
}

}  // namespace supercluster::metrics
