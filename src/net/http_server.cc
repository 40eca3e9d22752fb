// The HTTP/1.1 server: accept loops, one Connection per socket (templated on plain or TLS
// stream), and the Responder handlers use to answer. See http_server.h for the model.
//
// A connection moves through these states, all on its executor (a strand, or the single io
// thread):
//   kHandshake -> kIdle -> kReading -> kHandling -> (kIdle again | kClosing) -> kClosed
// At most one read and one write are outstanding at any time. While a handler works on a
// request (kHandling) the connection keeps one read open, so it notices a client that goes
// away and can tell the handler (OnClose) to cancel upstream work.
#include "net/http_server.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/container/devector.hpp>
#include <boost/container/static_vector.hpp>
#include <condition_variable>
#include <future>
#include <mutex>
#include <optional>
#include <charconv>
#include <cstring>
#include <thread>
#include <unordered_map>

#include "base/coarse_clock.h"
#include "base/logging.h"
#include "net/busy_poll.h"
#include "net/byte_scan.h"
#include "net/earliest_timer.h"
#include "net/http_parse.h"
#include "net/io_thread.h"
#include "net/socket_address.h"
#include "net/tls_context.h"

namespace supercluster::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using internal::Protocol;
using Socket = Protocol::socket;
using TlsSocket = ssl::stream<Socket>;
using Clock = std::chrono::steady_clock;
using base::CoarseNow;

namespace {

// How long a connection that is closing after its last response keeps reading (and
// discarding) what the client still sends, so the client sees the response instead of a
// reset; and how much it reads at most.
constexpr std::chrono::milliseconds kLingerTime{1000};
constexpr size_t kLingerBytes = 1 << 20;
constexpr size_t kReadChunk = 4096;
// The most queued writes sent with one gathered write (one system call).
constexpr size_t kMaxGatheredWrites = 8;
// How often the server looks for requests still being handled, and starts watching their
// connections for the client going away (a read that sees the close). Watching every
// request at once cost a system call per request that nearly always failed with EAGAIN
// (a proxied request: the client waits for its answer and sends nothing), about one in
// five of a router's system calls. Now a request answered within this interval is never
// watched, and a client that goes away is noticed within one to two intervals.
constexpr std::chrono::milliseconds kClientWatchInterval{50};

constexpr std::string_view kBusyBody =
    R"({"error":{"message":"server connection limit","type":"too_many_connections"}})";
// Written straight to a connection that is not served at all, so no response is built.
const std::string& BusyResponse() {
  static const std::string response =
      "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
      "Content-Length: " + std::to_string(kBusyBody.size()) +
      "\r\nConnection: close\r\nRetry-After: 1\r\n\r\n" + std::string(kBusyBody);
  return response;
}

// The `type` of the JSON error body (HttpResponse::JsonError) for each status the server
// answers by itself, when a request cannot be read or is not acceptable.
std::string_view ErrorTypeOf(int status) {
  switch (status) {
    case 400: return "bad_request";
    case 408: return "request_timeout";
    case 413: return "request_too_large";
    case 431: return "headers_too_large";
    case 501: return "not_implemented";
    default: return "error";
  }
}

// Methods become metric labels, so arbitrary method strings from clients collapse to one.
std::string MethodLabel(std::string_view method) {
  static constexpr std::string_view kKnown[] = {"GET", "HEAD", "POST", "PUT",
                                                "DELETE", "PATCH", "OPTIONS"};
  for (std::string_view known : kKnown) {
    if (method == known) return std::string(method);
  }
  return "OTHER";
}

// Header values come from handlers that may echo client data; a CR or LF would let that
// data inject headers, so they are replaced (NUL too), in [first, last).
void ReplaceUnsafeHeaderBytes(char* first, char* last) {
  const std::string_view text(first, static_cast<size_t>(last - first));
  for (size_t at = internal::FindLineBreakOrNul(text); at != std::string_view::npos;
       at = internal::FindLineBreakOrNul(text, at + 1)) {
    first[at] = ' ';
  }
}

// Builds the status line and header section in one string. A Beast message
// printed through an ostringstream took 4.5 % of the server's CPU in a perf profile of
// bench/http (docs/performance.md), mostly locale set-up.
// `room_after` is how many bytes the caller will append (a small body), so that the whole
// answer fits the one allocation.
std::string SerializeHead(int status, int version, const Headers& headers,
                          bool keep_alive, std::optional<uint64_t> content_length,
                          bool chunked, size_t room_after = 0) {
  using namespace std::string_view_literals;
  char status_digits[16];
  std::string_view status_text(
      status_digits,
      static_cast<size_t>(std::to_chars(status_digits, status_digits + sizeof(status_digits),
                                        status).ptr - status_digits));
  char length_digits[24];
  std::string_view length_text;
  if (content_length) {
    length_text = std::string_view(
        length_digits,
        static_cast<size_t>(std::to_chars(length_digits, length_digits + sizeof(length_digits),
                                          *content_length).ptr - length_digits));
  }
  std::string_view connection_line;
  if (version == 11 && !keep_alive) connection_line = "Connection: close\r\n"sv;
  if (version == 10 && keep_alive) connection_line = "Connection: keep-alive\r\n"sv;
  const std::string_view chunked_line = chunked ? "Transfer-Encoding: chunked\r\n"sv : ""sv;
  const std::string_view reason = StatusReason(status);

  // The exact size of every fixed piece plus every field (some are dropped below), so that
  // the pieces are copied into one buffer without a capacity check each.
  size_t bound = "HTTP/1.1 "sv.size() + status_text.size() + 1 + reason.size() + 2 +
                 connection_line.size() + chunked_line.size() + "\r\n"sv.size();
  if (content_length) bound += "Content-Length: "sv.size() + length_text.size() + 2;
  for (auto [name, value] : headers) bound += name.size() + value.size() + 4;
  std::string out;
  out.reserve(bound + room_after);
  out.resize(bound);
  internal::PieceWriter writer(out.data());
  writer.Put(version == 10 ? "HTTP/1.0 "sv : "HTTP/1.1 "sv);
  writer.Put(status_text);
  writer.Put(" "sv);
  writer.Put(reason);
  writer.Put("\r\n"sv);
  for (size_t i = 0; i < headers.size(); ++i) {
    const auto [name, value] = headers[i];
    // Header names must be tokens; a handler's header with any other byte in its name is
    // dropped rather than sent malformed. A parsed field was checked when it was parsed.
    const bool checked = headers.checked(i);
    if ((!headers.name_checked(i) && !internal::IsToken(name)) ||
        EqualsLowerIgnoreCase(name, "content-length") ||
        EqualsLowerIgnoreCase(name, "transfer-encoding") ||
        EqualsLowerIgnoreCase(name, "connection")) {
      continue;  // framing is the server's job
    }
    writer.Put(name);
    writer.Put(": "sv);
    char* value_start = writer.at();
    writer.Put(value);
    if (!checked) ReplaceUnsafeHeaderBytes(value_start, writer.at());
    writer.Put("\r\n"sv);
  }
  writer.Put(connection_line);
  writer.Put(chunked_line);
  if (content_length) {
    writer.Put("Content-Length: "sv);
    writer.Put(length_text);
    writer.Put("\r\n"sv);
  }
  writer.Put("\r\n"sv);
  out.resize(static_cast<size_t>(writer.at() - out.data()));
  return out;
}

bool StatusHasNoBody(int status) { return status < 200 || status == 204 || status == 304; }

}  // namespace

