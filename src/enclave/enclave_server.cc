#include "enclave/enclave_server.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <list>
#include <mutex>
#include <thread>

#include <spdlog/spdlog.h>

#include "base/log_limiter.h"
#include "crypto/secret.h"
#include "enclave/frame_io.h"

namespace supercluster::enclave {
namespace {

// Connection::idle_since while the connection is inside a frame or a call, and once the
// acceptor has closed it to make room.
constexpr int64_t kBusy = 0;
constexpr int64_t kEvicted = -1;

int64_t NowNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

struct EnclaveServer::Impl {
  EnclaveServerOptions options;
  EnclaveCore* core = nullptr;
  int listen_fd = -1;
  int wake_pipe[2] = {-1, -1};  // written by Stop() to end the accept loop
  std::thread acceptor;
  std::atomic<bool> stopping{false};
  std::atomic<uint64_t> dropped{0};
  // For every line about a peer: a peer misbehaving in a loop causes one per connection
  // or call. Made in Start from options.
  std::unique_ptr<base::LogLimiter> peer_log;

  std::mutex mutex;
  struct Connection {
    int fd = -1;
    std::thread thread;
    bool done = false;  // guarded by mutex
    // When the connection began waiting for its next frame (steady clock, ns), kBusy from
    // the frame's first byte until its reply is sent, or kEvicted. Only the connection's
    // thread leaves kEvicted or sets a time; only the acceptor evicts, and only an idle one.
    std::atomic<int64_t> idle_since{kBusy};
  };
  std::list<Connection> connections;  // guarded by mutex

