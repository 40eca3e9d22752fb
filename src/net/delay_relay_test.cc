// The delay relay against a real HttpServer and raw sockets: the round-trip time it adds,
// byte streams intact and in order under large transfers and jitter, the fault controls
// (cut, blackhole, drop, restore), backpressure against a receiver that does not read, and
// a target that is down.
#include "net/delay_relay.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <gtest/gtest.h>
#include <thread>

#include "net/http_client.h"
#include "net/test_support.h"

namespace supercluster::net {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using testing::RawConnection;
using testing::TestServer;

// Timing margins are generous: the tests share a small machine with other builds.
constexpr auto kMargin = 250ms;

std::shared_ptr<HttpRouter> EchoRouter(std::atomic<int>* requests = nullptr) {
  auto router = std::make_shared<HttpRouter>();
  router->Handle("GET", "/ping", [requests](HttpRequest, std::shared_ptr<Responder> responder) {
    if (requests) requests->fetch_add(1);
    responder->Send(HttpResponse::Text(200, "pong"));
  });
  router->Handle("POST", "/echo", [requests](HttpRequest request, std::shared_ptr<Responder> responder) {
    if (requests) requests->fetch_add(1);
    responder->Send(HttpResponse::Text(200, std::move(request.body)));
  });
  return router;
}

Endpoint Loopback(uint16_t port) {
  Endpoint endpoint;
  endpoint.host = "127.0.0.1";
  endpoint.port = port;
  return endpoint;
}

RelayOptions Options(uint16_t target_port, std::chrono::microseconds one_way,
                     std::chrono::microseconds jitter = 0us) {
  RelayOptions options = RelayOptions::FromConfig(base::Config::Defaults());
  options.listen = Loopback(0);
  options.target = Loopback(target_port);
  options.one_way_delay = one_way;
  options.jitter = jitter;
  return options;
}

// A relay started on a free loopback port.
std::unique_ptr<DelayRelay> StartRelay(RelayOptions options) {
  auto relay = std::make_unique<DelayRelay>(std::move(options));
  base::Status started = relay->Start();
  EXPECT_TRUE(started.ok()) << started.ToString();
  return relay;
}

HttpRequest Get(std::string target) {
  HttpRequest request;
  request.target = std::move(target);
  return request;
}

// Times one request; fails the test when it does not succeed.
Clock::duration TimedPing(HttpClient& client) {
  auto start = Clock::now();
  auto response = client.Request(Get("/ping"));
  auto elapsed = Clock::now() - start;
  EXPECT_TRUE(response.ok()) << response.status().ToString();
  if (response.ok()) {
    EXPECT_EQ(response->body, "pong");
  }
  return elapsed;
}

// Bytes whose every position is distinct enough that a dropped, duplicated or reordered
// piece changes the content.
std::string Pattern(size_t size, uint32_t seed) {
  std::string bytes(size, '\0');
  uint32_t state = seed;
  for (size_t i = 0; i < size; ++i) {
    state = state * 1664525u + 1013904223u;
    bytes[i] = static_cast<char>(state >> 24);
  }
  return bytes;
}

// A port on 127.0.0.1 with nothing listening on it (bound, then closed).
uint16_t DeadPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address));
  socklen_t length = sizeof(address);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  ::close(fd);
  return ntohs(address.sin_port);
}

// The largest buffer TCP autotuning may give a socket: the third field of
// /proc/sys/net/ipv4/<name> (tcp_rmem or tcp_wmem); Linux's defaults when unreadable.
size_t TcpBufferMax(const std::string& name) {
  std::ifstream file("/proc/sys/net/ipv4/" + name);
  size_t minimum = 0, initial = 0, maximum = 0;
  if (file >> minimum >> initial >> maximum) return maximum;
  return name == "tcp_rmem" ? 6 << 20 : 4 << 20;
}