// State the server and its connections share. Connections hold it by shared_ptr, so it
// outlives the server object if a handler keeps a Responder alive.
struct ServerShared {
  ServerOptions options;
  std::shared_ptr<const HttpRouter> router;
  std::atomic<bool> draining{false};
  std::atomic<size_t> open_connections{0};

  std::mutex mutex;
  std::condition_variable connections_changed;
};

class ConnectionBase {
 public:
  virtual ~ConnectionBase() = default;
  virtual void BeginDrain() = 0;
  virtual void ForceClose() = 0;
  // Starts watching for the client going away if the request being handled asked for it
  // (see kClientWatchInterval). Any thread.
  virtual void StartClientWatchIfWanted() = 0;
};

template <class Stream>
class Connection;

template <class Stream>
class ResponderImpl final : public Responder {
 public:
  ResponderImpl(std::shared_ptr<Connection<Stream>> connection, uint64_t sequence)
      : connection_(std::move(connection)), sequence_(sequence) {}
  ~ResponderImpl() override;

  void Send(HttpResponse response) override;
  void StartStream(int status, Headers headers) override;
  void Write(std::string chunk, std::function<void(base::Status)> on_written) override;
  void Finish() override;
  bool Closed() const override;
  void OnClose(std::function<void()> callback) override;

 private:
  std::shared_ptr<Connection<Stream>> connection_;
  const uint64_t sequence_;
  std::atomic<bool> used_{false};
  std::atomic<bool> streaming_{false};
  std::atomic<bool> finished_{false};
};

