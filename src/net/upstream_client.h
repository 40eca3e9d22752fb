// Asynchronous HTTP/1.1 client for proxies (the routers): many requests in flight at once on
// a few io threads, connections kept alive and pooled per upstream, response bodies streamed
// piece by piece with backpressure. The blocking HttpClient (http_client.h) is for the CLI
// and control-plane calls; this one is for the request path.
//
// Threading: the client owns `io_threads` threads running its own io_context. Send() may be
// called from any thread and returns at once; every callback of one exchange runs on an io
// thread, one at a time and in order: on_head once, then on_data zero or more times, then
// on_done exactly once (also after Cancel, with an error). Callbacks must not block.
//
// Backpressure: on_data gets a `resume` function; the client reads no more of that response
// until it is called (from any thread). A proxy calls it once the downstream write finished.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "base/status.h"
#include "net/endpoint.h"
#include "net/http_client.h"
#include "net/http_message.h"

namespace supercluster::net {

struct UpstreamOptions {
  int io_threads = 1;
  // Idle kept-alive connections kept per upstream endpoint; more are closed after use.
  size_t max_idle_per_endpoint = 64;
  std::chrono::milliseconds connect_timeout{1000};
  // From sending the request to the response head; then the longest gap between two pieces
  // of the body.
  std::chrono::milliseconds response_timeout{30000};
  size_t max_response_header_bytes = 64 * 1024;
};

// What happened to one exchange, for on_done.
struct UpstreamResult {
  base::Status status;        // OK when the whole response arrived
  bool head_received = false; // false: nothing of the response arrived (safe to retry)
  std::chrono::nanoseconds elapsed{0};
};

struct UpstreamCallbacks {
  std::function<void(const ResponseHead& head)> on_head;
  std::function<void(std::string_view data, std::function<void()> resume)> on_data;
  std::function<void(const UpstreamResult& result)> on_done;
};

// Cancels one exchange: closes its connection; on_done runs with kCancelled unless it
// already ran. Safe from any thread, more than once, and after the exchange ended.
class UpstreamExchange {
 public:
  virtual ~UpstreamExchange() = default;
  virtual void Cancel() = 0;
};

class UpstreamClient {
 public:
  explicit UpstreamClient(UpstreamOptions options);
  ~UpstreamClient();  // cancels every exchange in flight, then joins its threads
  UpstreamClient(const UpstreamClient&) = delete;
  UpstreamClient& operator=(const UpstreamClient&) = delete;

  // Sends `request` (Host and Content-Length are filled in) to `endpoint` (TCP or Unix).
  std::shared_ptr<UpstreamExchange> Send(const Endpoint& endpoint, HttpRequest request,
                                         UpstreamCallbacks callbacks);

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace supercluster::net