// A listening socket whose accepted connection is read only when the test says so.
class LazyReceiver {
 public:
  LazyReceiver() {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address));
    ::listen(listen_fd_, 8);
    socklen_t length = sizeof(address);
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&address), &length);
    port_ = ntohs(address.sin_port);
  }
  ~LazyReceiver() {
    if (connection_fd_ >= 0) ::close(connection_fd_);
    ::close(listen_fd_);
  }
  uint16_t port() const { return port_; }

  // Accepts the relay's connection (waits up to `timeout`).
  bool Accept(std::chrono::milliseconds timeout) {
    pollfd poll_fd{listen_fd_, POLLIN, 0};
    if (::poll(&poll_fd, 1, static_cast<int>(timeout.count())) != 1) return false;
    connection_fd_ = ::accept(listen_fd_, nullptr, nullptr);
    return connection_fd_ >= 0;
  }

  // Reads until `size` bytes arrived, EOF, or `timeout`.
  std::string ReadExactly(size_t size, std::chrono::milliseconds timeout) {
    std::string out;
    auto deadline = Clock::now() + timeout;
    std::vector<char> buffer(1 << 16);
    while (out.size() < size && Clock::now() < deadline) {
      pollfd poll_fd{connection_fd_, POLLIN, 0};
      if (::poll(&poll_fd, 1, 100) != 1) continue;
      ssize_t got = ::recv(connection_fd_, buffer.data(),
                           std::min(buffer.size(), size - out.size()), 0);
      if (got <= 0) break;
      out.append(buffer.data(), static_cast<size_t>(got));
    }
    return out;
  }

 private:
  int listen_fd_ = -1;
  int connection_fd_ = -1;
  uint16_t port_ = 0;
};

TEST(DelayRelayTest, RequestRoundTripTakesTheConfiguredTime) {
  TestServer server(testing::TestServerOptions(), EchoRouter());
  constexpr auto kRtt = 80ms;
  auto relay = StartRelay(Options(server.port(), kRtt / 2));
  HttpClient client(relay->listen_endpoint(), testing::TestClientOptions());

  // A fresh connection pays the handshake round trip too.
  auto first = TimedPing(client);
  EXPECT_GE(first, 2 * kRtt);
  EXPECT_LT(first, 2 * kRtt + kMargin);
  // Then each request on the kept-alive connection costs one round trip.
  for (int i = 0; i < 3; ++i) {
    auto next = TimedPing(client);
    EXPECT_GE(next, kRtt);
    EXPECT_LT(next, kRtt + kMargin);
  }
  RelayStats stats = relay->Stats();
  EXPECT_EQ(stats.connections_accepted, 1u);
  EXPECT_EQ(stats.connections_open, 1u);
  EXPECT_GT(stats.bytes_to_target, 4 * std::string("GET /ping HTTP/1.1\r\n").size());
  EXPECT_GT(stats.bytes_to_client, 0u);
}

TEST(DelayRelayTest, ZeroDelayForwardsAtOnce) {
  TestServer server(testing::TestServerOptions(), EchoRouter());
  auto relay = StartRelay(Options(server.port(), 0us));
  HttpClient client(relay->listen_endpoint(), testing::TestClientOptions());
  TimedPing(client);
  EXPECT_LT(TimedPing(client), 50ms);
}

TEST(DelayRelayTest, SetDelayAppliesToLaterRequests) {
  TestServer server(testing::TestServerOptions(), EchoRouter());
  auto relay = StartRelay(Options(server.port(), 5ms));
  HttpClient client(relay->listen_endpoint(), testing::TestClientOptions());
  TimedPing(client);
  EXPECT_LT(TimedPing(client), 10ms + kMargin);
  relay->SetDelay(150ms, 0us);
  auto slow = TimedPing(client);
  EXPECT_GE(slow, 300ms);
  EXPECT_LT(slow, 300ms + kMargin);
  EXPECT_EQ(relay->Stats().one_way_delay, 150ms);
}

TEST(DelayRelayTest, JitterAddsAVaryingDelayButNeverLess) {
  TestServer server(testing::TestServerOptions(), EchoRouter());
  auto relay = StartRelay(Options(server.port(), 5ms, 20ms));
  HttpClient client(relay->listen_endpoint(), testing::TestClientOptions());
  TimedPing(client);
  Clock::duration shortest = Clock::duration::max();
  Clock::duration longest = Clock::duration::zero();
  for (int i = 0; i < 15; ++i) {
    auto elapsed = TimedPing(client);
    EXPECT_GE(elapsed, 10ms);
    shortest = std::min(shortest, elapsed);
    longest = std::max(longest, elapsed);
  }
  // Two uniform draws of 0..20 ms per request: 15 requests all within 3 ms of each other
  // would be a one-in-billions event; a relay ignoring jitter does it every time.
  EXPECT_GT(longest - shortest, 3ms);
}