template <class Stream>
class Connection final : public ConnectionBase,
                         public std::enable_shared_from_this<Connection<Stream>> {
 public:
  static constexpr bool kIsTls = std::is_same_v<Stream, TlsSocket>;

  Connection(std::shared_ptr<asio::io_context> io_context, std::shared_ptr<ServerShared> shared,
              Stream stream, std::string peer)
      : io_context_(std::move(io_context)),
        shared_(std::move(shared)),
        stream_(std::move(stream)),
        executor_(stream_.get_executor()),
        deadline_timer_(executor_),
        peer_(std::move(peer)) {
    shared_->open_connections.fetch_add(1);
    if (shared_->options.observer) shared_->options.observer->OnConnectionOpened();
  }

  // A connection is normally released by Close(); one destroyed without closing (the
  // io_context went away first) still gives its slot back, but no longer tells the
  // observer, which may be gone by then.
  ~Connection() override {
    if (!slot_released_) ReleaseSlot(/*notify_observer=*/false);
  }

  void Start() {
    asio::dispatch(executor_, [self = this->shared_from_this()] {
      if constexpr (kIsTls) {
        self->Handshake();
      } else {
        self->WaitForRequest();
      }
    });
  }

  void BeginDrain() override {
    asio::dispatch(executor_, [self = this->shared_from_this()] {
      if (self->state_ == State::kIdle) {
        self->Close();
      } else {
        self->keep_alive_ = false;
      }
    });
  }

  void ForceClose() override {
    asio::dispatch(executor_, [self = this->shared_from_this()] { self->Close(); });
  }

  void StartClientWatchIfWanted() override {
    if (!client_watch_wanted_.load(std::memory_order_relaxed)) return;
    asio::post(executor_, [self = this->shared_from_this()] {
      if (!self->client_watch_wanted_.exchange(false)) return;
      if (self->state_ == State::kHandling && !self->read_pending_ && self->buffer_.size() == 0) {
        self->ReadSome();
      }
    });
  }

  bool closed() const { return closed_.load(); }
  const asio::any_io_executor& executor() const { return executor_; }

  // Whether this is the one io thread the connection runs on: a step may then run right
  // here, which is what asio::dispatch would do too, without the type-erased executor's
  // machinery (a visible cost once per response).
  bool OnOwnThread() const {
    const auto* plain = executor_.template target<asio::io_context::executor_type>();
    return plain != nullptr && plain->running_in_this_thread();
  }

  // Runs `step(*this)` on the connection's executor: right here when OnOwnThread(), else
  // dispatched with a reference to the connection that keeps it alive until then. The
  // reference is made only for that (making and dropping one is a locked read-modify-write
  // each, which the usual call, on the connection's own thread, does without).
  template <class Step>
  void Run(Step&& step) {
    if (OnOwnThread()) {
      step(*this);
    } else {
      asio::dispatch(executor_, [self = this->shared_from_this(),
                                 step = std::forward<Step>(step)]() mutable { step(*self); });
    }
  }

  // --- Called by ResponderImpl, always on the connection's executor. ---

  void SendResponse(uint64_t sequence, HttpResponse&& response) {
    if (!IsCurrent(sequence) || responded_) return;
    responded_ = true;
    response_status_ = response.status;
    std::optional<uint64_t> length;
    if (!StatusHasNoBody(response.status)) length = response.body.size();
    const bool with_body = !head_request_ && length;
    std::string bytes = SerializeHead(response.status, http_version_, response.headers,
                                      keep_alive_, length, /*chunked=*/false,
                                      with_body ? response.body.size() : 0);
    if (with_body) bytes += response.body;
    QueueWrite(std::move(bytes), {}, /*last=*/true);
  }

  void StartStream(uint64_t sequence, int status, const Headers& headers) {
    if (!IsCurrent(sequence) || responded_) return;
    responded_ = true;
    streaming_ = true;
    response_status_ = status;
    // A 1xx, 204 or 304 has no body, whatever the handler (a proxy passing one on) streams:
    // the head goes alone, as for HEAD, and a chunk after it would be read by the client
    // as the start of the next response.
    bodiless_ = head_request_ || StatusHasNoBody(status);
    // HTTP/1.0 has no chunked encoding: the body runs until the connection closes.
    if (http_version_ == 10 && !bodiless_) keep_alive_ = false;
    bool chunked = http_version_ == 11 && !bodiless_;
    QueueWrite(SerializeHead(status, http_version_, headers, keep_alive_, std::nullopt, chunked),
               {}, /*last=*/bodiless_);
  }

  void WriteChunk(uint64_t sequence, std::string data,
                  std::function<void(base::Status)> on_written) {
    auto fail = [&](base::Status status) {
      if (on_written) on_written(std::move(status));
    };
    if (!IsCurrent(sequence) || closed()) {
      fail(base::Cancelled("the stream is closed"));
      return;
    }
    if (bodiless_) {  // nothing to write, and not the handler's fault (see StartStream)
      fail(base::Status::Ok());
      return;
    }
    if (!streaming_ || finish_requested_) {
      fail(base::FailedPrecondition("Write() outside a started, unfinished stream"));
      return;
    }
    if (data.empty()) {  // an empty chunk would end the stream
      fail(base::Status::Ok());
      return;
    }
    std::string framed;
    if (http_version_ == 11) {
      char size[20];
      auto end = std::to_chars(size, size + sizeof(size), data.size(), 16).ptr;
      framed.reserve(static_cast<size_t>(end - size) + data.size() + 4);
      framed.append(size, end).append("\r\n").append(data).append("\r\n");
    } else {
      framed = std::move(data);
    }
    if (queued_bytes_ + framed.size() > shared_->options.max_stream_buffer_bytes) {
      fail(base::ResourceExhausted("stream aborted: more than " +
                                   std::to_string(shared_->options.max_stream_buffer_bytes) +
                                   " bytes queued for a client that is not reading"));
      spdlog::debug("http: {}: aborting stream, client not reading", peer_);
      Close();
      return;
    }
    QueueWrite(std::move(framed), std::move(on_written), /*last=*/false);
  }

  void FinishStream(uint64_t sequence) {
    if (!IsCurrent(sequence) || !streaming_ || finish_requested_ || bodiless_) return;
    finish_requested_ = true;
    QueueWrite(http_version_ == 11 ? "0\r\n\r\n" : "", {}, /*last=*/true);
  }

  void AbortStream(uint64_t sequence) {
    if (!IsCurrent(sequence)) return;
    if (flush_posted_ && !write_pending_) {
      // What the handler queued before it dropped the stream has not gone out yet (see
      // QueueWrite): it goes out first, as it would have without the wait, and the
      // connection closes after it, leaving the response cut short.
      close_after_write_ = true;
      return;
    }
    Close();
  }

  void AddCloseCallback(uint64_t sequence, std::function<void()> callback) {
    if (!IsCurrent(sequence) || closed()) {
      callback();
      return;
    }
    close_callbacks_.push_back(std::move(callback));
  }

 private:
  enum class State { kHandshake, kIdle, kReading, kHandling, kClosing, kClosed };

  struct PendingWrite {
    std::string bytes;
    std::function<void(base::Status)> on_written;
    bool last;
  };

  bool IsCurrent(uint64_t sequence) const {
    return sequence == sequence_ && state_ == State::kHandling;
  }

  auto& Lowest() { return beast::get_lowest_layer(stream_); }

  // --- Deadlines ---
  //
  // A connection has a read deadline (idle, request, handshake or linger time) and a write
  // deadline, and one EarliestTimer serves both: setting or clearing a deadline stores a
  // time and touches the timer only when it would fire too late. When it fires, the
  // deadlines that have passed are handled and it is set for the earliest one left.

  void SetReadDeadline(std::chrono::milliseconds timeout) {
    read_deadline_ = CoarseNow() + timeout;
    EnsureTimerBy(read_deadline_);
  }
  void ClearReadDeadline() { read_deadline_ = Clock::time_point::max(); }

  void SetWriteDeadline() {
    write_deadline_ = CoarseNow() + shared_->options.write_timeout;
    EnsureTimerBy(write_deadline_);
  }
  void ClearWriteDeadline() { write_deadline_ = Clock::time_point::max(); }

  void EnsureTimerBy(Clock::time_point deadline) {
    // Twice per request, and nearly always the timer is armed early enough already: asked
    // first, so that the call does not make and drop a reference to this connection.
    if (deadline_timer_.FiresBy(deadline)) return;
    deadline_timer_.FireBy(deadline, [self = this->shared_from_this()] { self->OnDeadlineTimer(); });
  }

  void OnDeadlineTimer() {
    if (state_ == State::kClosed) return;
    Clock::time_point now = Clock::now();
    if (write_deadline_ <= now) {
      spdlog::debug("http: {}: write timeout", peer_);
      Close();
      return;
    }
    if (read_deadline_ <= now) {
      ClearReadDeadline();
      OnReadTimeout();
      if (state_ == State::kClosed) return;
    }
    Clock::time_point next = std::min(read_deadline_, write_deadline_);
    if (next != Clock::time_point::max()) EnsureTimerBy(next);
  }

  void OnReadTimeout() {
    switch (state_) {
      case State::kReading:
        read_timed_out_ = true;
        Lowest().cancel();  // the pending read completes with operation_aborted
        break;
      case State::kHandshake:
      case State::kIdle:
      case State::kClosing:
        Close();
        break;
      case State::kHandling:
      case State::kClosed:
        break;
    }
  }

  // --- Reading ---

  void Handshake() {
    if constexpr (kIsTls) {
      state_ = State::kHandshake;
      SetReadDeadline(shared_->options.read_timeout);
      stream_.async_handshake(ssl::stream_base::server,
                              [self = this->shared_from_this()](boost::system::error_code error) {
                                if (self->state_ == State::kClosed) return;
                                self->ClearReadDeadline();
                                if (error) {
                                  spdlog::debug("http: {}: TLS handshake failed: {}", self->peer_,
                                                error.message());
                                  self->Close();
                                  return;
                                }
                                self->WaitForRequest();
                              });
    }
  }

  void WaitForRequest() {
    state_ = State::kIdle;
    client_watch_wanted_.store(false, std::memory_order_relaxed);
    if (shared_->draining.load() || !keep_alive_) {
      Close();
      return;
    }
    if (read_pending_) {  // the watch read from the last request is still open
      SetReadDeadline(shared_->options.idle_timeout);
      return;
    }
    if (buffer_.size() > 0) {  // a pipelined request arrived while the last one ran
      ReadRequest();
      return;
    }
    SetReadDeadline(shared_->options.idle_timeout);
    ReadSomeSoon();
  }

  // Reads whatever arrives next into buffer_. Asio tries the read at once and waits for
  // readability only when nothing is there (no system call beyond that first read).
  void ReadSome() {
    read_pending_ = true;
    stream_.async_read_some(
        buffer_.prepare(kReadChunk),
        [self = this->shared_from_this()](boost::system::error_code error, size_t bytes) {
          self->read_pending_ = false;
          self->buffer_.commit(bytes);
          self->OnReadSome(error);
        });
  }

  // ReadSome, started only after the io thread has looked for new events once more. The
  // next request of a keep-alive client (or its going away) cannot be there yet when its
  // answer has only just been written, so reading at once would nearly always fail with
  // EAGAIN: one wasted system call per request. (Waiting for readability instead costs
  // the same: asio re-registers the socket with epoll_ctl for every such wait.) Under load
  // the io thread has other connections to serve first, and by the time the deferred read
  // runs the next request has often arrived, so it succeeds at once. The only open
  // connection reads at once: deferring would only add a poll of epoll before the thread
  // sleeps.
  //
  // A connection that has not read anything yet has no read buffer, and an idle one should
  // not get one: its first read waits for readability before the buffer is made (so 10,000
  // idle connections do not hold 4 KiB each). TLS keeps its own buffers and always reads.
  void ReadSomeSoon() {
    read_pending_ = true;
    if (!kIsTls && buffer_.capacity() == 0) {
      Lowest().async_wait(asio::socket_base::wait_read,
                         [self = this->shared_from_this()](boost::system::error_code error) {
                           if (error) {
                             self->read_pending_ = false;
                             self->OnReadSome(error);
                             return;
                           }
                           self->ReadSome();
                         });
      return;
    }
    if (shared_->open_connections.load(std::memory_order_relaxed) == 1) {
      ReadSome();
      return;
    }
    asio::post(executor_, [self = this->shared_from_this()] {
      if (self->state_ == State::kClosed) {
        self->read_pending_ = false;
        return;
      }
      self->ReadSome();
    });
  }

  void OnReadSome(boost::system::error_code error) {
    switch (state_) {
      case State::kIdle:
        if (error) {
          Close();
        } else {
          ReadRequest();
        }
        return;
      case State::kHandling:
        // Data here is the start of a pipelined request: keep it for later and stop
        // watching; an error means the client went away mid-request. But a write in flight
        // may already have delivered the whole answer (curl closes the moment it has read
        // it, possibly before our write completion runs), so let that write decide.
        if (error) {
          if (write_pending_) {
            client_closed_ = true;
          } else {
            ClientGone();
          }
        }
        return;
      case State::kClosing:
        lingered_bytes_ += buffer_.size();
        buffer_.consume(buffer_.size());
        if (error || lingered_bytes_ > kLingerBytes) {
          Close();
        } else {
          ReadSome();
        }
        return;
      case State::kReading:
        if (error) {
          OnReadError(error);
        } else if (parser_->is_header_done()) {
          ParseChunkedBody();  // only a chunked body is read with ReadSome
        } else {
          ReadHeaderSection();
        }
        return;
      case State::kHandshake:
      case State::kClosed:
        return;
    }
  }

  void ReadRequest() {
    state_ = State::kReading;
    read_timed_out_ = false;
    parser_.emplace(shared_->options.max_header_bytes, shared_->options.max_body_bytes);
    SetReadDeadline(shared_->options.read_timeout);
    ReadHeaderSection();
  }

  // Reads until the buffer holds the whole header section (see ScanHeaderSection for why
  // the server does this rather than Beast's async_read_header), then parses it at once.
  // The usual request is plain and came whole in one read: the fast path parses it first,
  // checking the section's size and line ends itself, without the scan for the section's
  // end. It is tried once on what each read brought; the rest goes the long way.
  void ReadHeaderSection() {
    std::string_view received(static_cast<const char*>(buffer_.data().data()), buffer_.size());
    if (size_t used = parser_->ParseWhole(received); used > 0) {
      buffer_.consume(used);
      OnHeader({});
      return;
    }
    switch (internal::ScanHeaderSection(received, shared_->options.max_header_bytes)) {
      case internal::HeaderScan::kTooLarge:
        SendErrorAndClose(431, "header section over " +
                                   std::to_string(shared_->options.max_header_bytes) + " bytes");
        return;
      case internal::HeaderScan::kComplete:
        ParseHeaderSection();
        return;
      case internal::HeaderScan::kNeedMore:
        break;
    }
    ReadSome();  // OnReadSome continues with ReadHeaderSection
  }

  // The whole section is here and the fast path did not take it: Beast's parser.
  void ParseHeaderSection() {
    boost::system::error_code error;
    size_t used = parser_->put(buffer_.data(), error);
    buffer_.consume(used);
    if (error == http::error::need_more) error = {};
    if (!error && !parser_->is_header_done()) error = http::error::partial_message;
    OnHeader(error);
  }

  void OnHeader(boost::system::error_code error) {
    if (state_ != State::kReading) return;
    if (error) {
      OnReadError(error);
      return;
    }
    std::string reason;
    if (int status = parser_->Validate(&reason); status != 0) {
      SendErrorAndClose(status, reason);
      return;
    }
    if (parser_->expects_continue() && !parser_->complete()) {
      QueueInterimContinue();
      return;
    }
    ReadBody();
  }

  // Tells a client that waits before sending its body (Expect: 100-continue) to go on.
  void QueueInterimContinue() {
    auto bytes = std::make_shared<std::string>("HTTP/1.1 100 Continue\r\n\r\n");
    SetWriteDeadline();
    asio::async_write(stream_, asio::buffer(*bytes),
                      [self = this->shared_from_this(), bytes](boost::system::error_code error,
                                                               size_t) {
                        self->ClearWriteDeadline();
                        if (self->state_ != State::kReading) return;
                        if (error) {
                          self->Close();
                          return;
                        }
                        self->ReadBody();
                      });
  }

  void ReadBody() {
    if (parser_->complete()) {
      OnRequestComplete();
      return;
    }
    if (parser_->chunked()) {
      ParseChunkedBody();
      return;
    }
    read_pending_ = true;
    http::async_read(stream_, buffer_, *parser_,
                     [self = this->shared_from_this()](boost::system::error_code error, size_t) {
                       self->read_pending_ = false;
                       if (self->state_ != State::kReading) return;
                       if (error) {
                         self->OnReadError(error);
                       } else {
                         self->OnRequestComplete();
                       }
                     });
  }

  // A chunked body is parsed here a read at a time, not by Beast's async_read, so that
  // what the parser leaves waiting for a line's end is checked after every read (see
  // ChunkedRemainderMayComplete: Beast would wait for it without a limit, and for ever on
  // a bare LF).
  void ParseChunkedBody() {
    if (buffer_.size() > 0) {
      boost::system::error_code error;
      buffer_.consume(parser_->put(buffer_.data(), error));
      if (error && error != http::error::need_more) {
        OnReadError(error);
        return;
      }
      if (parser_->is_done()) {
        OnRequestComplete();
        return;
      }
      std::string_view unparsed(static_cast<const char*>(buffer_.data().data()), buffer_.size());
      std::string reason;
      if (!internal::ChunkedRemainderMayComplete(unparsed, shared_->options.max_header_bytes,
                                                 &reason)) {
        SendErrorAndClose(400, reason);
        return;
      }
    }
    ReadSome();  // OnReadSome continues with ParseChunkedBody
  }

  void OnReadError(boost::system::error_code error) {
    if (read_timed_out_) {
      spdlog::debug("http: {}: request not complete within the read timeout", peer_);
      SendErrorAndClose(408, "request not received within the read timeout");
      return;
    }
    // A chunked body cut short by the end of the stream is answered 400, as Beast's
    // async_read answers any other body (ParseChunkedBody reads without it).
    if (error == asio::error::eof && parser_ && parser_->is_header_done()) {
      error = http::error::partial_message;
    }
    if (error.category() == http::make_error_code(http::error::end_of_stream).category() &&
        error != http::error::end_of_stream) {
      SendErrorAndClose(internal::StatusForParseError(error), error.message());
      return;
    }
    Close();  // the client closed or the socket failed: nobody to answer
  }

  void OnRequestComplete() {
    ClearReadDeadline();
    state_ = State::kHandling;
    ++sequence_;
    keep_alive_ = parser_->KeepAlive() && !shared_->draining.load();
    http_version_ = parser_->version() == 10 ? 10 : 11;
    head_request_ = parser_->is_head();
    responded_ = streaming_ = finish_requested_ = bodiless_ = false;
    response_status_ = 0;
    close_callbacks_.clear();
    HttpRequest request = parser_->TakeRequest();
    parser_.reset();
    request.remote_address = peer_;
    method_label_ = MethodLabel(request.method);
    route_label_ = shared_->router->RouteOf(request);
    request_start_ = Clock::now();

    // Watch for the client going away if the handler takes a while (kClientWatchInterval).
    if (!read_pending_ && buffer_.size() == 0) {
      client_watch_wanted_.store(true, std::memory_order_relaxed);
    }

    auto responder = std::make_shared<ResponderImpl<Stream>>(this->shared_from_this(), sequence_);
    try {
      shared_->router->Dispatch(std::move(request), responder);
    } catch (const std::exception& exception) {
      spdlog::error("http: handler for {} threw: {}", route_label_, exception.what());
      responder->Send(HttpResponse::JsonError(500, "internal error", "internal_error"));
    }
  }

  void SendErrorAndClose(int status, const std::string& reason) {
    state_ = State::kHandling;
    ++sequence_;
    keep_alive_ = false;
    head_request_ = false;
    streaming_ = finish_requested_ = bodiless_ = false;
    responded_ = false;
    method_label_ = "OTHER";
    route_label_ = "other";
    request_start_ = Clock::now();
    parser_.reset();
    SendResponse(sequence_, HttpResponse::JsonError(status, reason, ErrorTypeOf(status)));
  }

  // --- Writing ---

  void QueueWrite(std::string bytes, std::function<void(base::Status)> on_written, bool last) {
    queued_bytes_ += bytes.size();
    queue_.push_back({std::move(bytes), std::move(on_written), last});
    if (write_pending_ || flush_posted_) return;
    if (last) {
      WriteNext();  // nothing of this response can follow
      return;
    }
    // A stream's head or chunk waits until the io thread has finished what it is doing: a
    // proxy queues a small answer's head, body and end back to back from one handler, and
    // they then leave in one write, one system call and one wake-up of the client instead
    // of three. Posted to the io_context, not the strand: the Responder dispatches into a
    // free strand inline, so a strand post would run before the proxy queued the rest.
    flush_posted_ = true;
    asio::post(*io_context_, [self = this->shared_from_this()] {
      asio::dispatch(self->executor_, [self] {
        self->flush_posted_ = false;
        if (self->state_ != State::kClosed && !self->write_pending_ && !self->queue_.empty()) {
          self->WriteNext();
        }
      });
    });
  }

  // Writes the first queued writes (up to kMaxGatheredWrites) in one gathered write.
  void WriteNext() {
    if (SentWholeResponseAtOnce()) return;
    write_pending_ = true;
    SetWriteDeadline();
    writing_count_ = std::min(queue_.size(), kMaxGatheredWrites);
    if (writing_count_ == 1) {  // the common case, without the gathering machinery
      asio::async_write(stream_, asio::buffer(queue_.front().bytes),
                        [self = this->shared_from_this()](boost::system::error_code error, size_t) {
                          self->OnWritten(error);
                        });
      return;
    }
    // A fixed array (unused entries empty) keeps the buffer sequence free of allocation.
    std::array<asio::const_buffer, kMaxGatheredWrites> buffers;
    for (size_t i = 0; i < writing_count_; ++i) buffers[i] = asio::buffer(queue_[i].bytes);
    asio::async_write(stream_, buffers,
                      [self = this->shared_from_this()](boost::system::error_code error, size_t) {
                        self->OnWritten(error);
                      });
  }

  // A whole response (one write, the last, that nobody waits on) is first offered to the
  // kernel directly, without blocking: on loopback or a LAN it nearly always goes at once,
  // and the response is then done without asio's round trip (an operation allocated, the
  // socket's reactor state locked, a completion posted and run later: 9 % of `serve`'s
  // instructions per request). Not what remains of a partial send, not TLS, and not when
  // a pipelined request is waiting in the buffer: finishing inline starts the next request
  // at once, and its handler would then run inside this one's call to Send.
  // Returns whether the response went whole; otherwise the bytes not sent are left queued.
  bool SentWholeResponseAtOnce() {
    if constexpr (kIsTls) {
      return false;
    } else {
      if (queue_.size() != 1 || !queue_.front().last || queue_.front().on_written ||
          buffer_.size() > 0) {
        return false;
      }
      std::string& bytes = queue_.front().bytes;
      ssize_t sent = ::send(Lowest().native_handle(), bytes.data(), bytes.size(),
                            MSG_DONTWAIT | MSG_NOSIGNAL);
      if (sent <= 0) return false;  // EAGAIN, or an error the asio write reports as usual
      if (static_cast<size_t>(sent) < bytes.size()) {
        bytes.erase(0, static_cast<size_t>(sent));
        queued_bytes_ -= static_cast<size_t>(sent);
        return false;
      }
      writing_count_ = 1;
      OnWritten({});
      return true;
    }
  }

  void OnWritten(boost::system::error_code error) {
    write_pending_ = false;
    ClearWriteDeadline();
    if (state_ == State::kClosed) return;  // Close() already failed the queue
    if (error) {
      ClientGone();
      return;
    }
    // Taken off the queue before any callback runs, so that a callback that closes the
    // connection does not fail writes that were already sent.
    // (A static_vector constructs only the writes taken: usually one, not eight.)
    boost::container::static_vector<PendingWrite, kMaxGatheredWrites> written;
    const size_t count = writing_count_;
    for (size_t i = 0; i < count; ++i) {
      written.push_back(std::move(queue_.front()));
      queue_.pop_front();
      queued_bytes_ -= written[i].bytes.size();
    }
    // Back to the start of its storage (kept): the next response's write then goes in
    // without the devector first moving its (no) elements there.
    if (queue_.empty()) queue_.clear();
    for (size_t i = 0; i < count; ++i) {
      if (written[i].on_written) written[i].on_written(base::Status::Ok());
      if (state_ == State::kClosed) return;  // the callback may have aborted the stream
    }
    if (close_after_write_) {
      Close();
      return;
    }
    // Only a response's final write is `last`, and nothing is queued after it.
    if (written[count - 1].last) {
      OnResponseDone();
      return;
    }
    if (client_closed_ && queue_.empty()) {
      ClientGone();  // the stream was not finished and nobody is left to read the rest
      return;
    }
    // The callback may have written more, which already started the next write.
    if (!queue_.empty() && !write_pending_) WriteNext();
  }

  void OnResponseDone() {
    ReportRequest(response_status_);
    close_callbacks_.clear();
    if (client_closed_) {
      Close();
      return;
    }
    if (!keep_alive_ || shared_->draining.load()) {
      LingerThenClose();
      return;
    }
    WaitForRequest();
  }

  void ReportRequest(int status) {
    if (shared_->options.observer) {
      shared_->options.observer->OnRequestDone(method_label_, route_label_, status,
                                               Clock::now() - request_start_);
    }
  }

  // --- Closing ---

  // After a response with Connection: close: send FIN, then read and discard what the
  // client still sends for a moment, so it reads our answer rather than a reset.
  void LingerThenClose() {
    state_ = State::kClosing;
    boost::system::error_code ignored;
    Lowest().shutdown(asio::socket_base::shutdown_send, ignored);
    lingered_bytes_ = 0;
    buffer_.consume(buffer_.size());
    SetReadDeadline(kLingerTime);
    if (!read_pending_) ReadSome();
  }

  void ClientGone() {
    if (state_ == State::kHandling) ReportRequest(499);
    Close();
  }

  void ReleaseSlot(bool notify_observer) {
    slot_released_ = true;
    if (notify_observer && shared_->options.observer) {
      shared_->options.observer->OnConnectionClosed();
    }
    {
      std::lock_guard lock(shared_->mutex);
      shared_->open_connections.fetch_sub(1);
    }
    shared_->connections_changed.notify_all();
  }

  void Close() {
    if (state_ == State::kClosed) return;
    bool response_incomplete = state_ == State::kHandling;
    state_ = State::kClosed;
    closed_.store(true);
    client_watch_wanted_.store(false, std::memory_order_relaxed);
    ReleaseSlot(/*notify_observer=*/true);
    ClearReadDeadline();
    ClearWriteDeadline();
    deadline_timer_.Cancel();
    boost::system::error_code ignored;
    Lowest().close(ignored);
    boost::container::devector<PendingWrite> failed = std::move(queue_);
    queue_.clear();
    queued_bytes_ = 0;
    for (PendingWrite& write : failed) {
      if (write.on_written) write.on_written(base::Cancelled("connection closed"));
    }
    std::vector<std::function<void()>> callbacks = std::move(close_callbacks_);
    close_callbacks_.clear();
    if (response_incomplete) {
      for (auto& callback : callbacks) callback();
    }
  }

  // Declared first so it is destroyed last: the socket and timers below need it. Holding
  // it lets a Responder kept by a handler thread outlive the HttpServer safely.
  std::shared_ptr<asio::io_context> io_context_;
  std::shared_ptr<ServerShared> shared_;
  Stream stream_;
  asio::any_io_executor executor_;
  internal::EarliestTimer deadline_timer_;
  Clock::time_point read_deadline_ = Clock::time_point::max();
  Clock::time_point write_deadline_ = Clock::time_point::max();
  const std::string peer_;

  State state_ = State::kIdle;
  std::atomic<bool> closed_{false};
  // Set while a request is handled and its connection not yet watched (nothing read).
  std::atomic<bool> client_watch_wanted_{false};
  bool slot_released_ = false;
  beast::flat_buffer buffer_;
  std::optional<internal::RequestParser> parser_;
  bool read_pending_ = false;
  bool write_pending_ = false;
  size_t writing_count_ = 0;  // queued writes the pending write sends
  bool flush_posted_ = false;  // a WriteNext is posted (see QueueWrite)
  bool close_after_write_ = false;  // an aborted stream closes once its queue is written
  // The client closed (read EOF or error) while a write was in flight; see OnReadSome.
  bool client_closed_ = false;
  bool read_timed_out_ = false;
  size_t lingered_bytes_ = 0;

  // The request being handled.
  uint64_t sequence_ = 0;
  bool keep_alive_ = true;
  int http_version_ = 11;
  bool head_request_ = false;
  bool bodiless_ = false;  // the stream started is a head alone (HEAD, or a bodiless status)
  bool responded_ = false;
  bool streaming_ = false;
  bool finish_requested_ = false;
  int response_status_ = 0;
  std::string method_label_;
  std::string route_label_;
  Clock::time_point request_start_;
  std::vector<std::function<void()>> close_callbacks_;
  // A devector, not a deque: an empty std::deque already holds a 504-byte block (a fifth
  // of an idle connection's memory), and an idle connection has nothing to write.
  boost::container::devector<PendingWrite> queue_;
  size_t queued_bytes_ = 0;
};

