// The asynchronous upstream client. Each exchange runs on one executor (its connection's):
// a strand when several threads run the io_context, or the io_context itself when one
// thread does. So its steps, its deadline, Cancel and resume never race, while different
// exchanges run in parallel on the client's io threads, or on the calling HttpServer's
// (io_threads 0). The only shared state is the pool and the list of exchanges in flight,
// kept per io_context (a Shard) under a lock taken once when an exchange starts and once
// when it ends; a polling server's io threads each have their own io_context, so they
// share none of it. Nor a reference count: an exchange holds the client through its
// shard's reference (Shard::client), not a copy of the client's own.
//
// Sockets are plain asio sockets read and written by hand, with Beast's parser fed from
// the connection's buffer: Beast's stream and its composed reads arm a timer per operation
// and run every step through a strand, which cost a proxy more CPU per request than the
// rest of its upstream exchange (docs/performance.md).
#include "net/upstream_client.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <array>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cerrno>
#include <charconv>
#include <condition_variable>
#include <cstring>
#include <limits>
#include <iterator>
#include <list>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <tuple>
#include <vector>

#include "base/coarse_clock.h"
#include "base/thread_slot.h"
#include "net/byte_scan.h"
#include "net/http_parse.h"
#include "net/response_parser.h"
#include "net/io_thread.h"
#include "net/socket_address.h"

namespace supercluster::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using internal::Protocol;
using Clock = std::chrono::steady_clock;
using ErrorCode = boost::system::error_code;

using internal::ResponseParser;

namespace {

// The most body bytes handed to one on_data call; one such buffer per connection.
constexpr size_t kPieceBytes = 32 * 1024;
// Room for one socket read; the parser then copies body bytes out into a piece.
constexpr size_t kReadBytes = 64 * 1024;
// How long a name's resolved addresses are used before resolving it again.
constexpr auto kResolveTtl = std::chrono::seconds(30);

// An order of endpoints for a map: the numbers first, since they are cheaper to compare
// and are what usually tells two upstreams apart (one host, several ports).
struct EndpointOrder {
  bool operator()(const Endpoint& a, const Endpoint& b) const {
    return std::tie(a.port, a.cid, a.kind, a.tls, a.host, a.path) <
           std::tie(b.port, b.cid, b.kind, b.tls, b.host, b.path);
  }
};

// What a DeadlineWatch calls when its timer fires: the exchange that uses the connection.
class DeadlineUser {
 public:
  virtual void OnDeadlineTimer() = 0;

 protected:
  ~DeadlineUser() = default;
};

// The deadline of whichever exchange uses a connection, watched by one timer that stays
// armed from exchange to exchange. Making, arming and cancelling a timer for every
// exchange cost a proxied request about 1k instructions (callgrind: 27.98k against 26.94k)
// and four lock round trips: the service registry's, the reactor's twice, the scheduler's
// for the cancelled wait (docs/performance.md). A watch is armed about once per timeout.
// Like EarliestTimer, it is re-armed only for an earlier time than it is armed for: a
// later deadline is only stored by the exchange, which the watch asks when it fires.
//
// Its wait holds it only weakly, so that a connection can be destroyed on any thread (the
// pool drops idle connections from Send and Shutdown) with the wait pending: the wait is
// then cancelled, or finds the watch gone. All else runs on the connection's executor.
class DeadlineWatch : public std::enable_shared_from_this<DeadlineWatch> {
 public:
  explicit DeadlineWatch(const asio::any_io_executor& executor) : timer_(executor) {}

  // The exchange the connection serves now, or nullptr while it is pooled. An exchange sets
  // itself whenever it sets a deadline and clears itself in End (before the pool gets the
  // connection back), both on the connection's executor, where the timer's handler runs
  // too. Until End the client's list of exchanges in flight keeps it alive, so the
  // pointer is valid whenever it is set.
  void set_user(DeadlineUser* user) { user_ = user; }

  // The user's OnDeadlineTimer runs no later than `deadline` (maybe earlier).
  void FireBy(Clock::time_point deadline) {
    if (armed_ && expiry_ <= deadline) return;
    armed_ = true;
    expiry_ = deadline;
    timer_.expires_at(deadline);  // cancels an earlier wait, if any
    timer_.async_wait([weak = weak_from_this()](ErrorCode error) {
      std::shared_ptr<DeadlineWatch> self = weak.lock();
      if (!self || error == asio::error::operation_aborted) return;
      self->armed_ = false;
      if (self->user_ != nullptr) self->user_->OnDeadlineTimer();
    });
  }

