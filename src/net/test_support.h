// Test-only helpers for net's tests: a server on a loopback port with adjustable options,
// and a raw TCP connection for sending bytes no well-behaved client would send.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "base/config.h"
#include "net/http_client.h"
#include "net/http_server.h"

namespace supercluster::net::testing {

// Server options from the built-in defaults with short timeouts suited to tests.
ServerOptions TestServerOptions();
ClientOptions TestClientOptions();

// A started HttpServer on 127.0.0.1:<free port>. Stops on destruction.
class TestServer {
 public:
  TestServer(ServerOptions options, std::shared_ptr<HttpRouter> router);
  ~TestServer();
  uint16_t port() const { return port_; }
  Endpoint endpoint() const;
  HttpServer& server() { return *server_; }

 private:
  std::unique_ptr<HttpServer> server_;
  uint16_t port_ = 0;
};

// A blocking TCP socket to 127.0.0.1:port.
class RawConnection {
 public:
  explicit RawConnection(uint16_t port);
  ~RawConnection();
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  bool connected() const { return fd_ >= 0; }
  // Sends all bytes; false if the peer closed or reset.
  bool Send(std::string_view bytes);
  // Reads until the peer closes or `timeout` passes; returns what arrived.
  std::string ReadUntilClose(std::chrono::milliseconds timeout);
  // Reads until `needle` has arrived (or close/timeout); returns everything read so far.
  std::string ReadUntil(std::string_view needle, std::chrono::milliseconds timeout);
  // True if the peer has closed the connection (EOF or reset) within `timeout`.
  bool WaitForClose(std::chrono::milliseconds timeout);
  // Shrinks the receive buffer (before connecting data flows) to make a slow reader.
  void SetReceiveBuffer(int bytes);
  int fd() const { return fd_; }

 private:
  int fd_ = -1;
  std::string pending_;
};

// Resident set size of this process in bytes (from /proc/self/status).
size_t ResidentBytes();

// `size` bytes that differ at every offset (each 8-byte block spells its own offset in
// hex), so that a part sent twice, lost or out of order cannot go unnoticed.
std::string NumberedBytes(size_t size);

}  // namespace supercluster::net::testing