// --- ResponderImpl: every call hops onto the connection's executor. ---

template <class Stream>
ResponderImpl<Stream>::~ResponderImpl() {
  if (connection_->closed()) return;  // nothing left to answer or abort
  // The usual case, an answer sent, posts nothing (and copies no reference to the
  // connection: a locked read-modify-write to make and another to drop).
  if (!used_.load()) {
    // A handler that forgot to answer must not leave the client hanging.
    asio::post(connection_->executor(), [connection = connection_, sequence = sequence_] {
      connection->SendResponse(
          sequence, HttpResponse::JsonError(500, "handler did not respond", "internal_error"));
    });
  } else if (streaming_.load() && !finished_.load()) {
    // A stream that was never finished cannot be ended cleanly: closing tells the client
    // the response is incomplete instead of making a truncated body look whole.
    asio::post(connection_->executor(), [connection = connection_, sequence = sequence_] {
      connection->AbortStream(sequence);
    });
  }
}

template <class Stream>
void ResponderImpl<Stream>::Send(HttpResponse response) {
  if (used_.exchange(true)) {
    spdlog::error("http: a handler answered the same request twice; the second answer is dropped");
    return;
  }
  if (connection_->closed()) return;
  // The common case without a step to run: a response moved into a lambda and out again,
  // with a reference to the connection taken and dropped, cost as much as writing its head.
  if (connection_->OnOwnThread()) return connection_->SendResponse(sequence_, std::move(response));
  asio::dispatch(connection_->executor(), [connection = connection_, sequence = sequence_,
                                           response = std::move(response)]() mutable {
    connection->SendResponse(sequence, std::move(response));
  });
}