// 20 MB each way through a small buffer cap (so reading pauses and resumes many times) and
// with jitter several times the delay (so release times collide): what arrives must be the
// exact bytes sent.
TEST(DelayRelayTest, LargeTransferArrivesIntactAndInOrderBothWays) {
  auto server_options = testing::TestServerOptions();
  server_options.max_body_bytes = 32 << 20;
  server_options.read_timeout = 20s;
  server_options.write_timeout = 20s;
  TestServer server(server_options, EchoRouter());
  RelayOptions options = Options(server.port(), 1ms, 4ms);
  options.max_buffered_bytes = 256 << 10;
  auto relay = StartRelay(options);
  ClientOptions client_options = testing::TestClientOptions();
  client_options.request_timeout = 60s;
  HttpClient client(relay->listen_endpoint(), client_options);

  const std::string body = Pattern(20 << 20, 7);
  HttpRequest request;
  request.method = "POST";
  request.target = "/echo";
  request.body = body;
  auto response = client.Request(request);
  ASSERT_TRUE(response.ok()) << response.status().ToString();
  ASSERT_EQ(response->body.size(), body.size());
  EXPECT_TRUE(response->body == body) << "the echoed body differs from what was sent";
  // The relay counts bytes as written when its write completes, which on a busy machine can
  // be a moment after the client has read them.
  RelayStats stats = relay->Stats();
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (stats.buffered_bytes != 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
    stats = relay->Stats();
  }
  EXPECT_GE(stats.bytes_to_target, body.size());
  EXPECT_GE(stats.bytes_to_client, body.size());
  EXPECT_EQ(stats.buffered_bytes, 0u);
}

