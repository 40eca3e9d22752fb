// EnclaveServer against hostile local peers: connections that send nothing cannot hold every
// slot (the one idle longest makes room for a newcomer), connections inside a frame or a
// call are never the ones closed, and a peer that never reads its replies is dropped. And
// the other way round: the worker's client gives up on an enclave that never answers.
#include "enclave/enclave_server.h"

#include <linux/sockios.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>
#include <chrono>
#include <filesystem>
#include <sstream>
#include <thread>

#include "attest/dev_attestor.h"
#include "client/test_enclave.h"
#include "enclave/enclave_client.h"
#include "enclave/enclave_core.h"
#include "enclave/frame_io.h"

namespace supercluster::enclave {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// An attest request as a whole frame, the cheapest call that gets a sizeable reply.
Bytes AttestFrame() {
  Bytes body = EncodeRequest({Op::kAttest, {Bytes(), Bytes()}});
  Bytes frame = FrameHeader(body.size());
  frame.insert(frame.end(), body.begin(), body.end());
  return frame;
}

// True if the server hangs up on `fd` within `wait` (the peer reads no data first).
bool HungUpWithin(int fd, std::chrono::milliseconds wait) {
  pollfd poll_fd{fd, POLLIN, 0};
  if (::poll(&poll_fd, 1, static_cast<int>(wait.count())) != 1) return false;
  char byte;
  return ::recv(fd, &byte, 1, MSG_DONTWAIT) == 0;
}

// True once the server has read everything sent on `fd` (nothing left in flight).
bool ServerReadAll(int fd) {
  for (int i = 0; i < 400; ++i) {
    int unread = -1;
    if (::ioctl(fd, SIOCOUTQ, &unread) == 0 && unread == 0) return true;
    std::this_thread::sleep_for(5ms);
  }
  return false;
}

class EnclaveServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/sc-enclave-server-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    dir_ = pattern;
    auto ca = attest::DevCa::Generate();
    ASSERT_TRUE(ca.ok()) << ca.status().ToString();
    auto core = EnclaveCore::Create({}, testing::MakeDevAttestor(*ca));
    ASSERT_TRUE(core.ok()) << core.status().ToString();
    core_ = std::move(*core);
  }

  void TearDown() override {
    for (int fd : fds_) ::close(fd);
    server_.reset();  // before the core it serves
    std::filesystem::remove_all(dir_);
  }

  void StartServer(size_t max_connections, std::chrono::milliseconds frame_timeout,
                   int peer_log_lines_per_minute = 60) {
    EnclaveServerOptions options;
    options.listen.path = (dir_ / "enclave.sock").string();
    options.max_connections = max_connections;
    options.frame_timeout = frame_timeout;
    options.peer_log_lines_per_minute = peer_log_lines_per_minute;
    address_ = options.listen;
    auto server = EnclaveServer::Start(options, core_.get());
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(*server);
  }

  // A raw connection, closed at the end of the test.
  int Connect() {
    auto fd = ConnectTo(address_);
    EXPECT_TRUE(fd.ok()) << fd.status().ToString();
    if (!fd.ok()) return -1;
    fds_.push_back(*fd);
    return *fd;
  }

  // Whether a new client gets an attestation document.
  bool NewcomerIsServed() {
    auto client = EnclaveClient::Connect(address_);
    return client.ok() && (*client)->Attest({}, {}).ok();
  }

  // A peer that has begun a frame (one byte of the header) which the server is reading.
  int PeerInsideAFrame() {
    int fd = Connect();
    EXPECT_EQ(::send(fd, AttestFrame().data(), 1, MSG_NOSIGNAL), 1);
    EXPECT_TRUE(ServerReadAll(fd));
    return fd;
  }

  // A peer that sends attest requests and never reads the answers, until the server stops
  // reading it: answers have come and its requests have not moved for 200 ms. Its thread is
  // then blocked writing an answer. (A full send buffer alone is not enough: on a loaded
  // machine it fills before the server has read anything.)
  int PeerThatNeverReads() {
    int fd = Connect();
    Bytes frame = AttestFrame();
    size_t sent_in_frame = 0;
    for (;;) {
      ssize_t sent = ::send(fd, frame.data() + sent_in_frame, frame.size() - sent_in_frame,
                            MSG_NOSIGNAL | MSG_DONTWAIT);
      if (sent > 0) {
        sent_in_frame = (sent_in_frame + static_cast<size_t>(sent)) % frame.size();
        continue;
      }
      if (sent < 0 && errno != EAGAIN) break;  // already dropped
      int answered = 0;
      pollfd writable{fd, POLLOUT, 0};
      if (::poll(&writable, 1, 200) == 0 && ::ioctl(fd, FIONREAD, &answered) == 0 &&
          answered > 0) {
        break;
      }
    }
    return fd;
  }

  // Waits until the server has `count` idle connections.
  bool IdleConnectionsBecome(size_t count) {
    for (int i = 0; i < 400; ++i) {
      if (server_->idle_connections() == count) return true;
      std::this_thread::sleep_for(5ms);
    }
    return false;
  }

  std::filesystem::path dir_;
  EnclaveAddress address_;
  std::unique_ptr<EnclaveCore> core_;
  std::unique_ptr<EnclaveServer> server_;
  std::vector<int> fds_;
};