template <class Stream>
void ResponderImpl<Stream>::StartStream(int status, Headers headers) {
  if (used_.exchange(true)) {
    spdlog::error("http: a handler answered the same request twice; the second answer is dropped");
    return;
  }
  streaming_.store(true);
  if (connection_->closed()) return;
  connection_->Run([sequence = sequence_, status, headers = std::move(headers)](
                        Connection<Stream>& connection) {
    connection.StartStream(sequence, status, headers);
  });
}

template <class Stream>
void ResponderImpl<Stream>::Write(std::string chunk, std::function<void(base::Status)> on_written) {
  if (connection_->closed()) {
    if (on_written) on_written(base::Cancelled("the client connection is closed"));
    return;
  }
  connection_->Run([sequence = sequence_, chunk = std::move(chunk),
                    on_written = std::move(on_written)](Connection<Stream>& connection) mutable {
    connection.WriteChunk(sequence, std::move(chunk), std::move(on_written));
  });
}

template <class Stream>
void ResponderImpl<Stream>::Finish() {
  finished_.store(true);
  if (connection_->closed()) return;
  connection_->Run([sequence = sequence_](Connection<Stream>& connection) {
    connection.FinishStream(sequence);
  });
}

template <class Stream>
bool ResponderImpl<Stream>::Closed() const {
  return connection_->closed();
}

