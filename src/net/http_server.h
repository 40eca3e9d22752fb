// HTTP/1.1 server for every Supercluster service (router, worker, kms, controller, serve).
//
// Threading model: one asio io_context run by `io_threads` threads. With more than one,
// each connection runs on its own strand, so a connection's reads, writes and timers never
// race, while different connections proceed in parallel; with one, the io thread itself
// serialises them and there is no strand. A server that polls (ServerOptions::busy_poll)
// or asks for it (ServerOptions::context_per_thread) instead gives each io thread an
// io_context of its own and hands new connections to them in turn: a connection then stays
// on one thread, again without a strand. Handlers are
// called on an io thread and must not block: slow work (inference, store calls) goes to
// another thread, which later completes the request through its Responder. A Responder
// may be used from any thread.
//
// Limits (ServerOptions): the header section over max_header_bytes is answered 431, a body
// over max_body_bytes 413, a malformed request (bad request line, bad chunked encoding,
// more than one Host, a chunk size line or trailer section reaching max_header_bytes) 400,
// a transfer coding other than chunked 501; each such answer closes the connection. A connection waits idle_timeout for the
// first byte of a request, then read_timeout for the whole request; one write (a whole
// response, or one chunk of a stream) not finished within write_timeout closes the
// connection; a streamed response may queue at most
// max_stream_buffer_bytes (beyond it the stream is aborted) so a client that never reads
// cannot grow server memory. Over max_connections, new connections get a 503 and close.
// Every answer the server (or HttpRouter) gives by itself has a JSON error body
// (HttpResponse::JsonError), as every Supercluster service's errors do.
//
// Shutdown: Drain() stops accepting, lets requests in flight finish (up to drain_timeout),
// closes idle keep-alive connections, then stops. RunUntilSignal() does that on SIGTERM or
// SIGINT.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "base/config.h"
#include "base/status.h"
#include "net/endpoint.h"
#include "net/http_message.h"
#include "net/tls.h"

namespace supercluster::net {

// Told about every completed request; metrics implement it. Called on an io thread, must
// be fast and thread-safe, and must outlive the HttpServer.
class ServerObserver {
 public:
  virtual ~ServerObserver() = default;
  // `route` is the pattern the router matched ("/v1/echo"), or "other" when none, so
  // metric labels stay bounded. `status` is the response code sent (or 499 when the
  // client went away first).
  virtual void OnRequestDone(const std::string& method, const std::string& route, int status,
                             std::chrono::nanoseconds duration) = 0;
  virtual void OnConnectionOpened() = 0;
  virtual void OnConnectionClosed() = 0;
};

struct ServerOptions {
  int io_threads = 1;
  size_t max_header_bytes = 0;
  uint64_t max_body_bytes = 0;
  size_t max_connections = 0;
  std::chrono::milliseconds idle_timeout{0};
  std::chrono::milliseconds read_timeout{0};
  std::chrono::milliseconds write_timeout{0};
  size_t max_stream_buffer_bytes = 0;
  std::chrono::milliseconds drain_timeout{0};
  TlsServerOptions tls;
  ServerObserver* observer = nullptr;  // not owned; may be null
  // How long an io thread keeps polling for events after it ran out of work before it
  // sleeps. Waking a sleeping thread costs tens of microseconds per message on a VM, which
  // dominates a proxy's latency at low concurrency; polling costs up to this much CPU after
  // every burst of events, on each io thread. 0 sleeps at once. Above 0, each io thread
  // runs an io_context of its own: asio lets one thread at a time wait in epoll, and
  // threads sharing one would spin blind while another sleeps there. FromConfig leaves it
  // 0: the router sets it from router.busy_poll_us.
  std::chrono::microseconds busy_poll{0};
  // Each io thread runs an io_context of its own (as with busy_poll above 0) and keeps the
  // connections it was handed: no strand per connection and no scheduler lock shared by
  // the threads. Threads sharing one io_context wake each other for every event: a router
  // with 4 such threads served 0.43 of nginx's requests/s with 4 workers on 16 cores
  // (docs/performance.md). The price: a handler that blocks holds up every connection of
  // its thread, so only servers whose handlers never block set it (the router does).
  // FromConfig leaves it false.
  bool context_per_thread = false;

