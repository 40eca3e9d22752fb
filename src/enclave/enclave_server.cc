#include "enclave/enclave_server.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <list>
#include <mutex>
#include <thread>

#include <spdlog/spdlog.h>

#include "crypto/secret.h"
#include "enclave/frame_io.h"

namespace supercluster::enclave {

struct EnclaveServer::Impl {
  EnclaveServerOptions options;
  EnclaveCore* core = nullptr;
  int listen_fd = -1;
  int wake_pipe[2] = {-1, -1};  // written by Stop() to end the accept loop
  std::thread acceptor;
  std::atomic<bool> stopping{false};
  std::atomic<uint64_t> dropped{0};

  std::mutex mutex;
  struct Connection {
    int fd;
    std::thread thread;
    bool done = false;
  };
  std::list<Connection> connections;  // guarded by mutex

  void AcceptLoop();
  void Serve(Connection* connection);
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
    if (connections.size() >= options.max_connections) {
      spdlog::warn("enclave: refusing a connection: {} already open", connections.size());
      ::close(fd);
      continue;
    }
    Connection& connection = connections.emplace_back(Connection{fd, {}, false});
    connection.thread = std::thread([this, &connection] { Serve(&connection); });
  }
}

void EnclaveServer::Impl::Serve(Connection* connection) {
  int fd = connection->fd;
  while (!stopping.load()) {
    auto frame = ReadFrame(fd, options.max_frame_bytes, options.frame_timeout);
    if (!frame.ok()) {
      if (frame.status().message() != "closed" && !stopping.load()) {
        ++dropped;
        spdlog::warn("enclave: dropping a peer: {}", frame.status().ToString());
      }
      break;
    }
    auto request = DecodeRequest(*frame);
    crypto::Zeroize(frame->data(), frame->size());
    if (!request.ok()) {
      ++dropped;
      spdlog::warn("enclave: dropping a peer that sent garbage: {}", request.status().ToString());
      break;
    }
    Reply reply = core->Handle(*request);
    for (Bytes& field : request->fields) crypto::Zeroize(field.data(), field.size());
    if (!reply.status.ok()) {
      spdlog::info("enclave: {} refused: {}", OpName(request->op), reply.status.ToString());
    }
    Bytes body = EncodeReply(reply);
    base::Status written = WriteFrame(fd, body);
    crypto::Zeroize(body.data(), body.size());
    if (!written.ok()) break;
  }
  std::lock_guard lock(mutex);
  ::shutdown(fd, SHUT_RDWR);
  connection->done = true;
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

}  // namespace supercluster::enclave
