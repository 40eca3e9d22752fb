#include "net/test_support.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <stdexcept>

namespace supercluster::net::testing {

ServerOptions TestServerOptions() {
  ServerOptions options = ServerOptions::FromConfig(base::Config::Defaults());
  options.io_threads = 2;
  options.idle_timeout = std::chrono::milliseconds(2000);
  options.read_timeout = std::chrono::milliseconds(2000);
  options.write_timeout = std::chrono::milliseconds(2000);
  options.drain_timeout = std::chrono::milliseconds(3000);
  return options;
}

ClientOptions TestClientOptions() {
  ClientOptions options = ClientOptions::FromConfig(base::Config::Defaults());
  options.connect_timeout = std::chrono::milliseconds(2000);
  options.request_timeout = std::chrono::milliseconds(5000);
  return options;
}

TestServer::TestServer(ServerOptions options, std::shared_ptr<HttpRouter> router)
    : server_(std::make_unique<HttpServer>(std::move(options), std::move(router))) {
  auto endpoint = ParseEndpoint("127.0.0.1:0");
  if (!endpoint.ok()) throw std::runtime_error(endpoint.status().ToString());
  if (auto status = server_->Listen(*endpoint); !status.ok()) {
    throw std::runtime_error(status.ToString());
  }
  if (auto status = server_->Start(); !status.ok()) throw std::runtime_error(status.ToString());
  port_ = server_->BoundEndpoints().at(0).port;
}

TestServer::~TestServer() { server_->Stop(); }

Endpoint TestServer::endpoint() const {
  Endpoint endpoint;
  endpoint.host = "127.0.0.1";
  endpoint.port = port_;
  return endpoint;
}

RawConnection::RawConnection(uint16_t port) {
  fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    ::close(fd_);
    fd_ = -1;
  }
}

RawConnection::~RawConnection() {
  if (fd_ >= 0) ::close(fd_);
}

bool RawConnection::Send(std::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t sent = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (sent <= 0) return false;
    bytes.remove_prefix(static_cast<size_t>(sent));
  }
  return true;
}

namespace {

// Waits for readability up to the deadline and reads once. Returns bytes read, 0 on EOF,
// -1 on error or timeout (with *timed_out set for the latter).
ssize_t ReadOnce(int fd, std::chrono::steady_clock::time_point deadline, std::string* out,
                 bool* timed_out) {
  *timed_out = false;
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  if (left.count() <= 0) {
    *timed_out = true;
    return -1;
  }
  pollfd poll_fd{fd, POLLIN, 0};
  int ready = ::poll(&poll_fd, 1, static_cast<int>(left.count()));
  if (ready == 0) {
    *timed_out = true;
    return -1;
  }
  char buffer[65536];
  ssize_t got = ::recv(fd, buffer, sizeof(buffer), 0);
  if (got > 0) out->append(buffer, static_cast<size_t>(got));
  return got;
}

}  // namespace

std::string RawConnection::ReadUntilClose(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string out = std::move(pending_);
  pending_.clear();
  bool timed_out = false;
  while (ReadOnce(fd_, deadline, &out, &timed_out) > 0) {
  }
  return out;
}

std::string RawConnection::ReadUntil(std::string_view needle, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string out = std::move(pending_);
  pending_.clear();
  bool timed_out = false;
  while (out.find(needle) == std::string::npos &&
         ReadOnce(fd_, deadline, &out, &timed_out) > 0) {
  }
  return out;
}

bool RawConnection::WaitForClose(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  bool timed_out = false;
  while (true) {
    ssize_t got = ReadOnce(fd_, deadline, &pending_, &timed_out);
    if (got > 0) continue;
    return !timed_out;
  }
}

void RawConnection::SetReceiveBuffer(int bytes) {
  ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof(bytes));
}

size_t ResidentBytes() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoul(line.substr(6)) * 1024;
  }
  return 0;
}

std::string NumberedBytes(size_t size) {
  std::string bytes;
  bytes.reserve(size + 8);
  char block[16];
  for (size_t offset = 0; bytes.size() < size; offset += 8) {
    std::snprintf(block, sizeof(block), "%07zx ", offset);
    bytes.append(block, 8);
  }
  bytes.resize(size);
  return bytes;
}

}  // namespace supercluster::net::testing
