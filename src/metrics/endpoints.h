// The observability routes every service serves next to its own API: GET /metrics for
// Prometheus, GET /healthz for liveness and GET /readyz for readiness (the probes a
// supervisor, a load balancer or Kubernetes polls). Each service's startup code calls
// AddObservabilityRoutes on its router before starting its net::HttpServer.
#pragma once

#include <functional>
#include <memory>

#include "metrics/registry.h"
#include "net/http_server.h"

namespace supercluster::metrics {

// Content-Type of GET /metrics: the Prometheus text exposition format, version 0.0.4.
inline constexpr char kExpositionContentType[] = "text/plain; version=0.0.4; charset=utf-8";

// Adds to `router`:
//   GET /metrics  200, `registry` serialized (read at each request)
//   GET /healthz  200 "ok\n" for as long as the process can answer at all
//   GET /readyz   200 "ready\n" when ready() returns true, else 503 "not ready\n"
// `ready` is called on an io thread per probe, so it must be fast and thread-safe; an
// empty `ready` means always ready.
void AddObservabilityRoutes(net::HttpRouter& router, std::shared_ptr<Registry> registry,
                            std::function<bool()> ready);

}  // namespace supercluster::metrics