template <class Stream>
void ResponderImpl<Stream>::OnClose(std::function<void()> callback) {
  if (connection_->closed()) {
    callback();
    return;
  }
  connection_->Run([sequence = sequence_, callback = std::move(callback)](
                        Connection<Stream>& connection) mutable {
    connection.AddCloseCallback(sequence, std::move(callback));
  });
}

// --- The server ---

ServerOptions ServerOptions::FromConfig(const base::Config& config) {
  ServerOptions options;
  options.io_threads = static_cast<int>(config.GetInt("server.io_threads"));
  options.max_header_bytes = static_cast<size_t>(config.GetInt("server.max_header_bytes"));
  options.max_body_bytes = static_cast<uint64_t>(config.GetInt("server.max_body_bytes"));
  options.max_connections = static_cast<size_t>(config.GetInt("server.max_connections"));
  options.idle_timeout = config.GetDuration("server.idle_timeout");
  options.read_timeout = config.GetDuration("server.read_timeout");
  options.write_timeout = config.GetDuration("server.write_timeout");
  options.max_stream_buffer_bytes =
      static_cast<size_t>(config.GetInt("server.max_stream_buffer_bytes"));
  options.drain_timeout = config.GetDuration("server.drain_timeout");
  options.tls.certificate_file = config.GetString("server.tls.certificate_file");
  options.tls.private_key_file = config.GetString("server.tls.private_key_file");
  options.tls.client_ca_file = config.GetString("server.tls.client_ca_file");
  // Any TLS key turns TLS on, so a half-written TLS config fails loudly at Listen() instead
  // of silently serving plain HTTP.
  options.tls.enabled = !options.tls.certificate_file.empty() ||
                        !options.tls.private_key_file.empty() ||
                        !options.tls.client_ca_file.empty();
  return options;
}