  // Reads the server.* keys (see docs/configuration.md). This is where the values above
  // come from; the zeros in the struct are not usable defaults.
  static ServerOptions FromConfig(const base::Config& config);
};

// How a handler answers. Exactly one of Send() or StartStream() is called, once. After
// StartStream(), Write() any number of times then Finish() once. All methods are
// thread-safe and return immediately; the bytes are written by the connection's strand.
class Responder {
 public:
  virtual ~Responder() = default;

  // Sends a complete response (Content-Length framing).
  virtual void Send(HttpResponse response) = 0;

  // Sends the status and headers of a streamed (chunked) response.
  virtual void StartStream(int status, Headers headers) = 0;
  // Queues one chunk. `on_written` (optional) runs on an io thread once the chunk is
  // written to the socket, or with an error when the stream was aborted (client gone,
  // write timeout, or more than max_stream_buffer_bytes queued). A producer that waits
  // for on_written before writing more gets backpressure for free.
  virtual void Write(std::string chunk, std::function<void(base::Status)> on_written = {}) = 0;
  // Ends the stream (the terminating zero-length chunk).
  virtual void Finish() = 0;

  // True once the client has gone away, the stream was aborted or the server stopped.
  // A Responder may outlive the HttpServer; it then does nothing. A client that goes away
  // while its request is handled is noticed within about 100 ms: the server starts
  // watching a connection only once its request has taken up to 50 ms (a watch per
  // request would cost a failed read per request).
  virtual bool Closed() const = 0;
  // Runs `callback` once when the client goes away or the stream is aborted before the
  // response completed (to cancel upstream work). Runs at once if already closed.
  virtual void OnClose(std::function<void()> callback) = 0;
};

// The request is handed over as an rvalue: a handler may take it by value, or by `&&` to
// spare a move (each move of a request moves five strings; a proxied request, moved at
// every step on its way to the proxy, cost 1.6k more instructions).
using Handler = std::function<void(HttpRequest&& request, std::shared_ptr<Responder> responder)>;

// Dispatches on method and exact path. An unknown path is answered 404 (type not_found), a
// known path with another method 405 (method_not_allowed) with an Allow header.
class HttpRouter {
 public:
  void Handle(const std::string& method, const std::string& path, Handler handler);
  // The request's route pattern for metrics, or "other".
  std::string RouteOf(const HttpRequest& request) const;
  void Dispatch(HttpRequest&& request, std::shared_ptr<Responder> responder) const;

 private:
  struct Route {
    std::string method;
    std::string path;
    Handler handler;
  };
  std::vector<Route> routes_;
};

class HttpServer {
 public:
  HttpServer(ServerOptions options, std::shared_ptr<const HttpRouter> router);
  ~HttpServer();  // Stops the server if still running.
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and listens. May be called several times (e.g. TCP and a Unix socket). A TCP
  // port of 0 picks a free port; BoundEndpoints() tells which. A Unix socket path that
  // exists as a stale socket is replaced.
  base::Status Listen(const Endpoint& endpoint);
  std::vector<Endpoint> BoundEndpoints() const;

  // Starts the io threads; returns at once.
  base::Status Start();
  // Graceful stop as described above; blocks until done. Safe to call more than once.
  void Drain();
  // Immediate stop: closes every connection.
  void Stop();
  // Blocks until SIGTERM or SIGINT, then Drain().
  void RunUntilSignal();

  // Connections currently open (for tests and metrics).
  size_t ConnectionCount() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

// Parses one complete HTTP/1.1 request from bytes with the same parser settings and
// limits the server uses. For the fuzzer and tests: the returned error's message starts
// with the status the server would answer ("400 ...", "413 ...", "431 ...", "501 ...").
base::Result<HttpRequest> ParseHttpRequest(std::string_view bytes, size_t max_header_bytes,
                                           uint64_t max_body_bytes);

}  // namespace supercluster::net