TEST_F(EnclaveServerTest, TheConnectionIdleLongestMakesRoomForANewOne) {
  StartServer(3, 5s);
  int idle[3];
  for (int& fd : idle) fd = Connect();
  EXPECT_TRUE(NewcomerIsServed());
  EXPECT_TRUE(HungUpWithin(idle[0], 2s)) << "the oldest idle peer should be closed";
  EXPECT_FALSE(HungUpWithin(idle[1], 0ms));
  EXPECT_FALSE(HungUpWithin(idle[2], 0ms));
  EXPECT_EQ(server_->peers_dropped(), 0u) << "an evicted peer broke no rule";
}

TEST_F(EnclaveServerTest, ANewcomerIsRefusedWhileNoConnectionIsIdle) {
  StartServer(2, 5s);
  int inside_frame = PeerInsideAFrame();
  PeerThatNeverReads();
  ASSERT_EQ(server_->idle_connections(), 0u);
  int newcomer = Connect();
  EXPECT_TRUE(HungUpWithin(newcomer, 2s)) << "no connection is idle: refuse the newcomer";

  // The peer inside a frame finishes it, is answered and waits for its next frame: now it is
  // the idle one, and the next newcomer takes its place. (It turns idle just after its answer
  // is sent, so wait for that.)
  Bytes rest = AttestFrame();
  ASSERT_EQ(::send(inside_frame, rest.data() + 1, rest.size() - 1, MSG_NOSIGNAL),
            static_cast<ssize_t>(rest.size() - 1));
  ASSERT_TRUE(ReadFrame(inside_frame, kDefaultMaxFrameBytes, 2s).ok());
  ASSERT_TRUE(IdleConnectionsBecome(1));
  EXPECT_TRUE(NewcomerIsServed());
  EXPECT_TRUE(HungUpWithin(inside_frame, 2s));
}

TEST_F(EnclaveServerTest, APeerThatNeverReadsIsDroppedAndOthersAreServed) {
  constexpr auto kTimeout = 300ms;
  StartServer(4, kTimeout);
  Clock::time_point start = Clock::now();
  int greedy = PeerThatNeverReads();
  auto other = EnclaveClient::Connect(address_);
  ASSERT_TRUE(other.ok());
  EXPECT_TRUE((*other)->Attest({}, {}).ok()) << "the others are served meanwhile";

  // The greedy peer's unread answers stay readable; what it sees is the hang-up.
  pollfd hang_up{greedy, POLLRDHUP, 0};
  ASSERT_EQ(::poll(&hang_up, 1, 5000), 1) << "a peer that never reads should be dropped";
  EXPECT_NE(hang_up.revents & (POLLRDHUP | POLLHUP), 0);
  auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
  EXPECT_GE(waited, kTimeout);
  EXPECT_LT(waited, kTimeout + 1500ms);
  EXPECT_EQ(server_->peers_dropped(), 1u);
  EXPECT_TRUE((*other)->Attest({}, {}).ok());
  std::printf("dropped %lld ms after it began sending (timeout %lld ms)\n",
              static_cast<long long>(waited.count()), static_cast<long long>(kTimeout.count()));
}