class HttpServer::Impl {
 public:
  Impl(ServerOptions options, std::shared_ptr<const HttpRouter> router)
      : io_thread_count_(IoThreadCount(options)),
        context_per_thread_(io_thread_count_ > 1 &&
                            (options.context_per_thread ||
                             options.busy_poll > std::chrono::microseconds::zero())),
        shared_(std::make_shared<ServerShared>()) {
    const int context_count = context_per_thread_ ? io_thread_count_ : 1;
    for (int i = 0; i < context_count; ++i) {
      // With one thread per io_context, telling asio so lets it queue handlers posted from
      // that thread without taking the scheduler's lock or waking anyone.
      io_contexts_.push_back(std::make_shared<asio::io_context>(
          OneThreadPerContext() ? 1 : BOOST_ASIO_CONCURRENCY_HINT_DEFAULT));
      work_.push_back(asio::make_work_guard(*io_contexts_.back()));
    }
    shared_->options = std::move(options);
    shared_->router = std::move(router);
  }

  ~Impl() {
    Stop();
    // Run the completion handlers the closes left behind, so no handler keeps a
    // connection (and with it the io_context) alive in a cycle.
    for (auto& io_context : io_contexts_) {
      io_context->restart();
      io_context->poll();
    }
  }

  base::Status Listen(const Endpoint& endpoint) {
    if (shared_->options.tls.enabled && !tls_context_) {
      SC_ASSIGN_OR_RETURN(tls_context_, internal::MakeServerTlsContext(shared_->options.tls));
    }
    SC_ASSIGN_OR_RETURN(auto addresses, internal::ResolveEndpoint(endpoint));
    if (endpoint.kind == Endpoint::Kind::kUnix) {
      SC_RETURN_IF_ERROR(RemoveStaleUnixSocket(endpoint.path));
    }
    boost::system::error_code error;
    for (const auto& address : addresses) {
      auto listener = std::make_unique<Listener>(asio::make_strand(*io_contexts_.front()));
      listener->acceptor.open(address.protocol(), error);
      if (error) continue;
      if (internal::IsTcp(address)) {
        listener->acceptor.set_option(asio::socket_base::reuse_address(true), error);
      }
      listener->acceptor.bind(address, error);
      if (error) continue;
      listener->acceptor.listen(asio::socket_base::max_listen_connections, error);
      if (error) continue;
      listener->endpoint =
          internal::EndpointFromAddress(listener->acceptor.local_endpoint(), endpoint);
      listeners_.push_back(std::move(listener));
      return base::Status::Ok();
    }
    return base::Unavailable("cannot listen on " + endpoint.ToString() + ": " + error.message());
  }

  std::vector<Endpoint> BoundEndpoints() const {
    std::vector<Endpoint> endpoints;
    for (const auto& listener : listeners_) endpoints.push_back(listener->endpoint);
    return endpoints;
  }

  base::Status Start() {
    if (listeners_.empty()) return base::FailedPrecondition("Start() before any Listen()");
    if (!threads_.empty()) return base::FailedPrecondition("the server is already running");
    for (auto& listener : listeners_) Accept(*listener);
    ArmClientWatchTimer();
    // Polling needs a thread alone on its io_context: asio lets one thread at a time wait
    // in epoll, and one asleep there would leave the others spinning without seeing any
    // event. Hence an io_context per thread whenever the server polls (the constructor).
    const std::chrono::microseconds busy_poll =
        OneThreadPerContext() ? shared_->options.busy_poll : std::chrono::microseconds::zero();
    for (int i = 0; i < io_thread_count_; ++i) {
      std::shared_ptr<asio::io_context> io_context =
          io_contexts_[static_cast<size_t>(i) % io_contexts_.size()];
      threads_.emplace_back([this, io_context, busy_poll] {
        internal::SetCurrentServerIoThread({io_context, OneThreadPerContext()});
        internal::RunIoContext(*io_context, busy_poll);
        internal::SetCurrentServerIoThread({});
      });
    }
    return base::Status::Ok();
  }

  void Drain() {
    if (stopped_) return;
    shared_->draining.store(true);
    CloseListeners();
    ForEachConnection([](ConnectionBase& connection) { connection.BeginDrain(); });
    std::unique_lock lock(shared_->mutex);
    bool drained = shared_->connections_changed.wait_for(
        lock, shared_->options.drain_timeout,
        [&] { return shared_->open_connections.load() == 0; });
    lock.unlock();
    if (!drained) {
      spdlog::warn("http: drain timeout: closing {} connections with requests in flight",
                   shared_->open_connections.load());
    }
    Stop();
  }

  void Stop() {
    if (stopped_) return;
    stopped_ = true;
    shared_->draining.store(true);
    CloseListeners();
    ForEachConnection([](ConnectionBase& connection) { connection.ForceClose(); });
    work_.clear();
    // Give closed connections a moment to run their completion handlers, then stop.
    {
      std::unique_lock lock(shared_->mutex);
      shared_->connections_changed.wait_for(lock, std::chrono::seconds(2), [&] {
        return shared_->open_connections.load() == 0;
      });
    }
    for (auto& io_context : io_contexts_) io_context->stop();
    for (auto& thread : threads_) thread.join();
    threads_.clear();
    for (const auto& listener : listeners_) {
      if (listener->endpoint.kind == Endpoint::Kind::kUnix) ::unlink(listener->endpoint.path.c_str());
    }
  }

  void RunUntilSignal() {
    asio::io_context signal_context;
    asio::signal_set signals(signal_context, SIGTERM, SIGINT);
    int received = 0;
    signals.async_wait([&](boost::system::error_code, int signal) { received = signal; });
    signal_context.run();
    spdlog::info("received {}, draining (up to {} ms)", received == SIGTERM ? "SIGTERM" : "SIGINT",
                 shared_->options.drain_timeout.count());
    Drain();
  }

  size_t ConnectionCount() const { return shared_->open_connections.load(); }

 private:
  struct Listener {
    explicit Listener(asio::any_io_executor executor) : acceptor(executor) {}
    asio::basic_socket_acceptor<Protocol> acceptor;
    Endpoint endpoint;
    // Which io_context the next accepted connection goes to, when each io thread has its
    // own. A turn per listener: one shared turn, taken as each listener arms its accept,
    // would hand all of one listener's connections to the same contexts.
    size_t next_context = 0;
  };

  static int IoThreadCount(const ServerOptions& options) {
    if (options.io_threads > 0) return options.io_threads;
    return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  }

