// Asynchronous HTTP/1.1 client for proxies (the routers): many requests in flight at once on
// a few io threads, connections kept alive and pooled per upstream, response bodies streamed
// piece by piece with backpressure. The blocking HttpClient (http_client.h) is for the CLI
// and control-plane calls; this one is for the request path.
//
// Threading: the client owns `io_threads` threads running its own io_context (or, with 0,
// borrows the calling HttpServer's; see UpstreamOptions::io_threads). Send() may be
// called from any thread and returns at once; every callback of one exchange (an
// UpstreamHandler's methods, or the UpstreamCallbacks functions) runs on an io thread, one
// at a time and in order: on_head once, then on_data zero or more times, then on_done
// exactly once (also after Cancel, with an error). Callbacks must not block.
//
// Backpressure: on_data gets a `resume` function; the client reads no more of that response
// until it is called (from any thread, once per piece). A proxy calls it once the downstream
// write finished. `data` is valid only until on_data returns (copy what you keep); after the
// last piece on_done follows without waiting for resume, and a late resume does nothing.
// An exchange paused for resume has no timeout running: call resume or Cancel.
//
// Connections: idle keep-alive connections are pooled per endpoint (TCP, Unix, vsock; TLS
// endpoints are refused with kFailedPrecondition). A connection whose response did not end
// cleanly is closed, never pooled. A pooled connection that turns out closed by the server
// (an idle timeout racing the reuse) before any byte of the answer is replaced once,
// transparently, by a fresh connection.
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
  // The client's own io threads. 0: an exchange started from an HttpServer io thread (a
  // proxy's request handler) runs on that server's io threads instead, which saves waking
  // another thread several times per request; calls from other threads use one own thread.
  int io_threads = 1;
  // Idle kept-alive connections kept per upstream endpoint and io_context (each io thread
  // of a polling HttpServer runs its own); more are closed after use.
  size_t max_idle_per_endpoint = 64;
  std::chrono::milliseconds connect_timeout{1000};
  // From sending the request to the response head; then the longest gap between two pieces
  // of the body.
  std::chrono::milliseconds response_timeout{30000};
  size_t max_response_header_bytes = 64 * 1024;
};

// What happened to one exchange, for on_done.
struct UpstreamResult {
  // OK when the whole response arrived. Otherwise: kUnavailable (cannot connect, connection
  // lost), kDeadlineExceeded (connect or response timeout), kDataLoss (malformed response),
  // kResourceExhausted (head over max_response_header_bytes), kCancelled (Cancel or the
  // client's destruction), kInvalidArgument (a request that cannot be sent as HTTP/1.1),
  // kFailedPrecondition (TLS endpoint).
  base::Status status;
  // false: nothing of the response arrived (a retry elsewhere is safe). true once any byte
  // arrived, even when the head was cut short and on_head never ran.
  bool head_received = false;
};

// What one exchange tells its caller, in the order and on the threads described at the top.
class UpstreamHandler {
 public:
  virtual ~UpstreamHandler() = default;
  // The head is the handler's to keep: moving its headers out saves copying them.
  virtual void OnHead(ResponseHead head) = 0;
  virtual void OnData(std::string_view data, std::function<void()> resume) = 0;
  virtual void OnDone(const UpstreamResult& result) = 0;
};

// The same as functions, for callers that need no class of their own; any may be empty.
struct UpstreamCallbacks {
  std::function<void(ResponseHead head)> on_head;
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
  // Cancels every exchange in flight and waits until each has ended (on_done ran), then
  // joins its threads. An exchange on an HttpServer's threads (io_threads 0) whose server no
  // longer runs is abandoned instead: its on_done never runs. Must not be called on an io
  // thread of a server whose exchanges it would wait for.
  ~UpstreamClient();
  UpstreamClient(const UpstreamClient&) = delete;
  UpstreamClient& operator=(const UpstreamClient&) = delete;

  // Sends `request` to `endpoint` (TCP or Unix). Host is filled in when absent; the body is
  // always framed by Content-Length (any Content-Length or Transfer-Encoding given is
  // replaced). Header names and values must not contain CR, LF or NUL (kInvalidArgument).
  // The request is written out (serialized) before Send returns: the caller may change or
  // drop it at once, so a proxy can send one request to several upstreams in turn.
  // The exchange holds `handler` until on_done has run; a null handler ignores the answer.
  std::shared_ptr<UpstreamExchange> Send(const Endpoint& endpoint, const HttpRequest& request,
                                         std::shared_ptr<UpstreamHandler> handler);
  std::shared_ptr<UpstreamExchange> Send(const Endpoint& endpoint, const HttpRequest& request,
                                         UpstreamCallbacks callbacks);

  // Ends every exchange to `endpoint` that has no response head yet with `why` (its on_done
  // sees it, head_received false), as if its connection had failed; exchanges whose answer
  // has begun go on. For an upstream found dead by other means (a router's health checks)
  // while requests wait on it: a silent one would hold them for response_timeout. From any
  // thread; returns at once.
  void AbandonWaiting(const Endpoint& endpoint, const base::Status& why);

 private:
  class Impl;
  std::shared_ptr<Impl> impl_;  // shared with the exchanges in flight
};

}  // namespace supercluster::net