// A peer that misbehaves in a loop gets a few lines in the log, not one per connection.
TEST_F(EnclaveServerTest, LinesAboutDroppedPeersKeepToTheirBudget) {
  StartServer(8, 5s, /*peer_log_lines_per_minute=*/2);
  std::ostringstream log;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(log);
  spdlog::default_logger()->sinks().push_back(sink);
  constexpr int kPeers = 6;
  const Bytes garbage = {0xde, 0xad, 0xbe, 0xef};
  Bytes frame = FrameHeader(garbage.size());
  frame.insert(frame.end(), garbage.begin(), garbage.end());
  for (int i = 0; i < kPeers; ++i) {
    int fd = Connect();
    ASSERT_EQ(::send(fd, frame.data(), frame.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(frame.size()));
    EXPECT_TRUE(HungUpWithin(fd, 2s)) << "a peer that sent garbage should be dropped";
  }
  for (int i = 0; i < 200 && server_->peers_dropped() < kPeers; ++i) {
    std::this_thread::sleep_for(5ms);
  }
  spdlog::default_logger()->flush();
  spdlog::default_logger()->sinks().pop_back();
  EXPECT_EQ(server_->peers_dropped(), static_cast<uint64_t>(kPeers));
  const std::string text = log.str();
  size_t lines = 0;
  for (size_t at = text.find("sent garbage"); at != std::string::npos;
       at = text.find("sent garbage", at + 1)) {
    ++lines;
  }
  EXPECT_EQ(lines, 2u) << text;
}

}  // namespace
}  // namespace supercluster::enclave

namespace supercluster::enclave {
namespace {

// The worker's side: an enclave that takes a call and never answers fails the call within
// the client's reply_timeout (worker.enclave_timeout), instead of holding the worker's
// thread for as long as the enclave stays silent.
TEST(EnclaveClientTest, AnEnclaveThatNeverAnswersFailsTheCallInTime) {
  char pattern[] = "/tmp/sc-enclave-client-XXXXXX";
  ASSERT_NE(::mkdtemp(pattern), nullptr);
  const std::filesystem::path dir = pattern;
  auto address = EnclaveAddress::Parse("unix://" + (dir / "silent.sock").string());
  ASSERT_TRUE(address.ok()) << address.status().ToString();
  auto listener = ListenOn(*address, 4);  // accepts (the kernel does), never reads or answers
  ASSERT_TRUE(listener.ok()) << listener.status().ToString();

  EnclaveClientOptions options;
  options.reply_timeout = 300ms;
  auto client = EnclaveClient::Connect(*address, options);
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  // Should the call wait without end, closing the listener after 3 s resets the
  // connection, so that the test fails instead of hanging.
  std::thread watchdog([fd = *listener] {
    std::this_thread::sleep_for(3s);
    ::close(fd);
  });
  auto started = Clock::now();
  auto attested = (*client)->Attest({}, {});
  auto took = Clock::now() - started;
  EXPECT_FALSE(attested.ok());
  EXPECT_EQ(attested.status().code(), base::StatusCode::kUnavailable)
      << attested.status().ToString();
  EXPECT_GE(took, 250ms);
  EXPECT_LT(took, 2s) << "the call waited far past its reply_timeout";

  watchdog.join();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace supercluster::enclave
