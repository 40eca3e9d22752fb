// HTTP server metrics for every service: requests answered, their durations, and open
// connections (the supercluster_http_* names in metrics/names.h). A service creates one
// HttpMetrics on its Registry and sets it as ServerOptions::observer; net::HttpServer then
// calls it from its io threads as requests complete and connections open and close.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "base/thread_slot.h"
#include "metrics/registry.h"
#include "net/http_server.h"

namespace supercluster::metrics {

class HttpMetrics : public net::ServerObserver {
 public:
  // Defines the three HTTP metrics in `registry`, which this object keeps alive.
  explicit HttpMetrics(std::shared_ptr<Registry> registry);

  // Thread-safe. `method` outside the standard set is recorded as "other" (the server hands
  // it over as the client sent it), and so is a status outside 100..599.
  void OnRequestDone(const std::string& method, const std::string& route, int status,
                     std::chrono::nanoseconds duration) override;
  void OnConnectionOpened() override;
  void OnConnectionClosed() override;

 private:
  // The series one (method, route, status) updates.
  struct Series {
    ShardedCounter* requests;
    DurationHistogram* duration;
  };
  // The series of one request: the one the calling thread used last when the request has
  // the same method, route and status (nearly always, under load), else FindOrAddSeries.
  Series SeriesFor(const std::string& method, const std::string& route, int status);
  Series FindOrAddSeries(const std::string& method, const std::string& route,
                         const std::string& code);

  // This object's slot in each thread (base::ThreadSlotOf): the series it used last.
  const uint64_t thread_slot_owner_ = base::NewThreadSlotOwnerId();
  std::shared_ptr<Registry> registry_;
  ShardedCounterFamily& requests_;
  DurationHistogramFamily& durations_;
  prometheus::Gauge& connections_open_;

  // Family::Add builds a new metric (for a histogram, its bucket vectors) before it finds
  // that the series exists, so each request would allocate. The series are found here
  // instead; there are few, since every label value is bounded.
  std::mutex series_mutex_;
  std::unordered_map<std::string, Series> series_;  // by "method route code"
};

}  // namespace supercluster::metrics