TEST(DelayRelayTest, EndOfStreamFollowsTheData) {
  TestServer server(testing::TestServerOptions(), EchoRouter());
  auto relay = StartRelay(Options(server.port(), 20ms));
  {
    RawConnection connection(relay->listen_endpoint().port);
    ASSERT_TRUE(connection.connected());
    ASSERT_TRUE(connection.Send("GET /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
    auto start = Clock::now();
    std::string answer = connection.ReadUntilClose(3s);
    EXPECT_LT(Clock::now() - start, 2s) << "the server's close did not reach the client";
    EXPECT_NE(answer.find("200 OK"), std::string::npos) << answer;
    EXPECT_NE(answer.find("\r\n\r\npong"), std::string::npos) << answer;
    // Half-closed: the client may still send, so the relay keeps the connection.
    EXPECT_EQ(relay->Stats().connections_open, 1u);
  }
  // Both ends closed: the relay lets the connection go.
  for (int i = 0; i < 100 && (relay->Stats().connections_open != 0 ||
                              relay->Stats().target_connect_failures == 0);
       ++i) {
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(relay->Stats().connections_open, 0u);
}

TEST(DelayRelayTest, CutResetsOpenConnectionsAndRefusesNewOnesUntilRestored) {
  TestServer server(testing::TestServerOptions(), EchoRouter());
  auto relay = StartRelay(Options(server.port(), 5ms));
  RawConnection open(relay->listen_endpoint().port);
  ASSERT_TRUE(open.Send("GET /ping HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_NE(open.ReadUntil("pong", 3s).find("pong"), std::string::npos);

  relay->Cut();
  auto cut_at = Clock::now();
  EXPECT_TRUE(open.WaitForClose(1s)) << "an open connection survived the cut";
  EXPECT_LT(Clock::now() - cut_at, 1s);
  RawConnection refused(relay->listen_endpoint().port);
  // The connect itself may succeed (the kernel accepts); the relay resets it at once.
  if (refused.connected()) {
    refused.Send("GET /ping HTTP/1.1\r\nHost: x\r\n\r\n");
    EXPECT_TRUE(refused.WaitForClose(1s)) << "a new connection was not refused while cut";
  }
  HttpClient cut_client(relay->listen_endpoint(), testing::TestClientOptions());
  EXPECT_FALSE(cut_client.Request(Get("/ping")).ok());
  RelayStats stats = relay->Stats();
  EXPECT_EQ(stats.mode, RelayMode::kCut);
  EXPECT_GE(stats.connections_refused, 1u);
  EXPECT_EQ(stats.connections_reset, 1u);

  relay->Restore();
  HttpClient client(relay->listen_endpoint(), testing::TestClientOptions());
  TimedPing(client);
  EXPECT_EQ(relay->Stats().mode, RelayMode::kForward);
}

TEST(DelayRelayTest, BlackholeMakesClientsTimeOutAndRestoreResetsThoseConnections) {
  std::atomic<int> requests{0};
  TestServer server(testing::TestServerOptions(), EchoRouter(&requests));
  auto relay = StartRelay(Options(server.port(), 1ms));
  relay->Blackhole();

  ClientOptions client_options = testing::TestClientOptions();
  client_options.request_timeout = 300ms;
  HttpClient client(relay->listen_endpoint(), client_options);
  auto start = Clock::now();
  auto response = client.Request(Get("/ping"));
  EXPECT_FALSE(response.ok()) << "a blackholed relay answered";
  EXPECT_GE(Clock::now() - start, 300ms);

  // A raw connection stays open and unanswered, however much it sends.
  RawConnection held(relay->listen_endpoint().port);
  ASSERT_TRUE(held.Send("GET /ping HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_TRUE(held.Send(std::string(1 << 20, 'x')));
  EXPECT_FALSE(held.WaitForClose(300ms)) << "a blackholed connection was closed";
  EXPECT_EQ(requests.load(), 0) << "the target saw a request through a blackhole";
  EXPECT_EQ(relay->Stats().buffered_bytes, 0u);

  relay->Restore();
  EXPECT_TRUE(held.WaitForClose(1s)) << "a blackholed connection survived Restore";
  HttpClient fresh(relay->listen_endpoint(), testing::TestClientOptions());
  TimedPing(fresh);
  EXPECT_EQ(requests.load(), 1);
}

TEST(DelayRelayTest, BlackholeSilencesAnOpenConnection) {
  TestServer server(testing::TestServerOptions(), EchoRouter());
  auto relay = StartRelay(Options(server.port(), 1ms));
  RawConnection open(relay->listen_endpoint().port);
  ASSERT_TRUE(open.Send("GET /ping HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_NE(open.ReadUntil("pong", 3s).find("pong"), std::string::npos);
  relay->Blackhole();
  std::this_thread::sleep_for(20ms);  // the mode reaches the connection's strand
  ASSERT_TRUE(open.Send("GET /ping HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_EQ(open.ReadUntil("pong", 300ms).find("pong"), std::string::npos);
  EXPECT_FALSE(open.WaitForClose(100ms));
}

TEST(DelayRelayTest, DropProbabilityResetsThatShareOfNewConnections) {
  TestServer server(testing::TestServerOptions(), EchoRouter());
  auto relay = StartRelay(Options(server.port(), 0us));
  relay->SetDropProbability(1.0);
  for (int i = 0; i < 3; ++i) {
    HttpClient client(relay->listen_endpoint(), testing::TestClientOptions());
    EXPECT_FALSE(client.Request(Get("/ping")).ok());
  }
  EXPECT_GE(relay->Stats().connections_dropped, 3u);
  relay->SetDropProbability(0.0);
  HttpClient client(relay->listen_endpoint(), testing::TestClientOptions());
  TimedPing(client);
  // Out-of-range probabilities are clamped.
  relay->SetDropProbability(7.0);
  EXPECT_EQ(relay->Stats().drop_probability, 1.0);
  relay->Restore();
  EXPECT_EQ(relay->Stats().drop_probability, 0.0);
}

// The target never reads: the relay may hold at most its cap, and the sender must be
// stopped by TCP flow control instead of growing the relay's memory. Once the target
// reads, everything sent arrives in order.
TEST(DelayRelayTest, BackpressureBoundsWhatTheRelayHolds) {
  LazyReceiver receiver;
  RelayOptions options = Options(receiver.port(), 1ms);
  options.max_buffered_bytes = 256 << 10;
  auto relay = StartRelay(options);
  RawConnection sender(relay->listen_endpoint().port);
  ASSERT_TRUE(sender.connected());
  ASSERT_TRUE(receiver.Accept(2s));
  ::fcntl(sender.fd(), F_SETFL, ::fcntl(sender.fd(), F_GETFL) | O_NONBLOCK);

  // What the kernel may buffer on the way: the sender's send buffer, the relay's receive and
  // send buffers and the receiver's receive buffer, each at most the autotuning maximum.
  const size_t kernel_buffers = 2 * (TcpBufferMax("tcp_rmem") + TcpBufferMax("tcp_wmem"));
  const size_t bound = kernel_buffers + options.max_buffered_bytes;
  const std::string data = Pattern(bound + (64 << 20), 3);
  size_t sent = 0;
  auto last_progress = Clock::now();
  size_t most_buffered = 0;
  while (sent < data.size() && Clock::now() - last_progress < 500ms) {
    ssize_t wrote = ::send(sender.fd(), data.data() + sent,
                           std::min<size_t>(1 << 16, data.size() - sent), MSG_NOSIGNAL);
    if (wrote > 0) {
      sent += static_cast<size_t>(wrote);
      last_progress = Clock::now();
    } else {
      std::this_thread::sleep_for(5ms);
    }
    most_buffered = std::max<size_t>(most_buffered, relay->Stats().buffered_bytes);
  }
  // An unbounded relay would have taken everything.
  EXPECT_LE(sent, bound) << "the sender was never pushed back";
  EXPECT_LE(most_buffered, options.max_buffered_bytes);
  EXPECT_LE(relay->Stats().buffered_bytes, options.max_buffered_bytes);

  std::string received = receiver.ReadExactly(sent, 30s);
  ASSERT_EQ(received.size(), sent);
  EXPECT_TRUE(received == data.substr(0, sent)) << "bytes changed after the pause";
}

TEST(DelayRelayTest, TargetDownClosesTheClientPromptly) {
  auto relay = StartRelay(Options(DeadPort(), 10ms));
  RawConnection connection(relay->listen_endpoint().port);
  ASSERT_TRUE(connection.connected());
  auto start = Clock::now();
  EXPECT_TRUE(connection.WaitForClose(2s));
  EXPECT_LT(Clock::now() - start, 1s);
  // The client may see its connection closed a moment before the relay's counters move.
  for (int i = 0; i < 100 && (relay->Stats().connections_open != 0 ||
                              relay->Stats().target_connect_failures == 0);
       ++i) {
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(relay->Stats().target_connect_failures, 1u);
  EXPECT_EQ(relay->Stats().connections_open, 0u);
}

TEST(DelayRelayTest, OverTheConnectionLimitNewConnectionsAreReset) {
  TestServer server(testing::TestServerOptions(), EchoRouter());
  RelayOptions options = Options(server.port(), 0us);
  options.max_connections = 1;
  auto relay = StartRelay(options);
  HttpClient first(relay->listen_endpoint(), testing::TestClientOptions());
  TimedPing(first);
  HttpClient second(relay->listen_endpoint(), testing::TestClientOptions());
  EXPECT_FALSE(second.Request(Get("/ping")).ok());
  EXPECT_GE(relay->Stats().connections_refused, 1u);
}

TEST(DelayRelayTest, StartFailsWithTheAddressNamed) {
  TestServer server(testing::TestServerOptions(), EchoRouter());
  RelayOptions taken = Options(DeadPort(), 0us);
  taken.listen = Loopback(server.port());  // already in use by the server
  DelayRelay busy(taken);
  base::Status status = busy.Start();
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message().find(std::to_string(server.port())), std::string::npos)
      << status.message();

  RelayOptions unresolvable = Options(1, 0us);
  unresolvable.target.host = "no-such-host.invalid";
  DelayRelay nowhere(unresolvable);
  status = nowhere.Start();
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message().find("no-such-host.invalid"), std::string::npos) << status.message();

  RelayOptions no_buffer = Options(server.port(), 0us);
  no_buffer.max_buffered_bytes = 0;
  DelayRelay zero(no_buffer);
  EXPECT_FALSE(zero.Start().ok());
}

TEST(DelayRelayTest, StopResetsOpenConnections) {
  TestServer server(testing::TestServerOptions(), EchoRouter());
  auto relay = StartRelay(Options(server.port(), 0us));
  RawConnection open(relay->listen_endpoint().port);
  ASSERT_TRUE(open.Send("GET /ping HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_NE(open.ReadUntil("pong", 3s).find("pong"), std::string::npos);
  relay->Stop();
  EXPECT_TRUE(open.WaitForClose(1s));
  relay->Stop();  // twice is fine
}

}  // namespace
}  // namespace supercluster::net