  // Whether each io_context is run by one thread only: one io thread, or one io_context
  // per thread.
  bool OneThreadPerContext() const { return io_thread_count_ == 1 || context_per_thread_; }

  // The io_context of the next connection `listener` accepts: the next in its turn, when
  // each thread has its own. Called only on the listener's strand.
  std::shared_ptr<asio::io_context> NextConnectionContext(Listener& listener) {
    return io_contexts_[listener.next_context++ % io_contexts_.size()];
  }

  // A connection's handlers run one at a time: on a strand when several threads run its
  // io_context, and on the io_context itself when one thread does (a strand would only
  // add a queue and a lock to every handler).
  asio::any_io_executor ConnectionExecutor(asio::io_context& io_context) const {
    if (OneThreadPerContext()) return io_context.get_executor();
    return asio::make_strand(io_context);
  }

  static base::Status RemoveStaleUnixSocket(const std::string& path) {
    struct stat info {};
    if (::lstat(path.c_str(), &info) != 0) return base::Status::Ok();
    if (!S_ISSOCK(info.st_mode)) {
      return base::AlreadyExists("cannot listen on unix://" + path +
                                 ": a file that is not a socket is in the way");
    }
    ::unlink(path.c_str());
    return base::Status::Ok();
  }

  void Accept(Listener& listener) {
    std::shared_ptr<asio::io_context> io_context = NextConnectionContext(listener);
    listener.acceptor.async_accept(
        ConnectionExecutor(*io_context),
        [this, &listener, io_context](boost::system::error_code error, Socket socket) {
          if (error == asio::error::operation_aborted || !listener.acceptor.is_open()) return;
          if (error) {
            // Out of file descriptors and similar: wait a little rather than spin.
            spdlog::warn("http: accept failed: {}", error.message());
            auto timer = std::make_shared<asio::steady_timer>(listener.acceptor.get_executor(),
                                                               std::chrono::milliseconds(50));
            timer->async_wait([this, &listener, timer](boost::system::error_code) {
              if (listener.acceptor.is_open()) Accept(listener);
            });
            return;
          }
          OnAccepted(std::move(socket), io_context);
          Accept(listener);
        });
  }

  // `io_context` is the one `socket` was accepted onto.
  void OnAccepted(Socket socket, const std::shared_ptr<asio::io_context>& io_context) {
    boost::system::error_code error;
    auto peer_address = socket.remote_endpoint(error);
    if (error) return;  // the client is already gone
    if (shared_->open_connections.load() >= shared_->options.max_connections) {
      asio::write(socket, asio::buffer(BusyResponse()), error);
      socket.shutdown(asio::socket_base::shutdown_both, error);
      socket.close(error);
      return;
    }
    if (internal::IsTcp(peer_address)) {
      int one = 1;
      ::setsockopt(socket.native_handle(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    std::string peer = internal::PeerText(peer_address);
    if (tls_context_) {
      Register(std::make_shared<Connection<TlsSocket>>(
          io_context, shared_, TlsSocket(std::move(socket), *tls_context_), std::move(peer)));
    } else {
      Register(std::make_shared<Connection<Socket>>(io_context, shared_, std::move(socket),
                                                    std::move(peer)));
    }
  }

  template <class Stream>
  void Register(std::shared_ptr<Connection<Stream>> connection) {
    {
      std::lock_guard lock(registry_mutex_);
      // Forget connections that are gone once the registry has doubled since the last
      // sweep: it stays within twice the open set, and an accept costs O(1) amortised
      // instead of a scan of every connection.
      if (connections_.size() >= 2 * registry_size_after_sweep_ + 64) {
        std::erase_if(connections_, [](const auto& entry) { return entry.expired(); });
        registry_size_after_sweep_ = connections_.size();
      }
      connections_.push_back(connection);
    }
    connection->Start();
  }

  // Every kClientWatchInterval, until Stop: connections whose request is still being
  // handled start watching for their client going away.
  void ArmClientWatchTimer() {
    if (!client_watch_timer_) {
      client_watch_timer_ = std::make_unique<asio::steady_timer>(*io_contexts_.front());
    }
    client_watch_timer_->expires_after(kClientWatchInterval);
    client_watch_timer_->async_wait([this](boost::system::error_code error) {
      if (error || stopped_.load()) return;
      ForEachConnection([](ConnectionBase& connection) { connection.StartClientWatchIfWanted(); });
      ArmClientWatchTimer();
    });
  }

  void ForEachConnection(const std::function<void(ConnectionBase&)>& action) {
    std::vector<std::shared_ptr<ConnectionBase>> alive;
    {
      std::lock_guard lock(registry_mutex_);
      for (const auto& weak : connections_) {
        if (auto connection = weak.lock()) alive.push_back(std::move(connection));
      }
    }
    for (auto& connection : alive) action(*connection);
  }

  void CloseListeners() {
    std::promise<void> closed;
    std::atomic<size_t> remaining{listeners_.size()};
    if (listeners_.empty()) return;
    for (auto& listener : listeners_) {
      asio::dispatch(listener->acceptor.get_executor(), [&listener, &remaining, &closed] {
        boost::system::error_code ignored;
        listener->acceptor.close(ignored);
        if (remaining.fetch_sub(1) == 1) closed.set_value();
      });
    }
    if (threads_.empty()) {
      // Nothing runs the io_context yet: run the posted closes here.
      io_contexts_.front()->poll();
    }
    closed.get_future().wait();
  }

  const int io_thread_count_;
  // Set when the server has several io threads and polls or was asked for it
  // (ServerOptions::context_per_thread): each thread then runs an io_context of its own
  // (io_contexts_[i]); otherwise every thread runs the one io_contexts_[0].
  // The listeners and the client watch timer live on io_contexts_[0].
  const bool context_per_thread_;
  std::vector<std::shared_ptr<asio::io_context>> io_contexts_;
  std::shared_ptr<ServerShared> shared_;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  std::shared_ptr<ssl::context> tls_context_;
  std::vector<std::unique_ptr<Listener>> listeners_;
  std::vector<std::thread> threads_;
  std::mutex registry_mutex_;
  std::vector<std::weak_ptr<ConnectionBase>> connections_;
  size_t registry_size_after_sweep_ = 0;
  std::atomic<bool> stopped_{false};  // also read by the client watch timer, on io threads
  // Runs on the io threads; declared after io_contexts_, so destroyed before them.
  std::unique_ptr<asio::steady_timer> client_watch_timer_;
};

HttpServer::HttpServer(ServerOptions options, std::shared_ptr<const HttpRouter> router)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(router))) {}
HttpServer::~HttpServer() = default;
base::Status HttpServer::Listen(const Endpoint& endpoint) { return impl_->Listen(endpoint); }
std::vector<Endpoint> HttpServer::BoundEndpoints() const { return impl_->BoundEndpoints(); }
base::Status HttpServer::Start() { return impl_->Start(); }
void HttpServer::Drain() { impl_->Drain(); }
void HttpServer::Stop() { impl_->Stop(); }
void HttpServer::RunUntilSignal() { impl_->RunUntilSignal(); }
size_t HttpServer::ConnectionCount() const { return impl_->ConnectionCount(); }

}  // namespace supercluster::net