  void AcceptLoop();
  size_t OpenConnections() const;
  bool EvictIdlest();
  void Serve(Connection* connection);
  bool AwaitFrame(Connection* connection);
  void ReapFinished();
};

void EnclaveServer::Impl::AcceptLoop() {
  while (!stopping.load()) {
    pollfd fds[2] = {{listen_fd, POLLIN, 0}, {wake_pipe[0], POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) continue;  // EINTR
    if (fds[1].revents != 0 || stopping.load()) return;
    int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    ReapFinished();
    std::lock_guard lock(mutex);
    if (OpenConnections() >= options.max_connections && !EvictIdlest()) {
      if (uint64_t left_out = 0; peer_log->Allow(&left_out)) {
        spdlog::warn("enclave: refusing a connection: {} open, none idle{}", OpenConnections(),
                     base::LeftOutNote(left_out));
      }
      ::close(fd);
      continue;
    }
    Connection& connection = connections.emplace_back();
    connection.fd = fd;
    connection.idle_since = NowNanos();  // idle until its first frame begins
    connection.thread = std::thread([this, &connection] { Serve(&connection); });
  }
}

// Connections that still count against max_connections: not finished, not being closed.
// Requires mutex.
size_t EnclaveServer::Impl::OpenConnections() const {
  size_t open = 0;
  for (const Connection& connection : connections) {
    if (!connection.done && connection.idle_since.load() != kEvicted) ++open;
  }
  return open;
}

// Closes the connection that has waited longest for its next frame, so that peers which
// connect and send nothing cannot hold every slot (with vsock any process on the parent
// instance can connect). A connection inside a frame or a call is never chosen. Returns
// false when none is idle. Requires mutex.
bool EnclaveServer::Impl::EvictIdlest() {
  for (;;) {
    Connection* idlest = nullptr;
    int64_t since = 0;
    for (Connection& connection : connections) {
      int64_t t = connection.idle_since.load();
      if (t > kBusy && !connection.done && (idlest == nullptr || t < since)) {
        idlest = &connection;
        since = t;
      }
    }
    if (idlest == nullptr) return false;
    // Its frame may have begun since the load; then it is busy, and we look again.
    if (!idlest->idle_since.compare_exchange_strong(since, kEvicted)) continue;
    ::shutdown(idlest->fd, SHUT_RDWR);  // wakes its thread, which sees kEvicted and ends
    if (uint64_t left_out = 0; peer_log->Allow(&left_out)) {
      spdlog::warn("enclave: {} connections open; closing the one idle longest ({} ms) for a "
                   "new one{}",
                   OpenConnections() + 1, (NowNanos() - since) / 1000000,
                   base::LeftOutNote(left_out));
    }
    return true;
  }
}

void EnclaveServer::Impl::Serve(Connection* connection) {
  int fd = connection->fd;
  while (!stopping.load() && AwaitFrame(connection)) {
    auto frame = ReadFrame(fd, options.max_frame_bytes, options.frame_timeout);
    if (!frame.ok()) {
      if (frame.status().message() != "closed" && !stopping.load()) {
        ++dropped;
        if (uint64_t left_out = 0; peer_log->Allow(&left_out)) {
          spdlog::warn("enclave: dropping a peer: {}{}", frame.status().ToString(),
                       base::LeftOutNote(left_out));
        }
      }
      break;
    }
    auto request = DecodeRequest(*frame);
    crypto::Zeroize(frame->data(), frame->size());
    if (!request.ok()) {
      ++dropped;
      if (uint64_t left_out = 0; peer_log->Allow(&left_out)) {
        spdlog::warn("enclave: dropping a peer that sent garbage: {}{}",
                     request.status().ToString(), base::LeftOutNote(left_out));
      }
      break;
    }
    Reply reply = core->Handle(*request);
    for (Bytes& field : request->fields) crypto::Zeroize(field.data(), field.size());
    if (uint64_t left_out = 0; !reply.status.ok() && peer_log->Allow(&left_out)) {
      spdlog::info("enclave: {} refused: {}{}", OpName(request->op), reply.status.ToString(),
                   base::LeftOutNote(left_out));
    }
    Bytes body = EncodeReply(reply);
    base::Status written = WriteFrame(fd, body, options.frame_timeout);
    crypto::Zeroize(body.data(), body.size());
    if (!written.ok()) {
      // A peer that does not take its replies would hold this thread and its slot.
      if (written.code() == base::StatusCode::kDeadlineExceeded && !stopping.load()) {
        ++dropped;
        if (uint64_t left_out = 0; peer_log->Allow(&left_out)) {
          spdlog::warn("enclave: dropping a peer that does not read its replies{}",
                       base::LeftOutNote(left_out));
        }
      }
      break;
    }
    connection->idle_since = NowNanos();
  }
  std::lock_guard lock(mutex);
  ::shutdown(fd, SHUT_RDWR);
  connection->done = true;
}

// Waits for the next frame to begin and marks the connection busy. False if the acceptor
// evicted it meanwhile: whatever the peer sent is then left unread, so an evicted peer's
// request is never half served.
bool EnclaveServer::Impl::AwaitFrame(Connection* connection) {
  pollfd poll_fd{connection->fd, POLLIN, 0};
  while (::poll(&poll_fd, 1, -1) < 0 && errno == EINTR) {
  }
  int64_t since = connection->idle_since.load();
  return since != kEvicted && connection->idle_since.compare_exchange_strong(since, kBusy);
}

void EnclaveServer::Impl::ReapFinished() {
  std::list<Connection> finished;
  {
    std::lock_guard lock(mutex);
    for (auto it = connections.begin(); it != connections.end();) {
      if (it->done) {
        auto next = std::next(it);
        finished.splice(finished.end(), connections, it);
        it = next;
      } else {
        ++it;
      }
    }
  }
  for (Connection& connection : finished) {
    connection.thread.join();
    ::close(connection.fd);
  }
}

EnclaveServer::EnclaveServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

base::Result<std::unique_ptr<EnclaveServer>> EnclaveServer::Start(
    const EnclaveServerOptions& options, EnclaveCore* core) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->peer_log = std::make_unique<base::LogLimiter>(std::max(1, options.peer_log_lines_per_minute),
                                                      std::chrono::minutes(1));
  impl->core = core;
  SC_ASSIGN_OR_RETURN(impl->listen_fd, ListenOn(options.listen, 16));
  if (::pipe2(impl->wake_pipe, O_CLOEXEC) != 0) {
    ::close(impl->listen_fd);
    return base::Internal("enclave: cannot create a pipe");
  }
  Impl* raw = impl.get();
  impl->acceptor = std::thread([raw] { raw->AcceptLoop(); });
  return std::unique_ptr<EnclaveServer>(new EnclaveServer(std::move(impl)));
}

void EnclaveServer::Stop() {
  if (impl_->stopping.exchange(true)) return;
  char byte = 1;
  (void)!::write(impl_->wake_pipe[1], &byte, 1);
  impl_->acceptor.join();
  {
    std::lock_guard lock(impl_->mutex);
    for (Impl::Connection& connection : impl_->connections) {
      ::shutdown(connection.fd, SHUT_RDWR);  // wakes a thread blocked in recv
    }
  }
  for (Impl::Connection& connection : impl_->connections) {
    connection.thread.join();
    ::close(connection.fd);
  }
  impl_->connections.clear();
  ::close(impl_->listen_fd);
  ::close(impl_->wake_pipe[0]);
  ::close(impl_->wake_pipe[1]);
  if (impl_->options.listen.kind == EnclaveAddress::Kind::kUnix) {
    ::unlink(impl_->options.listen.path.c_str());
  }
}

EnclaveServer::~EnclaveServer() { Stop(); }

uint64_t EnclaveServer::peers_dropped() const { return impl_->dropped.load(); }

size_t EnclaveServer::idle_connections() const {
  std::lock_guard lock(impl_->mutex);
  size_t idle = 0;
  for (const Impl::Connection& connection : impl_->connections) {
    if (!connection.done && connection.idle_since.load() > kBusy) ++idle;
  }
  return idle;
}

}  // namespace supercluster::enclave
