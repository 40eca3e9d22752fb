// Proxies one client request to an upstream (a worker, or another router), streaming the
// answer back with backpressure, and tries another upstream while nothing has reached the
// client yet. The rules (docs/data-plane.md):
//
// - An answer below 500 with a Content-Length of at most max_collected_response_bytes (and
//   not an event stream) is collected and sent on whole, with its Content-Length: one write
//   to the client instead of a chunked stream. Any other answer below 500 is streamed to
//   the client as it arrives; the upstream is read only as fast as the client takes the
//   bytes (Responder::Write's on_written resumes it).
// - A 503 is "saturated": another upstream is tried at no cost to the retry budget. Any
//   other 5xx, a refused connection or a timeout before any byte of the answer is a failure
//   (counted towards the upstream's ejection), and another upstream is tried only while the
//   retry budget allows. A failure after part of the response head arrived is not retried.
// - When nothing is left to try, the client gets the last upstream's error answer, or a 502
//   / 504 naming what failed, or (nothing tried at all) the route's `NoTargetResponse`.
// - A failure after the first byte ends an event stream with `event: error` and a
//   {"error":{...}} data line, then ends the response: never a hang. Any other stream is
//   cut off (the connection closes before the last chunk), so an HTTP/1.1 client never
//   takes a short body for a whole one. A collected answer that fails before its end
//   becomes a 502.
// - The client going away cancels the upstream exchange.
//
// Request bodies are never logged or kept beyond the exchange. Callers: RouterService.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "net/http_server.h"
#include "net/upstream_client.h"
#include "router/balancer.h"
#include "router/router_metrics.h"

namespace supercluster::router {

struct ProxyTarget {
  std::string id;  // the id the balancer knows it by
  net::Endpoint endpoint;
  // Another router: the Authorization header goes along (it authenticates again) and no
  // X-Supercluster-Tenant is sent. A worker: the reverse.
  bool is_router = false;
  // Handing over to another region's router: adds X-Supercluster-Spilled: own region.
  bool spill = false;
  Balancer* balancer = nullptr;  // not owned; outlives the request
  // The balancer counts this try already (Balancer::PickAndStart); else the proxy tells it
  // when the try starts.
  bool started = false;
};

// Where one request may go: the upstreams to try in turn, and the answer when there is
// none at all. Called on the exchange's io thread, one call at a time.
class ProxyRoute {
 public:
  virtual ~ProxyRoute() = default;
  // The next upstream to try, given the ids already tried (views valid during the call);
  // nullopt when none is left.
  virtual std::optional<ProxyTarget> Next(std::span<const std::string_view> tried) = 0;
  // The answer when not a single upstream could be tried.
  virtual net::HttpResponse NoTargetResponse() = 0;
};

// What the proxy needs beside the client's request.
struct ProxyRequest {
  std::string request_id;  // the request's X-Supercluster-Request-Id
  std::string tenant_id;
  std::string own_region;
  // The largest Content-Length of an answer collected whole (see above); 0 streams all.
  uint64_t max_collected_response_bytes = 0;
  // The longest an answer collected whole, or a 5xx held back, may take from its head to
  // its end (the upstream client bounds only each pause between pieces, which an upstream
  // trickling bytes would stretch without end); 0 for no limit.
  std::chrono::milliseconds collect_timeout{0};
  // Whether a spill mark (X-Supercluster-Spilled) that came with the request goes on.
  // False at the global tier: its clients are end clients, whose requests no router has
  // spilled, and a mark from one would keep the regional router from spilling its request.
  bool keeps_spill_mark = true;
  std::unique_ptr<ProxyRoute> route;  // not null
  // Released when the request ends (the tenant's admission ticket).
  std::shared_ptr<void> hold;
};

// Runs the request to its end; returns at once. `request` is the client's request, already
// cleaned (no client-sent X-Supercluster-Tenant) and carrying X-Supercluster-Request-Id.
// Preconditions: `client` and `metrics` outlive every request (the service destroys the
// client, which ends every exchange, before the metrics).
void StartProxy(net::HttpRequest&& request, ProxyRequest&& proxy,
                std::shared_ptr<net::Responder> responder, net::UpstreamClient& client,
                RouterMetrics& metrics);

// A router's error answer (net::JsonErrorBody), with Retry-After on 503 and 429.
net::HttpResponse ErrorResponse(int status, const std::string& message, const std::string& type);

}  // namespace supercluster::router
