// The delay relay: an accept loop, and one RelayConnection per accepted socket holding two
// Directions (client -> target, target -> client). See delay_relay.h for the behaviour.
//
// Each connection runs on its own strand; everything below RelayConnection's public
// *FromOutside methods runs on that strand, so a connection's queues, timers and sockets
// are never touched by two threads at once.
//
// A Direction reads when its source is readable (async_wait, then a non-blocking read into
// a per-thread scratch buffer), so an idle connection holds no read buffer. What it reads is
// copied into a Piece stamped with its release time and queued; the writer sends every
// piece that is due in one gathered write, and otherwise sleeps on a timer until the front
// piece is due. The end of a source (EOF or error) is queued as a Piece too, so the close
// reaches the other side after the data before it, with the same delay.
#include "net/delay_relay.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <boost/asio.hpp>
#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "base/logging.h"
#include "net/socket_address.h"

namespace supercluster::net {

namespace asio = boost::asio;
using internal::Protocol;
using Socket = Protocol::socket;
using Clock = std::chrono::steady_clock;

namespace {

// The most one read takes from a socket, and the size of the per-thread scratch buffer.
constexpr size_t kReadChunk = 64 * 1024;
// The most pieces gathered into one write (iovec count stays small).
constexpr size_t kMaxPiecesPerWrite = 64;

// Closes with an RST instead of a FIN, so the peer sees "connection reset": the way a
// broken link or a refusing region shows itself.
void ResetAndClose(Socket& socket) {
  if (!socket.is_open()) return;
  ::linger option{};
  option.l_onoff = 1;
  option.l_linger = 0;
  ::setsockopt(socket.native_handle(), SOL_SOCKET, SO_LINGER, &option, sizeof(option));
  boost::system::error_code ignored;
  socket.close(ignored);
}

void SetNoDelay(Socket& socket) {
  if (!socket.is_open()) return;
  boost::system::error_code error;
  auto address = socket.local_endpoint(error);
  if (error || !internal::IsTcp(address)) return;
  int one = 1;
  ::setsockopt(socket.native_handle(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

std::minstd_rand& ThreadRandom() {
  thread_local std::minstd_rand random{std::random_device{}()};
  return random;
}

// A uniform draw in [0, 1).
double UniformUnit() {
  return std::uniform_real_distribution<double>(0.0, 1.0)(ThreadRandom());
}

}  // namespace

const char* RelayModeName(RelayMode mode) {
  switch (mode) {
    case RelayMode::kForward:
      return "forward";
    case RelayMode::kCut:
      return "cut";
    case RelayMode::kBlackhole:
      return "blackhole";
  }
  return "forward";
}

RelayOptions RelayOptions::FromConfig(const base::Config& config) {
  RelayOptions options;
  options.max_buffered_bytes = static_cast<size_t>(config.GetInt("relay.max_buffered_bytes"));
  options.connect_timeout = config.GetDuration("relay.connect_timeout");
  options.max_connections = static_cast<size_t>(config.GetInt("relay.max_connections"));
  options.io_threads = static_cast<int>(config.GetInt("relay.io_threads"));
  return options;
}

// What the relay and all its connections share. Connections hold it (and the io_context)
// by shared_ptr, so both outlive any handler still queued when the relay stops.
struct RelayShared {
  RelayOptions options;
  std::vector<Protocol::endpoint> target_addresses;

  std::atomic<int64_t> one_way_delay_us{0};
  std::atomic<int64_t> jitter_us{0};
  std::atomic<double> drop_probability{0};

  std::atomic<uint64_t> connections_accepted{0};
  std::atomic<uint64_t> connections_open{0};
  std::atomic<uint64_t> connections_refused{0};
  std::atomic<uint64_t> connections_dropped{0};
  std::atomic<uint64_t> connections_reset{0};
  std::atomic<uint64_t> target_connect_failures{0};
  std::atomic<uint64_t> bytes_to_target{0};
  std::atomic<uint64_t> bytes_to_client{0};
  std::atomic<uint64_t> buffered_bytes{0};

  // Signalled when connections_open drops, for Stop().
  std::mutex mutex;
  std::condition_variable connection_closed;

  // The one-way delay for a piece read now: the base delay plus this piece's jitter.
  Clock::duration NextDelay() const {
    auto delay = std::chrono::microseconds(one_way_delay_us.load(std::memory_order_relaxed));
    int64_t jitter = jitter_us.load(std::memory_order_relaxed);
    if (jitter > 0) {
      delay += std::chrono::microseconds(
          static_cast<int64_t>(UniformUnit() * static_cast<double>(jitter + 1)));
    }
    return delay;
  }
};

class RelayConnection : public std::enable_shared_from_this<RelayConnection> {
 public:
  RelayConnection(std::shared_ptr<asio::io_context> io_context,
                  std::shared_ptr<RelayShared> shared, Socket client)
      : io_context_(std::move(io_context)),
        shared_(std::move(shared)),
        executor_(client.get_executor()),
        client_(std::move(client)),
        target_(executor_),
        connect_timer_(executor_),
        to_target_(executor_, &client_, &target_, &shared_->bytes_to_target),
        to_client_(executor_, &target_, &client_, &shared_->bytes_to_client) {
    shared_->connections_open.fetch_add(1);
  }

  ~RelayConnection() {
    if (!finished_) Finish();
  }

  // Starts forwarding, or (blackhole) only reading and discarding what the client sends.
  void Start(bool blackhole) {
    asio::dispatch(executor_, [self = shared_from_this(), blackhole] {
      boost::system::error_code ignored;
      self->client_.non_blocking(true, ignored);
      // A new connection pays for the handshake the local kernel did at once: SYN, SYN-ACK,
      // then its data, so nothing reaches the target before accept + 3 x one-way delay.
      auto one_way = std::chrono::microseconds(self->shared_->one_way_delay_us.load());
      self->to_target_.not_before = Clock::now() + 3 * one_way;
      if (blackhole) {
        self->blackholed_ = true;
      } else {
        self->ConnectNext();
      }
      self->Read(self->to_target_);
    });
  }

  void ResetFromOutside() {
    asio::dispatch(executor_, [self = shared_from_this()] {
      if (self->closed_) return;
      self->shared_->connections_reset.fetch_add(1);
      self->Close(/*reset=*/true);
    });
  }

  void BlackholeFromOutside() {
    asio::dispatch(executor_, [self = shared_from_this()] { self->EnterBlackhole(); });
  }

  // After a blackhole the byte streams have gaps; such a connection cannot carry on.
  void RestoreFromOutside() {
    asio::dispatch(executor_, [self = shared_from_this()] {
      if (self->closed_ || !self->blackholed_) return;
      self->shared_->connections_reset.fetch_add(1);
      self->Close(/*reset=*/true);
    });
  }

 private:
  struct Piece {
    enum class Kind { kData, kEnd, kReset };
    Clock::time_point release;
    Kind kind = Kind::kData;
    std::string bytes;
  };

  // One direction of the connection: reads `source`, delays, writes `sink`.
  struct Direction {
    Direction(const asio::any_io_executor& executor, Socket* source_socket,
              Socket* sink_socket, std::atomic<uint64_t>* counter)
        : source(source_socket), sink(sink_socket), byte_counter(counter), timer(executor) {}

    Socket* source;
    Socket* sink;
    std::atomic<uint64_t>* byte_counter;
    asio::steady_timer timer;
    std::deque<Piece> queue;
    size_t buffered = 0;            // data bytes in `queue`
    size_t pieces_in_write = 0;     // the front pieces an async_write is sending now
    Clock::time_point last_release{};
    Clock::time_point not_before{};
    bool waiting_for_read = false;
    bool writing = false;
    bool timer_armed = false;
    bool source_done = false;       // the source ended; nothing more is read
    bool sink_done = false;         // the end was passed on; nothing more is written
  };

  // --- Connecting to the target ---

  void ConnectNext() {
    const auto& addresses = shared_->target_addresses;
    if (next_address_ >= addresses.size() || connect_timed_out_) {
      Close(/*reset=*/true);
      shared_->target_connect_failures.fetch_add(1);
      return;
    }
    const Protocol::endpoint& address = addresses[next_address_++];
    boost::system::error_code error;
    if (target_.is_open()) target_.close(error);
    target_.open(address.protocol(), error);
    if (error) {
      ConnectNext();
      return;
    }
    if (!connect_timer_armed_) {
      connect_timer_armed_ = true;
      connect_timer_.expires_after(shared_->options.connect_timeout);
      connect_timer_.async_wait([self = shared_from_this()](boost::system::error_code wait_error) {
        if (wait_error || self->closed_ || self->connected_) return;
        self->connect_timed_out_ = true;
        boost::system::error_code ignored;
        self->target_.close(ignored);  // the pending connect completes with an error
      });
    }
    target_.async_connect(address, [self = shared_from_this()](boost::system::error_code error) {
      if (self->closed_) return;
      if (error) {
        self->ConnectNext();
        return;
      }
      self->OnConnected();
    });
  }

  void OnConnected() {
    connected_ = true;
    connect_timer_.cancel();
    SetNoDelay(target_);
    boost::system::error_code ignored;
    target_.non_blocking(true, ignored);
    Read(to_client_);
    Pump(to_target_);
  }

  // --- Reading ---

  bool CanRead(const Direction& direction) const {
    if (closed_ || direction.waiting_for_read || direction.source_done) return false;
    if (direction.source == &target_ && !connected_) return false;
    // Over the cap: stop reading (TCP pushes back on the sender). A blackholed connection
    // discards what it reads and keeps reading.
    return blackholed_ || direction.buffered < shared_->options.max_buffered_bytes;
  }

  void Read(Direction& direction) {
    if (!CanRead(direction)) return;
    direction.waiting_for_read = true;
    direction.source->async_wait(
        Socket::wait_read,
        [self = shared_from_this(), &direction](boost::system::error_code error) {
          direction.waiting_for_read = false;
          if (self->closed_) return;
          if (error) {
            self->OnSourceEnded(direction, /*reset=*/true);
            return;
          }
          self->ReadAvailable(direction);
        });
  }

  void ReadAvailable(Direction& direction) {
    thread_local std::vector<char> scratch(kReadChunk);
    size_t room = kReadChunk;
    if (!blackholed_) {
      room = std::min(room, shared_->options.max_buffered_bytes - direction.buffered);
    }
    boost::system::error_code error;
    size_t read = direction.source->read_some(asio::buffer(scratch.data(), room), error);
    if (error == asio::error::would_block || error == asio::error::try_again) {
      Read(direction);
      return;
    }
    if (read > 0) {
      direction.byte_counter->fetch_add(read, std::memory_order_relaxed);
      if (!blackholed_) Enqueue(direction, Piece::Kind::kData, std::string(scratch.data(), read));
    }
    if (error) {
      OnSourceEnded(direction, /*reset=*/error != asio::error::eof);
      return;
    }
    Pump(direction);
    Read(direction);
  }

  void OnSourceEnded(Direction& direction, bool reset) {
    direction.source_done = true;
    if (blackholed_) {
      // The client leaving ends a blackholed connection; the target's end changes nothing.
      if (direction.source == &client_) Close(/*reset=*/reset);
      return;
    }
    Enqueue(direction, reset ? Piece::Kind::kReset : Piece::Kind::kEnd, {});
    Pump(direction);
  }

  void Enqueue(Direction& direction, Piece::Kind kind, std::string bytes) {
    Clock::time_point release = std::max(
        {Clock::now() + shared_->NextDelay(), direction.not_before, direction.last_release});
    direction.last_release = release;
    direction.buffered += bytes.size();
    shared_->buffered_bytes.fetch_add(bytes.size(), std::memory_order_relaxed);
    direction.queue.push_back(Piece{release, kind, std::move(bytes)});
  }

  // --- Writing ---

  void Pump(Direction& direction) {
    if (closed_ || blackholed_ || direction.writing || direction.sink_done) return;
    if (direction.sink == &target_ && !connected_) return;
    if (direction.queue.empty()) return;
    Clock::time_point now = Clock::now();
    const Piece& front = direction.queue.front();
    if (front.release > now) {
      if (!direction.timer_armed) {
        direction.timer_armed = true;
        direction.timer.expires_at(front.release);
        direction.timer.async_wait([self = shared_from_this(), &direction](boost::system::error_code) {
          direction.timer_armed = false;
          self->Pump(direction);
        });
      }
      return;
    }
    if (front.kind != Piece::Kind::kData) {
      bool reset = front.kind == Piece::Kind::kReset;
      direction.queue.pop_front();
      direction.sink_done = true;
      if (reset) {
        Close(/*reset=*/true);
        return;
      }
      boost::system::error_code ignored;
      direction.sink->shutdown(asio::socket_base::shutdown_send, ignored);
      if (to_target_.sink_done && to_client_.sink_done) Close(/*reset=*/false);
      return;
    }
    std::vector<asio::const_buffer> buffers;
    size_t bytes = 0;
    for (const Piece& piece : direction.queue) {
      if (piece.kind != Piece::Kind::kData || piece.release > now ||
          buffers.size() == kMaxPiecesPerWrite) {
        break;
      }
      buffers.push_back(asio::buffer(piece.bytes));
      bytes += piece.bytes.size();
    }
    direction.writing = true;
    direction.pieces_in_write = buffers.size();
    // The pieces stay in the deque until the write completes: push_back never moves
    // existing elements, so the buffers stay valid.
    asio::async_write(*direction.sink, buffers,
                      [self = shared_from_this(), &direction, bytes](
                          boost::system::error_code error, size_t) {
                        self->OnWritten(direction, bytes, error);
                      });
  }

  void OnWritten(Direction& direction, size_t bytes, boost::system::error_code error) {
    direction.writing = false;
    for (size_t i = 0; i < direction.pieces_in_write; ++i) direction.queue.pop_front();
    direction.pieces_in_write = 0;
    Release(direction, bytes);
    if (closed_) return;
    if (error) {
      Close(/*reset=*/true);
      return;
    }
    Pump(direction);
    Read(direction);  // resumes a source paused at the cap
  }

  void Release(Direction& direction, size_t bytes) {
    direction.buffered -= bytes;
    shared_->buffered_bytes.fetch_sub(bytes, std::memory_order_relaxed);
  }

  // Drops every queued piece except those an async_write is sending right now (their
  // buffers must stay alive until it completes).
  void DiscardQueued(Direction& direction) {
    size_t dropped = 0;
    while (direction.queue.size() > direction.pieces_in_write) {
      dropped += direction.queue.back().bytes.size();
      direction.queue.pop_back();
    }
    Release(direction, dropped);
    direction.timer.cancel();
  }

  // --- Faults and the end ---

  void EnterBlackhole() {
    if (closed_ || blackholed_) return;
    blackholed_ = true;
    DiscardQueued(to_target_);
    DiscardQueued(to_client_);
    // Readers paused at the cap start again, now discarding.
    Read(to_target_);
    Read(to_client_);
  }

  void Close(bool reset) {
    if (closed_) return;
    closed_ = true;
    boost::system::error_code ignored;
    connect_timer_.cancel();
    DiscardQueued(to_target_);
    DiscardQueued(to_client_);
    if (reset) {
      ResetAndClose(client_);
      ResetAndClose(target_);
    } else {
      client_.close(ignored);
      target_.close(ignored);
    }
    Finish();
  }

  // Gives the connection's slot back exactly once.
  void Finish() {
    finished_ = true;
    shared_->connections_open.fetch_sub(1);
    std::lock_guard lock(shared_->mutex);
    shared_->connection_closed.notify_all();
  }

  // Declared first so it is destroyed last: the sockets and timers need the io_context.
  std::shared_ptr<asio::io_context> io_context_;
  std::shared_ptr<RelayShared> shared_;
  asio::any_io_executor executor_;
  Socket client_;
  Socket target_;
  asio::steady_timer connect_timer_;
  Direction to_target_;
  Direction to_client_;
  size_t next_address_ = 0;
  bool connect_timer_armed_ = false;
  bool connect_timed_out_ = false;
  bool connected_ = false;
  bool blackholed_ = false;
  bool closed_ = false;
  bool finished_ = false;
};

class DelayRelay::Impl {
 public:
  explicit Impl(RelayOptions options)
      : io_context_(std::make_shared<asio::io_context>()),
        shared_(std::make_shared<RelayShared>()),
        work_(asio::make_work_guard(*io_context_)),
        acceptor_(asio::make_strand(*io_context_)) {
    shared_->options = std::move(options);
    shared_->one_way_delay_us = shared_->options.one_way_delay.count();
    shared_->jitter_us = shared_->options.jitter.count();
  }

  ~Impl() {
    Stop();
    // Run the completion handlers the closes left behind, so none keeps a connection (and
    // with it the io_context) alive in a cycle.
    io_context_->restart();
    io_context_->poll();
  }

  base::Status Start() {
    const RelayOptions& options = shared_->options;
    if (options.max_buffered_bytes == 0 || options.io_threads < 1) {
      return base::InvalidArgument("relay: max_buffered_bytes and io_threads must be positive");
    }
    if (!threads_.empty()) return base::FailedPrecondition("the relay is already running");
    auto target = internal::ResolveEndpoint(options.target);
    if (!target.ok()) {
      return base::Unavailable("relay target " + options.target.ToString() + ": " +
                               target.status().message());
    }
    shared_->target_addresses = std::move(*target);
    SC_ASSIGN_OR_RETURN(auto addresses, internal::ResolveEndpoint(options.listen));
    boost::system::error_code error;
    for (const auto& address : addresses) {
      if (acceptor_.is_open()) acceptor_.close(error);
      acceptor_.open(address.protocol(), error);
      if (error) continue;
      if (internal::IsTcp(address)) {
        acceptor_.set_option(asio::socket_base::reuse_address(true), error);
      }
      acceptor_.bind(address, error);
      if (error) continue;
      acceptor_.listen(asio::socket_base::max_listen_connections, error);
      if (error) continue;
      listen_endpoint_ = internal::EndpointFromAddress(acceptor_.local_endpoint(), options.listen);
      break;
    }
    if (error || !acceptor_.is_open()) {
      return base::Unavailable("relay: cannot listen on " + options.listen.ToString() + ": " +
                               error.message());
    }
    Accept();
    for (int i = 0; i < options.io_threads; ++i) {
      threads_.emplace_back([this] { io_context_->run(); });
    }
    return base::Status::Ok();
  }

  void Stop() {
    if (stopped_) return;
    stopped_ = true;
    if (!threads_.empty()) {
      std::promise<void> closed;
      asio::dispatch(acceptor_.get_executor(), [this, &closed] {
        boost::system::error_code ignored;
        acceptor_.close(ignored);
        closed.set_value();
      });
      closed.get_future().wait();
    } else {
      boost::system::error_code ignored;
      acceptor_.close(ignored);
    }
    ForEachConnection([](RelayConnection& connection) { connection.ResetFromOutside(); });
    work_.reset();
    {
      std::unique_lock lock(shared_->mutex);
      shared_->connection_closed.wait_for(lock, std::chrono::seconds(2), [&] {
        return shared_->connections_open.load() == 0;
      });
    }
    io_context_->stop();
    for (auto& thread : threads_) thread.join();
    threads_.clear();
  }

  Endpoint listen_endpoint() const { return listen_endpoint_; }
  const Endpoint& target() const { return shared_->options.target; }

  void SetMode(RelayMode mode) {
    std::vector<std::shared_ptr<RelayConnection>> alive;
    {
      // Under the registry lock, so no connection accepted under the old mode escapes
      // the sweep below (OnAccepted reads the mode and registers under the same lock).
      std::lock_guard lock(registry_mutex_);
      mode_ = mode;
      if (mode == RelayMode::kForward) shared_->drop_probability = 0;
      alive = AliveLocked();
    }
    for (auto& connection : alive) {
      switch (mode) {
        case RelayMode::kCut:
          connection->ResetFromOutside();
          break;
        case RelayMode::kBlackhole:
          connection->BlackholeFromOutside();
          break;
        case RelayMode::kForward:
          connection->RestoreFromOutside();
          break;
      }
    }
  }

  void SetDropProbability(double probability) {
    shared_->drop_probability = std::clamp(probability, 0.0, 1.0);
  }

  void SetDelay(std::chrono::microseconds one_way_delay, std::chrono::microseconds jitter) {
    shared_->one_way_delay_us = std::max<int64_t>(0, one_way_delay.count());
    shared_->jitter_us = std::max<int64_t>(0, jitter.count());
  }

  RelayStats Stats() const {
    RelayStats stats;
    {
      std::lock_guard lock(registry_mutex_);
      stats.mode = mode_;
    }
    stats.one_way_delay = std::chrono::microseconds(shared_->one_way_delay_us.load());
    stats.jitter = std::chrono::microseconds(shared_->jitter_us.load());
    stats.drop_probability = shared_->drop_probability.load();
    stats.connections_accepted = shared_->connections_accepted.load();
    stats.connections_open = shared_->connections_open.load();
    stats.connections_refused = shared_->connections_refused.load();
    stats.connections_dropped = shared_->connections_dropped.load();
    stats.connections_reset = shared_->connections_reset.load();
    stats.target_connect_failures = shared_->target_connect_failures.load();
    stats.bytes_to_target = shared_->bytes_to_target.load();
    stats.bytes_to_client = shared_->bytes_to_client.load();
    stats.buffered_bytes = shared_->buffered_bytes.load();
    return stats;
  }

 private:
  void Accept() {
    acceptor_.async_accept(
        asio::any_io_executor(asio::make_strand(*io_context_)),
        [this](boost::system::error_code error, Socket socket) {
          if (error == asio::error::operation_aborted || !acceptor_.is_open()) return;
          if (error) {
            // Out of file descriptors and similar: wait a little rather than spin.
            spdlog::warn("relay: accept failed: {}", error.message());
            auto timer = std::make_shared<asio::steady_timer>(acceptor_.get_executor(),
                                                               std::chrono::milliseconds(50));
            timer->async_wait([this, timer](boost::system::error_code) {
              if (acceptor_.is_open()) Accept();
            });
            return;
          }
          OnAccepted(std::move(socket));
          Accept();
        });
  }

  void OnAccepted(Socket socket) {
    shared_->connections_accepted.fetch_add(1);
    std::lock_guard lock(registry_mutex_);
    if (mode_ == RelayMode::kCut ||
        shared_->connections_open.load() >= shared_->options.max_connections) {
      shared_->connections_refused.fetch_add(1);
      ResetAndClose(socket);
      return;
    }
    double drop = shared_->drop_probability.load();
    if (drop > 0 && UniformUnit() < drop) {
      shared_->connections_dropped.fetch_add(1);
      ResetAndClose(socket);
      return;
    }
    SetNoDelay(socket);
    auto connection = std::make_shared<RelayConnection>(io_context_, shared_, std::move(socket));
    // Forget connections that are gone once the registry has doubled since the last sweep,
    // so it stays within twice the open set at O(1) amortised cost per accept.
    if (connections_.size() >= 2 * registry_size_after_sweep_ + 64) {
      std::erase_if(connections_, [](const auto& entry) { return entry.expired(); });
      registry_size_after_sweep_ = connections_.size();
    }
    connections_.push_back(connection);
    connection->Start(mode_ == RelayMode::kBlackhole);
  }

  std::vector<std::shared_ptr<RelayConnection>> AliveLocked() const {
    std::vector<std::shared_ptr<RelayConnection>> alive;
    for (const auto& weak : connections_) {
      if (auto connection = weak.lock()) alive.push_back(std::move(connection));
    }
    return alive;
  }

  void ForEachConnection(const std::function<void(RelayConnection&)>& action) {
    std::vector<std::shared_ptr<RelayConnection>> alive;
    {
      std::lock_guard lock(registry_mutex_);
      alive = AliveLocked();
    }
    for (auto& connection : alive) action(*connection);
  }

  std::shared_ptr<asio::io_context> io_context_;
  std::shared_ptr<RelayShared> shared_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  asio::basic_socket_acceptor<Protocol> acceptor_;
  Endpoint listen_endpoint_;
  std::vector<std::thread> threads_;
  mutable std::mutex registry_mutex_;
  RelayMode mode_ = RelayMode::kForward;
  std::vector<std::weak_ptr<RelayConnection>> connections_;
  size_t registry_size_after_sweep_ = 0;
  bool stopped_ = false;
};

DelayRelay::DelayRelay(RelayOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}
DelayRelay::~DelayRelay() = default;
base::Status DelayRelay::Start() { return impl_->Start(); }
void DelayRelay::Stop() { impl_->Stop(); }
Endpoint DelayRelay::listen_endpoint() const { return impl_->listen_endpoint(); }
const Endpoint& DelayRelay::target() const { return impl_->target(); }
void DelayRelay::Cut() { impl_->SetMode(RelayMode::kCut); }
void DelayRelay::Blackhole() { impl_->SetMode(RelayMode::kBlackhole); }
void DelayRelay::Restore() { impl_->SetMode(RelayMode::kForward); }
void DelayRelay::SetDropProbability(double probability) {
  impl_->SetDropProbability(probability);
}
void DelayRelay::SetDelay(std::chrono::microseconds one_way_delay,
                          std::chrono::microseconds jitter) {
  impl_->SetDelay(one_way_delay, jitter);
}
RelayStats DelayRelay::Stats() const { return impl_->Stats(); }

}  // namespace supercluster::net