 private:
  asio::steady_timer timer_;
  bool armed_ = false;        // a wait is pending ...
  Clock::time_point expiry_;  // ... that ends at this time
  DeadlineUser* user_ = nullptr;
};

// One connection to an upstream, with the buffers and the deadline watch it keeps from
// exchange to exchange.
struct Connection {
  Connection(std::shared_ptr<asio::io_context> context, const asio::any_io_executor& executor)
      : io_context(std::move(context)),
        socket(executor),
        watch(std::make_shared<DeadlineWatch>(executor)),
        // Not zeroed: body bytes are written before they are read, and zeroing touched
        // all 32 KiB of every new connection, most of which a small answer never uses.
        piece(std::make_unique_for_overwrite<char[]>(kPieceBytes)) {
    buffer.reserve(kReadBytes);
  }
  // The context the socket belongs to (the client's own or a server's); declared first so
  // that a pooled connection keeps it alive as long as the socket and the watch.
  std::shared_ptr<asio::io_context> io_context;
  Protocol::socket socket;
  std::shared_ptr<DeadlineWatch> watch;  // shared only with its own pending wait (weakly)
  beast::flat_buffer buffer;  // bytes read from the socket and not yet parsed
  std::unique_ptr<char[]> piece;
};

// Whether an idle pooled connection can carry another request: the server has not closed it
// and has sent nothing unasked (either shows as readable). The peek (one syscall) is spent
// on every reuse, however short the idle time: bytes an upstream sends after its answer
// (a worker that wrote an answer twice) would otherwise be read as the next request's
// answer, handing one client another's. A close that lands after the peek is covered by
// the retry in FailBeforeResponse.
bool LooksReusable(Connection& connection) {
  if (connection.buffer.size() != 0) return false;
  char byte;
  ssize_t got = ::recv(connection.socket.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

bool IsFieldValue(std::string_view text) {
  return internal::FindLineBreakOrNul(text) == std::string_view::npos;
}

// Not empty, and no control character, space or DEL; eight bytes at a time, then the rest
// one by one.
bool IsTarget(std::string_view text) {
  if (text.empty()) return false;
  size_t at = 0;
  for (; at + 8 <= text.size(); at += 8) {
    const uint64_t word = internal::LoadWord(text.data() + at);
    if (internal::SomeByteIsBelow(word, 0x21) || internal::SomeByteIs(word, 0x7f)) return false;
  }
  for (; at < text.size(); ++at) {
    const auto byte = static_cast<unsigned char>(text[at]);
    if (byte <= 0x20 || byte == 0x7f) return false;
  }
  return true;
}


// The error for a request that cannot be sent: cold and out of line, so that building its
// message takes no room among the request path's instructions (the instruction cache).
[[gnu::cold, gnu::noinline]] base::Status Unsendable(std::string_view what,
                                                      std::string_view text,
                                                      std::string_view why) {
  return base::InvalidArgument("upstream request: " + std::string(what) + " '" +
                               std::string(text) + "'" + std::string(why));
}

[[gnu::cold, gnu::noinline]] base::Status TlsRefused(const Endpoint& endpoint) {
  return base::FailedPrecondition("upstream " + endpoint.ToString() +
                                  ": TLS upstreams are not supported");
}

// The whole request (request line, header section and body) written by hand into one
// string: it is cheaper than building Beast's field list, one buffer is one allocation and
// one plain send, and the checks below keep a header from smuggling a second request (the
// router forwards client-supplied fields).
base::Result<std::string> SerializeRequest(const HttpRequest& request, const Endpoint& endpoint) {
  const size_t body_size = request.body.size();
  using namespace std::string_view_literals;
  if (!internal::IsToken(request.method)) {
    return Unsendable("invalid method", request.method, "");
  }
  if (!IsTarget(request.target)) {
    return Unsendable("invalid target", request.target, "");
  }
  bool has_host = false;
  for (size_t i = 0; i < request.headers.size(); ++i) {
    const auto [name, value] = request.headers[i];
    // A parsed field was checked when it was parsed; a known name when it was compiled.
    const bool name_ok = request.headers.name_checked(i) || internal::IsToken(name);
    if (!request.headers.checked(i) && (!name_ok || !IsFieldValue(value))) {
      return Unsendable("header", name, " has a name or value that cannot be sent (CR, LF, NUL)");
    }
    if (EqualsIgnoreCase(name, "Host")) has_host = true;
  }
  // Host, when the request has none: the endpoint's address (localhost for Unix and vsock).
  const bool tcp = endpoint.kind == Endpoint::Kind::kTcp;
  const bool ipv6 = tcp && endpoint.host.find(':') != std::string::npos;
  const std::string_view host = tcp ? std::string_view(endpoint.host) : "localhost"sv;
  char port_digits[8];
  std::string_view port_text;
  if (tcp) {
    port_text = std::string_view(
        port_digits, static_cast<size_t>(std::to_chars(port_digits, port_digits + sizeof(port_digits),
                                                       endpoint.port).ptr - port_digits));
  }
  char length_digits[24];
  std::string_view length_text;
  const bool has_body_semantics = request.method == "POST" || request.method == "PUT" ||
                                  request.method == "PATCH";
  if (body_size > 0 || has_body_semantics) {
    length_text = std::string_view(
        length_digits,
        static_cast<size_t>(std::to_chars(length_digits, length_digits + sizeof(length_digits),
                                          body_size).ptr - length_digits));
  }

  // The exact size of every piece (and of every field, though the framing ones are dropped
  // below), so that the pieces are copied into one buffer without a capacity check each.
  size_t bound = request.method.size() + 1 + request.target.size() + " HTTP/1.1\r\n"sv.size() +
                 "\r\n"sv.size();
  for (auto [name, value] : request.headers) bound += name.size() + value.size() + 4;
  if (!has_host) bound += "Host: "sv.size() + host.size() + 2 + 1 + port_text.size() + 2;
  if (!length_text.empty()) bound += "Content-Length: "sv.size() + length_text.size() + 2;
  bound += body_size;
  std::string head;
  head.resize(bound);
  internal::PieceWriter writer(head.data());
  writer.Put(request.method);
  writer.Put(" "sv);
  writer.Put(request.target);
  writer.Put(" HTTP/1.1\r\n"sv);
  for (auto [name, value] : request.headers) {
    if (EqualsIgnoreCase(name, "Content-Length") || EqualsIgnoreCase(name, "Transfer-Encoding")) {
      continue;  // the body below is always framed by its own length
    }
    writer.Put(name);
    writer.Put(": "sv);
    writer.Put(value);
    writer.Put("\r\n"sv);
  }
  if (!has_host) {
    writer.Put("Host: "sv);
    if (ipv6) writer.Put("["sv);
    writer.Put(host);
    if (ipv6) writer.Put("]"sv);
    if (tcp) {
      writer.Put(":"sv);
      writer.Put(port_text);
    }
    writer.Put("\r\n"sv);
  }
  if (!length_text.empty()) {
    writer.Put("Content-Length: "sv);
    writer.Put(length_text);
    writer.Put("\r\n"sv);
  }
  writer.Put("\r\n"sv);
  writer.Put(request.body);
  head.resize(static_cast<size_t>(writer.at() - head.data()));
  return head;
}

}  // namespace

class UpstreamClient::Impl : public std::enable_shared_from_this<UpstreamClient::Impl> {
 public:
  class Exchange;

  explicit Impl(UpstreamOptions options);

  // Cancels every exchange and waits for each to end, as UpstreamClient's destructor
  // promises. Exchanges hold the Impl, so it may be destroyed later than this returns.
  void Shutdown();

  std::shared_ptr<UpstreamExchange> Send(const Endpoint& endpoint, const HttpRequest& request,
                                         std::shared_ptr<UpstreamHandler> handler);

  void AbandonWaiting(const Endpoint& endpoint, const base::Status& why);

  // --- For Exchange. ---
  const UpstreamOptions& options() const { return options_; }
  // The endpoint's addresses, resolved at most every kResolveTtl. Runs on an io thread;
  // resolving a name blocks it (numeric addresses and Unix paths do not).
  base::Result<std::vector<Protocol::endpoint>> Addresses(const Endpoint& endpoint);
  // The exchanges and idle connections of one io_context. A polling HttpServer runs an
  // io_context per io thread, and its connections' exchanges run there
  // (UpstreamOptions::io_threads 0), so each shard is touched by one thread: starting and
  // ending an exchange writes no cache line that another core wrote last. (One lock and
  // list shared by all threads cost a 4-thread router about a tenth of its throughput
  // against nginx's 4 workers on 16 cores: docs/performance.md.) Shards are made as
  // contexts first send and stay until the client is destroyed, so an exchange keeps a
  // pointer to its own. An io_context lives as long as a connection or exchange of it
  // does, so a shard whose context is gone is empty; a context made later at the same
  // address inherits it, which is harmless.
  // Aligned to a cache line so that two shards never share one (each is written per
  // request by its own thread).
  struct alignas(64) Shard {
    // The idle connections to one endpoint, most recently used last, up to
    // max_idle_per_endpoint (a cap per io_context: a burst on one io thread cannot fill
    // the room the next thread's connections need).
    using IdleList = std::vector<std::unique_ptr<Connection>>;

    explicit Shard(asio::io_context* context) : context(context) {}

    asio::io_context* const context;
    std::mutex mutex;  // guards what follows
    // The reference to the client that this shard's exchanges hold, with a reference count
    // of its own: an exchange keeps the client alive (it may end after the client's owner
    // let go, see shut_down()), and a copy of the client's own shared_ptr would be a count
    // that every io thread writes twice per request. Points to the client through a
    // holder that owns one reference to it (a cycle, which Shutdown breaks by resetting
    // this); null from Shutdown on, and for a shard made after it.
    std::shared_ptr<Impl> client;
    // Entries stay until the client is destroyed: an exchange keeps a pointer to its own.
    std::map<Endpoint, IdleList, EndpointOrder> idle;
    std::list<std::shared_ptr<Exchange>> in_flight;  // holds each exchange until it ends
    std::atomic<size_t> in_flight_count{0};          // in_flight.size(), set under mutex
  };
  // An exchange ended: forgets it and pools `connection` (null when not reusable) with
  // the idle connections `idle` (null when the client was closing as it started).
  void Finished(Shard& shard, std::list<std::shared_ptr<Exchange>>::iterator registration,
                Shard::IdleList* idle, std::unique_ptr<Connection> connection);
  // True once Shutdown() returned: an exchange that ends later (one abandoned on a server
  // that stopped running) must not call back into its owner, which may be gone.
  bool shut_down() const { return shut_down_.load(std::memory_order_acquire); }

 private:
  struct Resolved {
    std::vector<Protocol::endpoint> addresses;
    Clock::time_point resolved_at;
  };
  // The shard of `context`, made on its first use. Looked up in a small cache of the
  // calling thread's own before the client's lock is taken.
  Shard& ShardOf(asio::io_context* context);
  // Whether every exchange in flight has ended or can no longer end (its io_context
  // stopped). Requires mutex_.
  bool AllEndedOrStuckLocked();

  UpstreamOptions options_;
  const int own_threads_;
  // This client's slot in each thread (base::ThreadSlotOf): the shard it sends on.
  const uint64_t thread_slot_owner_ = base::NewThreadSlotOwnerId();
  // Shared with every exchange so that strands and sockets an exchange still holds after
  // the client is gone never outlive their io_context.
  std::shared_ptr<asio::io_context> io_context_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  std::vector<std::thread> threads_;

  std::mutex mutex_;  // guards what follows; taken per connect and per new io_context
  // Keyed by the endpoint itself: formatting it as text for each request cost more than
  // the lookup.
  std::map<Endpoint, Resolved, EndpointOrder> resolved_;
  std::vector<std::unique_ptr<Shard>> shards_;
  std::condition_variable exchange_ended_;  // signalled by Finished once closing_ is set
  // Set when Shutdown begins: an exchange sent from then on (a retry from a callback of one
  // being cancelled) is cancelled at once instead of being waited for. Read by Send and
  // Finished under their shard's lock.
  std::atomic<bool> closing_{false};
  std::atomic<bool> shut_down_{false};
};

// One request and its response. Every member below the constructor's is touched only on
// executor_, except finished_ (read anywhere to make late Cancel and resume calls cheap).
class UpstreamClient::Impl::Exchange final : public UpstreamExchange,
                                             public DeadlineUser,
                                             public std::enable_shared_from_this<Exchange> {
 public:
  Exchange(std::shared_ptr<asio::io_context> io_context, asio::any_io_executor executor,
           const Endpoint& endpoint, const HttpRequest& request,
           std::shared_ptr<UpstreamHandler> handler)
      : io_context_(std::move(io_context)),
        endpoint_(endpoint),
        is_head_request_(request.method == "HEAD"),
        handler_(std::move(handler)),
        executor_(std::move(executor)) {
    if (endpoint.tls) {
      setup_error_ = TlsRefused(endpoint);
      return;
    }
    auto bytes = SerializeRequest(request, endpoint);
    if (!bytes.ok()) {
      setup_error_ = bytes.status();
      return;
    }
    request_bytes_ = std::move(*bytes);
  }

  const Endpoint& endpoint() const { return endpoint_; }
  asio::io_context* context() const { return io_context_.get(); }

  // Called by Send before Begin: the exchange ends with `status` as soon as it starts.
  void FailAtStart(base::Status status) { setup_error_ = std::move(status); }

  // Called once by Send, under its shard's lock, right after the exchange was added to
  // the shard's exchanges in flight at `registration`: whatever Cancel (from Shutdown) and
  // End read is set before another thread can find the exchange there. `client` is the
  // shard's reference to the client (Shard::client). `idle` is the shard's idle list for
  // the endpoint (null when the client is closing).
  void Register(std::shared_ptr<Impl> client, Shard* shard,
                std::list<std::shared_ptr<Exchange>>::iterator registration,
                Shard::IdleList* idle, std::unique_ptr<Connection> pooled) {
    client_ = std::move(client);
    shard_ = shard;
    registration_ = registration;
    idle_ = idle;
    if (pooled) {
      executor_ = pooled->socket.get_executor();
      connection_ = std::move(pooled);
      reused_ = true;
    }
  }

  // Called once by Send after Register, outside the mutex. `on_own_thread`: the caller is
  // the only thread that runs this exchange's executor, so its steps may run right here.
  void Begin(bool on_own_thread) {
    // A request on a pooled connection starts at once: its first steps only write it and
    // start (or post) reading the answer, and a read's completion never runs inside the
    // call that starts it, so no callback runs inside Send(). That saves a trip through the
    // io_context's queue per proxied request. Everything else (a connect, which may fail
    // at once) is posted.
    if (on_own_thread && connection_ && setup_error_.ok()) return Write();
    asio::post(executor_, [self = shared_from_this()] { self->Start(); });
  }

  // For AbandonWaiting: fails the exchange with `why` unless its answer has begun.
  void AbandonIfWaiting(const base::Status& why) {
    if (finished_.load(std::memory_order_acquire)) return;
    asio::post(executor_, [self = shared_from_this(), why] {
      if (self->finished_.load(std::memory_order_relaxed) || self->received_) return;
      self->Fail(why);
    });
  }

  void Cancel() override {
    if (finished_.load(std::memory_order_acquire)) return;
    asio::post(executor_, [self = shared_from_this()] {
      if (self->finished_.load(std::memory_order_relaxed)) return;
      self->Fail(base::Cancelled("upstream " + self->endpoint_.ToString() +
                                 ": request cancelled"));
    });
  }

 private:
  // --- The deadline ---
  //
  // Watched by the connection's DeadlineWatch: a later deadline than the watch is armed
  // for is only stored here, and the watch asks again when it fires. When the deadline
  // passes, the socket is closed; the operation pending on it then fails, and timed_out_
  // tells it why. Set only while the exchange has a connection.

  // From the coarse clock: a deadline of seconds may fire a scheduler tick early.
  void SetDeadline(std::chrono::milliseconds timeout) {
    deadline_ = base::CoarseNow() + timeout;
    // Here, on the executor, not when the connection is taken from the pool (on the caller's
    // thread): the watch's handler may be running then.
    connection_->watch->set_user(this);
    connection_->watch->FireBy(deadline_);
  }

  void ClearDeadline() { deadline_ = Clock::time_point::max(); }

  void OnDeadlineTimer() override {
    if (finished_ || !connection_ || deadline_ == Clock::time_point::max()) return;
    if (Clock::now() < deadline_) return connection_->watch->FireBy(deadline_);
    timed_out_ = true;
    ErrorCode ignored;
    connection_->socket.close(ignored);  // the pending operation fails
  }

  // --- The steps ---

  void Start() {
    if (finished_) return;
    if (!setup_error_.ok()) return Fail(setup_error_);
    if (connection_) return Write();
    Connect();
  }

  void Connect() {
    auto addresses = client_->Addresses(endpoint_);
    if (!addresses.ok()) return Fail(addresses.status());
    addresses_ = std::move(*addresses);
    reused_ = false;
    ConnectTo(0);
  }

  void ConnectTo(size_t index) {
    // A socket whose connect failed is not reused for the next address; a fresh one is
    // cheap and this path is rare.
    connection_ = std::make_unique<Connection>(io_context_, executor_);
    timed_out_ = false;
    SetDeadline(client_->options().connect_timeout);
    connection_->socket.async_connect(
        addresses_[index],
        [self = shared_from_this(), index](ErrorCode error) { self->OnConnected(error, index); });
  }

  void OnConnected(ErrorCode error, size_t index) {
    if (finished_) return;
    if (error) {
      if (index + 1 < addresses_.size() && !timed_out_) return ConnectTo(index + 1);
      if (timed_out_) {
        return Fail(base::DeadlineExceeded(
            "connecting to upstream " + endpoint_.ToString() + ": no answer within " +
            std::to_string(client_->options().connect_timeout.count()) + " ms"));
      }
      return Fail(base::Unavailable("cannot connect to upstream " + endpoint_.ToString() + ": " +
                                    error.message()));
    }
    if (internal::IsTcp(addresses_[index])) {
      int one = 1;
      ::setsockopt(connection_->socket.native_handle(), IPPROTO_TCP, TCP_NODELAY, &one,
                   sizeof(one));
    }
    Write();
  }

  void Write() {
    // The response timeout runs from here to the end of the head, then between pieces.
    SetDeadline(client_->options().response_timeout);
    size_t sent = SendWithoutWaiting();
    if (sent == request_bytes_.size()) {
      // The answer cannot be there yet, so reading it at once fails with EAGAIN (a wasted
      // system call) before the wait for readability starts. With other exchanges in
      // flight the read starts after the io thread has served what it has queued, by which
      // time the answer has often come; alone, it starts at once (a post would only add a
      // poll of epoll before the thread sleeps).
      if (!OthersInFlight()) return OnWritten({});
      asio::post(executor_, [self = shared_from_this()] { self->OnWritten({}); });
      return;
    }
    asio::async_write(connection_->socket, asio::buffer(request_bytes_) + sent,
                      [self = shared_from_this()](ErrorCode error, size_t) {
                        self->OnWritten(error);
                      });
  }

  // The request is first offered to the kernel directly, without blocking: on loopback or
  // a LAN it nearly always goes whole at once, without asio's write operation (allocated,
  // the socket's reactor state locked, its completion posted). Returns how many bytes
  // went: what is left goes the asio way, all of it on EAGAIN or an error. An error is
  // left for the asio write to meet again and report on a later turn: reported here, it
  // would end the exchange (and call on_done) inside Send(). OnWritten starts the read,
  // whose completion asio never runs inside the call that starts it.
  size_t SendWithoutWaiting() {
    ssize_t sent = ::send(connection_->socket.native_handle(), request_bytes_.data(),
                          request_bytes_.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    return sent > 0 ? static_cast<size_t>(sent) : 0;
  }

  void OnWritten(ErrorCode error) {
    if (finished_) return;
    if (error) return FailBeforeResponse(error);
    StartHead();
  }

  void StartHead() {
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(client_->options().max_response_header_bytes));
    parser_->body_limit(std::numeric_limits<std::uint64_t>::max());
    if (is_head_request_) parser_->skip(true);
    ParseHead();
  }

  // Parses what the buffer holds; reads more until the head is complete.
  void ParseHead() {
    ErrorCode error;
    if (connection_->buffer.size() != 0 && !is_head_request_) {
      std::string_view received(static_cast<const char*>(connection_->buffer.data().data()),
                                connection_->buffer.size());
      if (size_t used = parser_->ParseWhole(
              received, client_->options().max_response_header_bytes, kPieceBytes);
          used > 0) {
        connection_->buffer.consume(used);
        return OnHead({});
      }
    }
    if (connection_->buffer.size() != 0) {
      size_t used = parser_->put(connection_->buffer.data(), error);
      connection_->buffer.consume(used);
      if (error == http::error::need_more) error = {};
      if (error || parser_->is_header_done()) return OnHead(error);
    }
    ReadMore([](Exchange& self, ErrorCode read_error) {
      if (read_error) return self.OnHead(read_error);
      self.ParseHead();
    });
  }

  // Reads whatever arrives into the connection's buffer, then calls `next(*this, error)`.
  // At the end of the stream the parser is told (a body delimited by the close is then
  // complete) and `next` gets an error only when the message is not. The read holds the
  // exchange alive until `next` returns, so `next` needs no reference of its own (each
  // one is a locked read-modify-write to make and another to drop).
  template <class Next>
  void ReadMore(Next next) {
    connection_->socket.async_read_some(
        connection_->buffer.prepare(kReadBytes),
        [self = shared_from_this(), next = std::move(next)](ErrorCode error, size_t bytes) {
          if (self->finished_) return;
          self->connection_->buffer.commit(bytes);
          if (error == asio::error::eof) {
            if (!self->parser_->got_some()) {
              error = http::error::end_of_stream;
            } else {
              error = {};
              self->parser_->put_eof(error);
              if (!error) self->at_eof_ = true;
            }
          }
          next(*self, error);
        });
  }

  void OnHead(ErrorCode error) {
    if (finished_) return;
    if (error) {
      if (!parser_->got_some()) return FailBeforeResponse(error);
      received_ = true;
      return Fail(Describe(error));
    }
    received_ = true;
    int status = parser_->status();
    if (status >= 100 && status < 200 && status != 101) return StartHead();  // interim answer
    // No retry can happen from here on: the request's bytes are not needed any more.
    std::string().swap(request_bytes_);
    handler_->OnHead(parser_->TakeHead());
    ReadBody();
  }

  // Fills the piece buffer from what the buffer holds, reading more when it holds nothing
  // the parser can use. Body bytes that came in the same read as the head (all of a small
  // answer) are parsed at once, so the caller gets the head, the data and the end in one
  // turn (and a proxy writes them to its client together).
  void ReadBody() {
    if (parser_->complete()) return Complete();
    parser_->SetBodyBuffer(connection_->piece.get(), kPieceBytes);
    if (parser_->whole()) {  // the body is all in the buffer, at most one piece
      parser_->TakeWholeBody(static_cast<const char*>(connection_->buffer.data().data()));
      connection_->buffer.consume(parser_->body_length());
      return OnBody({});
    }
    if (connection_->buffer.size() != 0) {
      ErrorCode error;
      size_t used = parser_->put(connection_->buffer.data(), error);
      connection_->buffer.consume(used);
      if (error == http::error::need_more) error = {};
      // Nothing consumed: the buffered bytes are an incomplete chunk header; read more.
      if (used != 0 || error) return OnBody(error);
      // Unless they can never complete: Beast waits for the end of a chunk-size line or
      // trailer without a limit and ends those lines only at CRLF, so an upstream could
      // grow them (and this buffer) without end. Bounded as the server bounds a client's.
      std::string reason;
      if (parser_->chunked() &&
          !internal::ChunkedRemainderMayComplete(
              std::string_view(static_cast<const char*>(connection_->buffer.data().data()),
                               connection_->buffer.size()),
              client_->options().max_response_header_bytes, &reason)) {
        return Fail(base::DataLoss("upstream " + endpoint_.ToString() + ": " + reason));
      }
    }
    if (at_eof_) return OnBody(http::error::partial_message);
    // The longest gap between two pieces; a pause for resume is not counted.
    SetDeadline(client_->options().response_timeout);
    ReadMore([](Exchange& self, ErrorCode error) {
      if (error) return self.OnBody(error);
      if (self.parser_->complete()) return self.OnBody({});
      self.ReadBody();
    });
  }

  void OnBody(ErrorCode error) {
    if (finished_) return;
    if (error == http::error::need_buffer) error = {};  // the piece buffer is full
    if (error) return Fail(Describe(error));
    size_t got = kPieceBytes - parser_->body_room();
    if (got == 0) return ReadBody();
    bool last = parser_->complete();
    awaiting_resume_ = true;
    resume_now_ = false;
    ClearDeadline();
    in_on_data_ = this;
    handler_->OnData(std::string_view(connection_->piece.get(), got),
                     [self = shared_from_this()] { self->Resume(); });
    in_on_data_ = nullptr;
    if (last) return Complete();
    if (resume_now_) {
      awaiting_resume_ = false;
      ReadBody();
    }
  }

  // From any thread. Called from inside on_data (the common case for a consumer without
  // backpressure) it only sets a flag, saving a post.
  void Resume() {
    if (finished_.load(std::memory_order_acquire)) return;
    if (in_on_data_ == this) {
      resume_now_ = true;
      return;
    }
    asio::post(executor_, [self = shared_from_this()] {
      if (self->finished_ || !self->awaiting_resume_) return;
      self->awaiting_resume_ = false;
      self->ReadBody();
    });
  }

  // The write or the head failed before any byte of the answer. On a pooled connection
  // that is what a server's idle close looks like when it crossed our reuse: try once more
  // on a fresh connection. (The server closed without answering, so it did not take the
  // request; a timeout, by contrast, may mean it is working on it and is not retried.)
  void FailBeforeResponse(ErrorCode error) {
    if (reused_ && !retried_ && !timed_out_) {
      retried_ = true;
      ErrorCode ignored;
      connection_->socket.close(ignored);
      connection_.reset();
      return Connect();
    }
    Fail(Describe(error));
  }

  base::Status Describe(ErrorCode error) const {
    std::string where = "upstream " + endpoint_.ToString();
    const auto& options = client_->options();
    if (timed_out_) {
      return base::DeadlineExceeded(where + ": no response within " +
                                    std::to_string(options.response_timeout.count()) + " ms");
    }
    if (error == http::error::header_limit) {
      return base::ResourceExhausted(where + ": response header over " +
                                     std::to_string(options.max_response_header_bytes) +
                                     " bytes");
    }
    static const boost::system::error_category& kParseErrors =
        ErrorCode(http::error::bad_version).category();
    if (error == http::error::partial_message || error == http::error::end_of_stream ||
        error.category() != kParseErrors) {
      // Not a parse error: the connection broke or closed early.
      return base::Unavailable(where + ": connection lost before the response ended (" +
                               error.message() + ")");
    }
    return base::DataLoss(where + ": malformed response (" + error.message() + ")");
  }

  void Complete() {
    bool reusable = !at_eof_ && parser_->KeepAlive() && parser_->status() != 101 &&
                    connection_->buffer.size() == 0;
    std::unique_ptr<Connection> pooled;
    if (reusable) pooled = std::move(connection_);
    End(base::Status::Ok(), std::move(pooled));
  }

  // Ends with an error: the connection is closed, and kept (not destroyed) until this
  // exchange goes, because an operation still pending on it refers to its buffers.
  void Fail(base::Status status) {
    if (connection_) {
      ErrorCode ignored;
      connection_->socket.close(ignored);
    }
    End(std::move(status), nullptr);
  }

  void End(base::Status status, std::unique_ptr<Connection> pooled) {
    finished_.store(true, std::memory_order_release);
    if (connection_) connection_->watch->set_user(nullptr);
    if (pooled) pooled->watch->set_user(nullptr);
    // Pool the connection before on_done, so a request sent from on_done can reuse it.
    auto self = shared_from_this();
    client_->Finished(*shard_, registration_, idle_, std::move(pooled));
    UpstreamResult result;
    result.status = std::move(status);
    result.head_received = received_;
    // Let go of the handler now rather than when the exchange goes: it may hold the caller.
    std::shared_ptr<UpstreamHandler> handler = std::move(handler_);
    if (!client_->shut_down()) handler->OnDone(result);
  }

  // Whether other exchanges are in flight on this exchange's io_context (read without the
  // lock: a hint, not a count to rely on).
  bool OthersInFlight() const {
    return shard_->in_flight_count.load(std::memory_order_relaxed) > 1;
  }

  // The exchange whose on_data runs on this thread right now (see Resume).
  static thread_local const Exchange* in_on_data_;

  // Declared first so that it is destroyed last: the executor and connection need it.
  std::shared_ptr<asio::io_context> io_context_;
  std::shared_ptr<Impl> client_;  // set by Register: its shard's reference (Shard::client)
  Endpoint endpoint_;
  std::string request_bytes_;  // the whole request, kept for a retry until the head arrives
  bool is_head_request_;
  std::shared_ptr<UpstreamHandler> handler_;
  base::Status setup_error_;
  asio::any_io_executor executor_;
  Shard* shard_ = nullptr;  // of this exchange's io_context (see Register)
  std::list<std::shared_ptr<Exchange>>::iterator registration_;
  Shard::IdleList* idle_ = nullptr;  // the shard's idle connections to endpoint_

  std::atomic<bool> finished_{false};
  std::unique_ptr<Connection> connection_;
  Clock::time_point deadline_ = Clock::time_point::max();
  bool timed_out_ = false;
  std::vector<Protocol::endpoint> addresses_;
  std::optional<ResponseParser> parser_;
  bool at_eof_ = false;  // the server closed; the parser has been told
  bool reused_ = false;
  bool retried_ = false;
  bool received_ = false;
  bool awaiting_resume_ = false;
  bool resume_now_ = false;
};

thread_local const UpstreamClient::Impl::Exchange* UpstreamClient::Impl::Exchange::in_on_data_ =
    nullptr;

UpstreamClient::Impl::Impl(UpstreamOptions options)
    : options_(std::move(options)),
      // With io_threads 0 the own thread serves only calls from outside an HttpServer.
      own_threads_(std::max(1, options_.io_threads)),
      io_context_(std::make_shared<asio::io_context>(
          own_threads_ == 1 ? 1 : BOOST_ASIO_CONCURRENCY_HINT_DEFAULT)) {
  work_.emplace(io_context_->get_executor());
  for (int i = 0; i < own_threads_; ++i) {
    threads_.emplace_back([io_context = io_context_] { io_context->run(); });
  }
}

UpstreamClient::Impl::Shard& UpstreamClient::Impl::ShardOf(asio::io_context* context) {
  // A thread nearly always sends on the one io_context it runs, through one or two
  // clients; a slot per client spares it the client's lock on every request.
  struct CachedShard {
    asio::io_context* context = nullptr;
    Shard* shard = nullptr;
  };
  CachedShard& cached = base::ThreadSlotOf<CachedShard, 4>(thread_slot_owner_);
  if (cached.context == context) return *cached.shard;
  Shard* shard = nullptr;
  {
    std::lock_guard lock(mutex_);
    for (const auto& candidate : shards_) {
      if (candidate->context == context) shard = candidate.get();
    }
    if (shard == nullptr) {
      shard = shards_.emplace_back(std::make_unique<Shard>(context)).get();
      // Not once closing: Shutdown, which breaks the cycle, has passed this shard by.
      if (!closing_.load()) {
        auto holder = std::make_shared<std::shared_ptr<Impl>>(shared_from_this());
        shard->client = std::shared_ptr<Impl>(holder, this);  // holder's count, this client
      }
    }
  }
  cached = CachedShard{context, shard};
  return *shard;
}

bool UpstreamClient::Impl::AllEndedOrStuckLocked() {
  for (const auto& shard : shards_) {
    std::lock_guard shard_lock(shard->mutex);
    for (const auto& exchange : shard->in_flight) {
      if (!exchange->context()->stopped()) return false;
    }
  }
  return true;
}

void UpstreamClient::Impl::Shutdown() {
  std::vector<std::shared_ptr<Exchange>> live;
  std::vector<std::unique_ptr<Connection>> idle;
  std::vector<std::shared_ptr<Impl>> client_references;  // let go outside the locks
  {
    std::lock_guard lock(mutex_);
    // Set before any shard is locked: a Send that locks a shard after this one did sees it
    // (and fails its exchange); one that locked it before is in the list taken here.
    closing_.store(true);
    for (const auto& shard : shards_) {
      std::lock_guard shard_lock(shard->mutex);
      client_references.push_back(std::move(shard->client));
      live.insert(live.end(), shard->in_flight.begin(), shard->in_flight.end());
      for (auto& [endpoint, connections] : shard->idle) {
        std::move(connections.begin(), connections.end(), std::back_inserter(idle));
        connections.clear();
      }
    }
  }
  // Idle connections go now (Finished pools none from here on): their deadline watches may
  // still be armed, and an armed timer would keep the own io threads from returning.
  idle.clear();
  for (auto& exchange : live) exchange->Cancel();
  live.clear();
  // The own io threads return once the cancellations and the operations they abort are done.
  work_.reset();
  for (auto& thread : threads_) thread.join();
  // Exchanges on a server's threads end when those threads run the cancellations. One on a
  // server that stopped running will never end: it is abandoned (and never calls back).
  std::unique_lock lock(mutex_);
  // Polled as well as signalled: a server may stop while we wait.
  while (!AllEndedOrStuckLocked()) {
    exchange_ended_.wait_for(lock, std::chrono::milliseconds(10));
  }
  shut_down_.store(true, std::memory_order_release);
}

std::shared_ptr<UpstreamExchange> UpstreamClient::Impl::Send(
    const Endpoint& endpoint, const HttpRequest& request, std::shared_ptr<UpstreamHandler> handler) {
  // io_threads 0: a call from an HttpServer io thread (a proxy's handler) runs on that
  // server's threads, so that the request, the upstream exchange and the response never
  // wait for another thread to wake up.
  // Pointed to, not copied: a copy of the client's own would write a count every io thread
  // writes (the exchange's copy below is of the one this thread uses).
  const std::shared_ptr<asio::io_context>* context = &io_context_;
  bool only_thread = own_threads_ == 1;
  bool on_own_thread = false;  // this thread alone runs the exchange's executor
  if (options_.io_threads == 0) {
    const internal::ServerIoThread& server_thread = internal::CurrentServerIoThread();
    if (server_thread.io_context) {
      context = &server_thread.io_context;
      only_thread = server_thread.only_thread;
      on_own_thread = only_thread;
    }
  }
  // One thread runs the exchange's steps one at a time by itself; several need a strand.
  asio::any_io_executor executor = (*context)->get_executor();
  if (!only_thread) executor = asio::make_strand(**context);
  auto exchange =
      std::make_shared<Exchange>(*context, std::move(executor), endpoint, request, std::move(handler));
  Shard& shard = ShardOf(context->get());
  std::unique_ptr<Connection> pooled;
  std::vector<std::unique_ptr<Connection>> stale;  // closed outside the lock
  {
    std::lock_guard lock(shard.mutex);
    Shard::IdleList* idle = nullptr;
    if (closing_.load(std::memory_order_relaxed)) {
      exchange->FailAtStart(base::Cancelled("upstream " + endpoint.ToString() +
                                            ": the client is shutting down"));
    } else {
      idle = &shard.idle[endpoint];
      for (size_t i = idle->size(); i-- > 0 && !pooled;) {
        std::unique_ptr<Connection> candidate = std::move((*idle)[i]);
        idle->erase(idle->begin() + static_cast<std::ptrdiff_t>(i));
        if (LooksReusable(*candidate)) {
          pooled = std::move(candidate);
        } else {
          stale.push_back(std::move(candidate));
        }
      }
    }
    // After Shutdown the shard holds no reference, and the exchange (cancelled at once)
    // takes one of the client's own.
    exchange->Register(shard.client ? shard.client : shared_from_this(), &shard,
                       shard.in_flight.insert(shard.in_flight.end(), exchange), idle,
                       std::move(pooled));
    shard.in_flight_count.store(shard.in_flight.size(), std::memory_order_relaxed);
  }
  stale.clear();
  exchange->Begin(on_own_thread);
  return exchange;
}

void UpstreamClient::Impl::AbandonWaiting(const Endpoint& endpoint, const base::Status& why) {
  std::vector<std::shared_ptr<Exchange>> waiting;  // told outside the locks
  {
    std::lock_guard lock(mutex_);
    for (const auto& shard : shards_) {
      std::lock_guard shard_lock(shard->mutex);
      for (const auto& exchange : shard->in_flight) {
        const Endpoint& other = exchange->endpoint();
        if (!EndpointOrder()(other, endpoint) && !EndpointOrder()(endpoint, other)) {
          waiting.push_back(exchange);
        }
      }
    }
  }
  for (const auto& exchange : waiting) exchange->AbandonIfWaiting(why);
}

base::Result<std::vector<Protocol::endpoint>> UpstreamClient::Impl::Addresses(
    const Endpoint& endpoint) {
  auto now = Clock::now();
  {
    std::lock_guard lock(mutex_);
    auto found = resolved_.find(endpoint);
    if (found != resolved_.end() && !found->second.addresses.empty() &&
        now - found->second.resolved_at < kResolveTtl) {
      return found->second.addresses;
    }
  }
  SC_ASSIGN_OR_RETURN(auto addresses, internal::ResolveEndpoint(endpoint));
  std::lock_guard lock(mutex_);
  resolved_[endpoint] = Resolved{addresses, now};
  return addresses;
}

void UpstreamClient::Impl::Finished(Shard& shard,
                                    std::list<std::shared_ptr<Exchange>>::iterator registration,
                                    Shard::IdleList* idle, std::unique_ptr<Connection> connection) {
  std::unique_ptr<Connection> surplus;
  std::shared_ptr<Exchange> unregistered;  // released outside the lock
  {
    std::lock_guard lock(shard.mutex);
    unregistered = std::move(*registration);
    shard.in_flight.erase(registration);
    shard.in_flight_count.store(shard.in_flight.size(), std::memory_order_relaxed);
    if (connection && idle != nullptr && !closing_.load(std::memory_order_relaxed)) {
      if (idle->size() < options_.max_idle_per_endpoint) {
        idle->push_back(std::move(connection));
      } else {
        surplus = std::move(connection);
      }
    }
  }
  if (closing_.load()) {
    // Shutdown checks every shard under mutex_ and then waits: taking mutex_ here, after
    // this shard's change, means the signal cannot fall between its check and its wait.
    { std::lock_guard lock(mutex_); }
    exchange_ended_.notify_all();
  }
}

UpstreamClient::UpstreamClient(UpstreamOptions options)
    : impl_(std::make_shared<Impl>(std::move(options))) {}

UpstreamClient::~UpstreamClient() { impl_->Shutdown(); }

namespace {

// UpstreamCallbacks as an UpstreamHandler; a missing callback is skipped (without on_data
// the body is read and dropped).
class CallbacksHandler final : public UpstreamHandler {
 public:
  explicit CallbacksHandler(UpstreamCallbacks callbacks) : callbacks_(std::move(callbacks)) {}

  void OnHead(ResponseHead head) override {
    if (callbacks_.on_head) callbacks_.on_head(std::move(head));
  }
  void OnData(std::string_view data, std::function<void()> resume) override {
    if (callbacks_.on_data) {
      callbacks_.on_data(data, std::move(resume));
    } else {
      resume();
    }
  }
  void OnDone(const UpstreamResult& result) override {
    if (callbacks_.on_done) callbacks_.on_done(result);
  }

 private:
  UpstreamCallbacks callbacks_;
};

}  // namespace

std::shared_ptr<UpstreamExchange> UpstreamClient::Send(const Endpoint& endpoint,
                                                       const HttpRequest& request,
                                                       std::shared_ptr<UpstreamHandler> handler) {
  if (handler == nullptr) handler = std::make_shared<CallbacksHandler>(UpstreamCallbacks{});
  return impl_->Send(endpoint, request, std::move(handler));
}

void UpstreamClient::AbandonWaiting(const Endpoint& endpoint, const base::Status& why) {
  impl_->AbandonWaiting(endpoint, why);
}

std::shared_ptr<UpstreamExchange> UpstreamClient::Send(const Endpoint& endpoint,
                                                       const HttpRequest& request,
                                                       UpstreamCallbacks callbacks) {
  return Send(endpoint, request,
              std::make_shared<CallbacksHandler>(std::move(callbacks)));
}

}  // namespace supercluster::net
