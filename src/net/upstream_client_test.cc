// The asynchronous upstream client against a real HttpServer on loopback (and, for answers
// no well-behaved server gives, a scripted raw socket server): requests, connection reuse,
// streaming with backpressure, cancellation, timeouts, broken answers, stale pooled
// connections, many exchanges at once and Unix sockets.
#include "net/upstream_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <boost/beast/http.hpp>
#include <condition_variable>
#include <future>
#include <gtest/gtest.h>
#include <mutex>
#include <optional>
#include <thread>

#include "net/beast_oracle.h"
#include "net/sse.h"
#include "net/test_support.h"

namespace supercluster::net {
namespace {

using namespace std::chrono_literals;
using testing::TestServer;
namespace http = boost::beast::http;

// What one exchange delivered, filled in by its callbacks on the client's io threads.
struct Outcome {
  std::mutex mutex;
  std::condition_variable changed;
  std::optional<ResponseHead> head;
  std::string body;
  int pieces = 0;
  int done_count = 0;
  bool data_after_done = false;
  UpstreamResult result;
  // With auto_resume off, the latest piece's resume waits here for the test to call it.
  bool auto_resume = true;
  std::function<void()> pending_resume;

  template <class Predicate>
  bool WaitFor(Predicate predicate, std::chrono::milliseconds timeout = 10s) {
    std::unique_lock lock(mutex);
    return changed.wait_for(lock, timeout, [&] { return predicate(); });
  }
  bool WaitDone(std::chrono::milliseconds timeout = 10s) {
    return WaitFor([this] { return done_count > 0; }, timeout);
  }
  // Calls the pending resume, if any; true when there was one.
  bool ResumeOnce() {
    std::function<void()> resume;
    {
      std::lock_guard lock(mutex);
      resume = std::move(pending_resume);
      pending_resume = nullptr;
    }
    if (!resume) return false;
    resume();
    return true;
  }
};

UpstreamCallbacks CallbacksFor(std::shared_ptr<Outcome> outcome) {
  UpstreamCallbacks callbacks;
  callbacks.on_head = [outcome](const ResponseHead& head) {
    std::lock_guard lock(outcome->mutex);
    outcome->head = head;
    outcome->changed.notify_all();
  };
  callbacks.on_data = [outcome](std::string_view data, std::function<void()> resume) {
    bool resume_now;
    {
      std::lock_guard lock(outcome->mutex);
      if (outcome->done_count > 0) outcome->data_after_done = true;
      outcome->body.append(data);
      ++outcome->pieces;
      resume_now = outcome->auto_resume;
      if (!resume_now) outcome->pending_resume = resume;
      outcome->changed.notify_all();
    }
    if (resume_now) resume();
  };
  callbacks.on_done = [outcome](const UpstreamResult& result) {
    std::lock_guard lock(outcome->mutex);
    ++outcome->done_count;
    outcome->result = result;
    outcome->changed.notify_all();
  };
  return callbacks;
}

UpstreamOptions TestUpstreamOptions() {
  UpstreamOptions options;
  options.io_threads = 2;
  options.connect_timeout = 2000ms;
  options.response_timeout = 5000ms;
  return options;
}

HttpRequest Get(std::string target) {
  HttpRequest request;
  request.target = std::move(target);
  return request;
}

// Sends GET `target` and waits for the exchange to end (10 s at most); returns how long it
// took.
std::chrono::steady_clock::duration TimedExchange(UpstreamClient& client,
                                                  const Endpoint& endpoint,
                                                  std::string target,
                                                  std::shared_ptr<Outcome> outcome) {
  const auto sent_at = std::chrono::steady_clock::now();
  client.Send(endpoint, Get(std::move(target)), CallbacksFor(outcome));
  EXPECT_TRUE(outcome->WaitDone()) << "the exchange did not end";
  return std::chrono::steady_clock::now() - sent_at;
}

HttpRequest Post(std::string target, std::string body) {
  HttpRequest request;
  request.method = "POST";
  request.target = std::move(target);
  request.body = std::move(body);
  return request;
}

class CountingObserver : public ServerObserver {
 public:
  void OnRequestDone(const std::string&, const std::string&, int,
                     std::chrono::nanoseconds) override {}
  void OnConnectionOpened() override { ++opened; }
  void OnConnectionClosed() override { ++closed; }
  std::atomic<int> opened{0};
  std::atomic<int> closed{0};
};

// Producer threads started by handlers, joined when the fixture ends.
class Producers {
 public:
  ~Producers() { JoinAll(); }
  void Start(std::function<void()> work) {
    std::lock_guard lock(mutex_);
    threads_.emplace_back(std::move(work));
  }
  void JoinAll() {
    std::vector<std::thread> threads;
    {
      std::lock_guard lock(mutex_);
      threads.swap(threads_);
    }
    for (auto& thread : threads) thread.join();
  }

 private:
  std::mutex mutex_;
  std::vector<std::thread> threads_;
};

std::shared_ptr<HttpRouter> BasicRouter() {
  auto router = std::make_shared<HttpRouter>();
  router->Handle("GET", "/peer", [](HttpRequest request, std::shared_ptr<Responder> responder) {
    responder->Send(HttpResponse::Text(200, request.remote_address));
  });
  router->Handle("HEAD", "/peer", [](HttpRequest request, std::shared_ptr<Responder> responder) {
    responder->Send(HttpResponse::Text(200, request.remote_address));
  });
  router->Handle("POST", "/echo", [](HttpRequest request, std::shared_ptr<Responder> responder) {
    HttpResponse response = HttpResponse::Text(200, request.body);
    response.headers.Set("X-Method", request.method);
    response.headers.Set("X-Host", request.headers.Get("Host"));
    responder->Send(std::move(response));
  });
  return router;
}

ServerOptions ObservedServerOptions(CountingObserver* observer) {
  auto options = testing::TestServerOptions();
  options.observer = observer;
  return options;
}

// --- A raw socket server that follows a script, for answers HttpServer never gives. ---

bool WriteAll(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t sent = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (sent <= 0) return false;
    bytes.remove_prefix(static_cast<size_t>(sent));
  }
  return true;
}

// Reads until the end of a request head (the scripted tests send no bodies); "" when the
// peer closed or nothing came within 3 s.
std::string ReadRequestHead(int fd) {
  std::string received;
  char buffer[4096];
  while (received.find("\r\n\r\n") == std::string::npos) {
    pollfd poller{fd, POLLIN, 0};
    if (::poll(&poller, 1, 3000) <= 0) return "";
    ssize_t got = ::recv(fd, buffer, sizeof(buffer), 0);
    if (got <= 0) return "";
    received.append(buffer, static_cast<size_t>(got));
  }
  return received;
}

class ScriptedServer {
 public:
  // `script(fd, index)` serves the index-th accepted connection (0-based); the server
  // closes the socket after the script returns.
  explicit ScriptedServer(std::function<void(int fd, int index)> script)
      : script_(std::move(script)) {
    listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(listener_, reinterpret_cast<sockaddr*>(&address), sizeof(address));
    ::listen(listener_, 16);
    socklen_t length = sizeof(address);
    ::getsockname(listener_, reinterpret_cast<sockaddr*>(&address), &length);
    port_ = ntohs(address.sin_port);
    thread_ = std::thread([this] { Run(); });
  }
  ~ScriptedServer() {
    stop_ = true;
    thread_.join();
    ::close(listener_);
  }
  Endpoint endpoint() const {
    Endpoint endpoint;
    endpoint.host = "127.0.0.1";
    endpoint.port = port_;
    return endpoint;
  }
  int accepted() const { return accepted_.load(); }

 private:
  void Run() {
    while (!stop_) {
      pollfd poller{listener_, POLLIN, 0};
      if (::poll(&poller, 1, 50) <= 0) continue;
      int fd = ::accept(listener_, nullptr, nullptr);
      if (fd < 0) continue;
      int index = accepted_++;
      script_(fd, index);
      ::close(fd);
    }
  }

  std::function<void(int, int)> script_;
  int listener_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0};
  std::thread thread_;
};

// --- Tests. ---

TEST(UpstreamClientTest, GetAndPostRoundTrip) {
  TestServer server(testing::TestServerOptions(), BasicRouter());
  UpstreamClient client(TestUpstreamOptions());

  auto get = std::make_shared<Outcome>();
  client.Send(server.endpoint(), Get("/peer"), CallbacksFor(get));
  ASSERT_TRUE(get->WaitDone());
  EXPECT_TRUE(get->result.status.ok()) << get->result.status.ToString();
  EXPECT_TRUE(get->result.head_received);
  ASSERT_TRUE(get->head.has_value());
  EXPECT_EQ(get->head->status, 200);
  EXPECT_EQ(get->body.rfind("127.0.0.1:", 0), 0u) << get->body;

  auto post = std::make_shared<Outcome>();
  std::string body = std::string(100000, 'z') + "end";
  HttpRequest request = Post("/echo", body);
  request.headers.Set("Content-Length", "3");  // replaced by the real length
  client.Send(server.endpoint(), std::move(request), CallbacksFor(post));
  ASSERT_TRUE(post->WaitDone());
  EXPECT_TRUE(post->result.status.ok()) << post->result.status.ToString();
  EXPECT_EQ(post->body, body);
  EXPECT_GT(post->pieces, 1) << "a 100 kB body should arrive in more than one piece";
  EXPECT_EQ(post->head->headers.Get("X-Method"), "POST");
  EXPECT_EQ(post->head->headers.Get("X-Host"), "127.0.0.1:" + std::to_string(server.port()));
  EXPECT_EQ(post->done_count, 1);
}

TEST(UpstreamClientTest, RequestLargerThanTheSocketBuffersArrivesIntact) {
  // Against an upstream that does not read yet, most of 8 MiB cannot go at once; the rest
  // must follow, in order, when it does.
  const std::string body = testing::NumberedBytes(8 << 20);
  std::atomic<bool> intact{false};
  ScriptedServer server([&](int fd, int) {
    std::this_thread::sleep_for(200ms);
    std::string received;
    char chunk[65536];
    size_t head_end = std::string::npos;
    while (head_end == std::string::npos || received.size() < head_end + 4 + body.size()) {
      ssize_t got = ::recv(fd, chunk, sizeof(chunk), 0);
      if (got <= 0) return;
      received.append(chunk, static_cast<size_t>(got));
      if (head_end == std::string::npos) head_end = received.find("\r\n\r\n");
    }
    intact = received.starts_with("POST /upload HTTP/1.1\r\n") &&
             received.find("Content-Length: " + std::to_string(body.size()) + "\r\n") <
                 head_end &&
             received.compare(head_end + 4, std::string::npos, body) == 0;
    const std::string answer = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    ::send(fd, answer.data(), answer.size(), MSG_NOSIGNAL);
  });
  UpstreamClient client(TestUpstreamOptions());
  auto outcome = std::make_shared<Outcome>();
  client.Send(server.endpoint(), Post("/upload", body), CallbacksFor(outcome));
  ASSERT_TRUE(outcome->WaitDone());
  EXPECT_TRUE(outcome->result.status.ok()) << outcome->result.status.ToString();
  EXPECT_TRUE(intact);
  EXPECT_EQ(outcome->body, "ok");
}

TEST(UpstreamClientTest, EmptyPostAndHeadRequest) {
  CountingObserver observer;
  TestServer server(ObservedServerOptions(&observer), BasicRouter());
  UpstreamClient client(TestUpstreamOptions());
  auto post = std::make_shared<Outcome>();
  client.Send(server.endpoint(), Post("/echo", ""), CallbacksFor(post));
  ASSERT_TRUE(post->WaitDone());
  EXPECT_TRUE(post->result.status.ok()) << post->result.status.ToString();
  EXPECT_EQ(post->body, "");

  // A HEAD answer has a Content-Length but no body; reading one would hang or desync.
  HttpRequest head_request = Get("/peer");
  head_request.method = "HEAD";
  auto head = std::make_shared<Outcome>();
  client.Send(server.endpoint(), head_request, CallbacksFor(head));
  ASSERT_TRUE(head->WaitDone());
  EXPECT_TRUE(head->result.status.ok()) << head->result.status.ToString();
  EXPECT_NE(head->head->headers.Get("Content-Length"), "0");
  EXPECT_EQ(head->body, "");

  auto after = std::make_shared<Outcome>();
  client.Send(server.endpoint(), Get("/peer"), CallbacksFor(after));
  ASSERT_TRUE(after->WaitDone());
  EXPECT_TRUE(after->result.status.ok());
  EXPECT_EQ(after->head->status, 200);
  EXPECT_EQ(observer.opened.load(), 1);
}

// Without on_data the body is read and dropped, and the connection is still reused.
TEST(UpstreamClientTest, BodyIsDiscardedWithoutOnData) {
  CountingObserver observer;
  TestServer server(ObservedServerOptions(&observer), BasicRouter());
  UpstreamClient client(TestUpstreamOptions());
  for (int i = 0; i < 3; ++i) {
    auto outcome = std::make_shared<Outcome>();
    UpstreamCallbacks callbacks = CallbacksFor(outcome);
    callbacks.on_data = nullptr;
    client.Send(server.endpoint(), Post("/echo", std::string(200000, 'd')), callbacks);
    ASSERT_TRUE(outcome->WaitDone());
    EXPECT_TRUE(outcome->result.status.ok()) << outcome->result.status.ToString();
    EXPECT_EQ(outcome->head->headers.Get("Content-Length"), "200000");
  }
  EXPECT_EQ(observer.opened.load(), 1);
}

// A null handler is a request whose answer nobody wants: read to its end and dropped, and
// the connection is kept for the next request.
TEST(UpstreamClientTest, NullHandlerReadsAndDropsTheAnswer) {
  CountingObserver observer;
  TestServer server(ObservedServerOptions(&observer), BasicRouter());
  UpstreamClient client(TestUpstreamOptions());
  client.Send(server.endpoint(), Post("/echo", std::string(200000, 'd')),
              std::shared_ptr<UpstreamHandler>());
  auto outcome = std::make_shared<Outcome>();
  client.Send(server.endpoint(), Post("/echo", "after"), CallbacksFor(outcome));
  ASSERT_TRUE(outcome->WaitDone());
  EXPECT_TRUE(outcome->result.status.ok()) << outcome->result.status.ToString();
  EXPECT_EQ(outcome->body, "after");
}

TEST(UpstreamClientTest, SequentialRequestsReuseOneConnection) {
  CountingObserver observer;
  TestServer server(ObservedServerOptions(&observer), BasicRouter());
  UpstreamClient client(TestUpstreamOptions());
  std::string first_peer;
  for (int i = 0; i < 20; ++i) {
    auto outcome = std::make_shared<Outcome>();
    client.Send(server.endpoint(), Get("/peer"), CallbacksFor(outcome));
    ASSERT_TRUE(outcome->WaitDone());
    ASSERT_TRUE(outcome->result.status.ok()) << outcome->result.status.ToString();
    if (i == 0) first_peer = outcome->body;
    EXPECT_EQ(outcome->body, first_peer) << "request " << i << " used another connection";
  }
  EXPECT_EQ(observer.opened.load(), 1);
  EXPECT_EQ(server.server().ConnectionCount(), 1u);
}

TEST(UpstreamClientTest, ConnectionCloseAnswerIsNotPooled) {
  CountingObserver observer;
  TestServer server(ObservedServerOptions(&observer), BasicRouter());
  UpstreamClient client(TestUpstreamOptions());
  for (int i = 0; i < 2; ++i) {
    HttpRequest request = Get("/peer");
    request.headers.Set("Connection", "close");
    auto outcome = std::make_shared<Outcome>();
    client.Send(server.endpoint(), request, CallbacksFor(outcome));
    ASSERT_TRUE(outcome->WaitDone());
    ASSERT_TRUE(outcome->result.status.ok()) << outcome->result.status.ToString();
  }
  EXPECT_EQ(observer.opened.load(), 2);
}

// An answer that ends its connection (Connection: close, or HTTP/1.0 without keep-alive)
// must not put it back in the pool, even when the server has not closed it yet: here it
// keeps every connection open and never reads from it again, so a second request sent on
// the first connection would get no answer.
TEST(UpstreamClientTest, AnswerEndingItsConnectionIsNotPooledBeforeTheServerCloses) {
  for (std::string answer : {"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                             "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok"}) {
    SCOPED_TRACE(answer);
    std::vector<int> kept_open;  // written by the server's thread until `raw` is gone
    {
      ScriptedServer raw([&](int fd, int) {
        ReadRequestHead(fd);
        WriteAll(fd, answer);
        kept_open.push_back(::dup(fd));  // the server closes only its own descriptor
      });
      UpstreamClient client(TestUpstreamOptions());
      for (int i = 0; i < 2; ++i) {
        auto outcome = std::make_shared<Outcome>();
        client.Send(raw.endpoint(), Get("/"), CallbacksFor(outcome));
        EXPECT_TRUE(outcome->WaitDone(2s))
            << "request " << i << " waited on a connection that ended";
        EXPECT_TRUE(outcome->result.status.ok()) << outcome->result.status.ToString();
      }
      EXPECT_EQ(raw.accepted(), 2);
    }
    for (int fd : kept_open) ::close(fd);
  }
}

// The server sends one event, then waits for the client to have it before the next: passes
// only if each piece is handed over as it arrives.
TEST(UpstreamClientTest, ServerSentEventsArrivePieceByPiece) {
  constexpr int kEvents = 5;
  std::mutex mutex;
  std::condition_variable seen_changed;
  int events_seen = 0;
  Producers producers;
  auto router = BasicRouter();
  router->Handle("GET", "/events", [&](HttpRequest, std::shared_ptr<Responder> responder) {
    producers.Start([&, responder] {
      Headers headers;
      headers.Set("Content-Type", "text/event-stream");
      responder->StartStream(200, headers);
      for (int i = 0; i < kEvents; ++i) {
        responder->Write(FormatSseEvent({"token", "piece " + std::to_string(i), ""}));
        std::unique_lock lock(mutex);
        if (!seen_changed.wait_for(lock, 5s, [&] { return events_seen > i; })) return;
      }
      responder->Finish();
    });
  });
  TestServer server(testing::TestServerOptions(), router);
  UpstreamClient client(TestUpstreamOptions());
  std::vector<std::string> data;
  auto parser = std::make_shared<SseParser>([&](const SseEvent& event) {
    std::lock_guard lock(mutex);
    data.push_back(event.data);
    ++events_seen;
    seen_changed.notify_all();
  });
  auto outcome = std::make_shared<Outcome>();
  UpstreamCallbacks callbacks = CallbacksFor(outcome);
  auto record = callbacks.on_data;
  callbacks.on_data = [parser, record](std::string_view piece, std::function<void()> resume) {
    parser->Feed(piece);
    record(piece, std::move(resume));
  };
  client.Send(server.endpoint(), Get("/events"), std::move(callbacks));
  ASSERT_TRUE(outcome->WaitDone());
  producers.JoinAll();
  EXPECT_TRUE(outcome->result.status.ok()) << outcome->result.status.ToString();
  EXPECT_EQ(outcome->head->headers.Get("Content-Type"), "text/event-stream");
  std::lock_guard lock(mutex);
  ASSERT_EQ(data.size(), static_cast<size_t>(kEvents));
  EXPECT_EQ(data[3], "piece 3");
  EXPECT_GE(outcome->pieces, kEvents);
}

// While the client holds back `resume`, the server's writes stop completing (socket buffers
// fill); once it resumes, everything arrives.
TEST(UpstreamClientTest, BackpressureHoldsUntilResume) {
  constexpr int kChunks = 2000;  // 128 MiB: far beyond what loopback socket buffers hold
  constexpr size_t kChunkBytes = 64 * 1024;
  std::atomic<int> written{0};
  std::atomic<bool> write_failed{false};
  Producers producers;
  auto router = BasicRouter();
  router->Handle("GET", "/flood", [&](HttpRequest, std::shared_ptr<Responder> responder) {
    producers.Start([&, responder] {
      responder->StartStream(200, {});
      std::string chunk(kChunkBytes, 'x');
      for (int i = 0; i < kChunks; ++i) {
        std::promise<base::Status> done;
        responder->Write(chunk, [&done](base::Status status) { done.set_value(status); });
        auto future = done.get_future();
        if (future.wait_for(20s) != std::future_status::ready || !future.get().ok()) {
          write_failed = true;
          return;
        }
        ++written;
      }
      responder->Finish();
    });
  });
  auto server_options = testing::TestServerOptions();
  server_options.write_timeout = 10000ms;
  TestServer server(server_options, router);
  UpstreamClient client(TestUpstreamOptions());
  auto outcome = std::make_shared<Outcome>();
  outcome->auto_resume = false;
  client.Send(server.endpoint(), Get("/flood"), CallbacksFor(outcome));
  ASSERT_TRUE(outcome->WaitFor([&] { return outcome->pieces > 0; }));

  // Wait for the server's writes to stall, then check they stay stalled.
  int last = -1;
  for (int i = 0; i < 50 && written.load() != last; ++i) {
    last = written.load();
    std::this_thread::sleep_for(200ms);
  }
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(written.load(), last) << "server kept writing while the client held back";
  EXPECT_LT(last, kChunks / 2) << "written before the stall";
  {
    std::lock_guard lock(outcome->mutex);
    EXPECT_EQ(outcome->pieces, 1) << "on_data ran again without resume";
  }

  // Resume piece by piece for a while, then let every later piece resume itself.
  for (int piece = 0;; ++piece) {
    if (piece == 100) {
      std::lock_guard lock(outcome->mutex);
      outcome->auto_resume = true;
    }
    if (!outcome->WaitFor([&] { return outcome->done_count > 0 || outcome->pending_resume; },
                          10s)) {
      FAIL() << "stream stalled after resume";
    }
    if (!outcome->ResumeOnce()) break;
  }
  producers.JoinAll();
  EXPECT_FALSE(write_failed.load());
  EXPECT_TRUE(outcome->result.status.ok()) << outcome->result.status.ToString();
  EXPECT_EQ(outcome->body.size(), kChunks * kChunkBytes);
  EXPECT_EQ(written.load(), kChunks);
}

TEST(UpstreamClientTest, CancelMidStreamClosesTheConnectionAndEndsOnce) {
  std::promise<void> server_saw_close;
  auto server_saw_close_future = server_saw_close.get_future();
  Producers producers;
  auto router = BasicRouter();
  router->Handle("GET", "/endless", [&](HttpRequest, std::shared_ptr<Responder> responder) {
    responder->OnClose([&server_saw_close] { server_saw_close.set_value(); });
    producers.Start([responder] {
      responder->StartStream(200, {});
      for (int i = 0; i < 500 && !responder->Closed(); ++i) {
        responder->Write("tick;");
        std::this_thread::sleep_for(20ms);
      }
    });
  });
  TestServer server(testing::TestServerOptions(), router);
  UpstreamClient client(TestUpstreamOptions());
  auto outcome = std::make_shared<Outcome>();
  auto exchange = client.Send(server.endpoint(), Get("/endless"), CallbacksFor(outcome));
  ASSERT_TRUE(outcome->WaitFor([&] { return outcome->body.find("tick;tick;") != std::string::npos; }));
  exchange->Cancel();
  exchange->Cancel();
  ASSERT_TRUE(outcome->WaitDone());
  EXPECT_EQ(server_saw_close_future.wait_for(5s), std::future_status::ready);
  std::this_thread::sleep_for(100ms);
  exchange->Cancel();  // after the end: nothing happens
  std::lock_guard lock(outcome->mutex);
  EXPECT_EQ(outcome->done_count, 1);
  EXPECT_EQ(outcome->result.status.code(), base::StatusCode::kCancelled);
  EXPECT_TRUE(outcome->result.head_received);
  EXPECT_FALSE(outcome->data_after_done);
}

TEST(UpstreamClientTest, CancelWhilePausedAndDestructionCancelInFlight) {
  std::atomic<int> closes{0};
  std::vector<std::shared_ptr<Responder>> kept;
  std::mutex kept_mutex;
  auto router = BasicRouter();
  router->Handle("GET", "/hang", [&](HttpRequest, std::shared_ptr<Responder> responder) {
    responder->OnClose([&closes] { ++closes; });
    responder->StartStream(200, {});
    responder->Write("first");
    std::lock_guard lock(kept_mutex);
    kept.push_back(responder);
  });
  TestServer server(testing::TestServerOptions(), router);
  auto paused = std::make_shared<Outcome>();
  paused->auto_resume = false;
  auto waiting = std::make_shared<Outcome>();
  auto never_sent = std::make_shared<Outcome>();
  {
    UpstreamClient client(TestUpstreamOptions());
    auto exchange = client.Send(server.endpoint(), Get("/hang"), CallbacksFor(paused));
    ASSERT_TRUE(paused->WaitFor([&] { return paused->pieces == 1; }));
    exchange->Cancel();
    ASSERT_TRUE(paused->WaitDone());
    EXPECT_EQ(paused->result.status.code(), base::StatusCode::kCancelled);
    paused->ResumeOnce();  // too late: nothing more is read
    std::this_thread::sleep_for(50ms);
    {
      std::lock_guard lock(paused->mutex);
      EXPECT_EQ(paused->pieces, 1);
      EXPECT_EQ(paused->done_count, 1);
    }

    // In flight when the client goes: a streamed answer, and one cancelled at once.
    client.Send(server.endpoint(), Get("/hang"), CallbacksFor(waiting));
    ASSERT_TRUE(waiting->WaitFor([&] { return waiting->pieces == 1; }));
    client.Send(server.endpoint(), Get("/hang"), CallbacksFor(never_sent))->Cancel();
  }
  for (auto* outcome : {waiting.get(), never_sent.get()}) {
    ASSERT_TRUE(outcome->WaitDone(1s)) << "destruction left an exchange without on_done";
    EXPECT_EQ(outcome->done_count, 1);
    EXPECT_EQ(outcome->result.status.code(), base::StatusCode::kCancelled);
  }
  for (int i = 0; i < 100 && closes.load() < 2; ++i) std::this_thread::sleep_for(20ms);
  EXPECT_GE(closes.load(), 2);
  std::lock_guard lock(kept_mutex);
  kept.clear();
}

TEST(UpstreamClientTest, ConnectRefusedIsUnavailableBeforeTheHead) {
  // A port that was free a moment ago: nothing listens there.
  int probe = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(probe, reinterpret_cast<sockaddr*>(&address), sizeof(address));
  socklen_t length = sizeof(address);
  ::getsockname(probe, reinterpret_cast<sockaddr*>(&address), &length);
  ::close(probe);
  Endpoint endpoint;
  endpoint.host = "127.0.0.1";
  endpoint.port = ntohs(address.sin_port);

  UpstreamClient client(TestUpstreamOptions());
  auto outcome = std::make_shared<Outcome>();
  client.Send(endpoint, Get("/"), CallbacksFor(outcome));
  ASSERT_TRUE(outcome->WaitDone());
  EXPECT_EQ(outcome->result.status.code(), base::StatusCode::kUnavailable)
      << outcome->result.status.ToString();
  EXPECT_FALSE(outcome->result.head_received);
  EXPECT_FALSE(outcome->head.has_value());
}

TEST(UpstreamClientTest, UnresolvableHostAndTlsEndpointFailCleanly) {
  UpstreamClient client(TestUpstreamOptions());
  auto unresolvable = std::make_shared<Outcome>();
  Endpoint nowhere;
  nowhere.host = "no-such-host.invalid";
  nowhere.port = 80;
  client.Send(nowhere, Get("/"), CallbacksFor(unresolvable));
  ASSERT_TRUE(unresolvable->WaitDone());
  EXPECT_EQ(unresolvable->result.status.code(), base::StatusCode::kUnavailable);
  EXPECT_FALSE(unresolvable->result.head_received);

  auto tls = std::make_shared<Outcome>();
  auto endpoint = ParseEndpoint("https://127.0.0.1:1");
  ASSERT_TRUE(endpoint.ok());
  client.Send(*endpoint, Get("/"), CallbacksFor(tls));
  ASSERT_TRUE(tls->WaitDone());
  EXPECT_EQ(tls->result.status.code(), base::StatusCode::kFailedPrecondition);
}

TEST(UpstreamClientTest, HostileRequestFieldsAreRefusedUnsent) {
  CountingObserver observer;
  TestServer server(ObservedServerOptions(&observer), BasicRouter());
  UpstreamClient client(TestUpstreamOptions());
  std::vector<HttpRequest> hostile(9, Get("/peer"));
  hostile[0].headers.Add("X-Smuggle", "a\r\nContent-Length: 0\r\n\r\nGET /admin HTTP/1.1");
  hostile[1].headers.Add("Bad Name", "x");
  hostile[2].target = "/peer HTTP/1.1\r\nX: y";
  hostile[3].method = "GET /";
  // A name known when compiling spares only the name's check, never the value's.
  hostile[4].headers.AddKnown("X-Smuggle", "a\r\nContent-Length: 0\r\n\r\nGET /admin HTTP/1.1");
  // Values and targets are checked eight bytes at a time, then the rest one by one: the
  // bad byte in a later word and in the last few bytes.
  hostile[5].headers.Add("X-Deep", "0123456789\nabcdefgh");                    // second word
  hostile[6].headers.Add("X-Deep", std::string("0123456789abcdef") + '\0');  // last bytes
  hostile[7].target = "/peer/01 23456789abcdef";                              // second word
  hostile[8].target = "/peer/0123456789\x7f";                                 // last bytes
  for (auto& request : hostile) {
    auto outcome = std::make_shared<Outcome>();
    client.Send(server.endpoint(), request, CallbacksFor(outcome));
    ASSERT_TRUE(outcome->WaitDone());
    EXPECT_EQ(outcome->result.status.code(), base::StatusCode::kInvalidArgument);
    EXPECT_FALSE(outcome->result.head_received);
  }
  EXPECT_EQ(observer.opened.load(), 0);
}

TEST(UpstreamClientTest, ResponseTimeoutBeforeHeadAndBetweenPieces) {
  std::vector<std::shared_ptr<Responder>> kept;
  std::mutex kept_mutex;
  auto router = BasicRouter();
  router->Handle("GET", "/silent", [&](HttpRequest, std::shared_ptr<Responder> responder) {
    std::lock_guard lock(kept_mutex);
    kept.push_back(responder);
  });
  router->Handle("GET", "/stalls", [&](HttpRequest, std::shared_ptr<Responder> responder) {
    responder->StartStream(200, {});
    responder->Write("one piece");
    std::lock_guard lock(kept_mutex);
    kept.push_back(responder);
  });
  TestServer server(testing::TestServerOptions(), router);
  auto options = TestUpstreamOptions();
  options.response_timeout = 300ms;
  UpstreamClient client(options);

  auto silent = std::make_shared<Outcome>();
  const auto elapsed = TimedExchange(client, server.endpoint(), "/silent", silent);
  EXPECT_EQ(silent->result.status.code(), base::StatusCode::kDeadlineExceeded)
      << silent->result.status.ToString();
  EXPECT_FALSE(silent->result.head_received);
  EXPECT_GE(elapsed, 250ms);
  EXPECT_LT(elapsed, 3s);

  auto stalls = std::make_shared<Outcome>();
  client.Send(server.endpoint(), Get("/stalls"), CallbacksFor(stalls));
  ASSERT_TRUE(stalls->WaitDone());
  EXPECT_EQ(stalls->result.status.code(), base::StatusCode::kDeadlineExceeded);
  EXPECT_TRUE(stalls->result.head_received);
  EXPECT_EQ(stalls->body, "one piece");
  std::lock_guard lock(kept_mutex);
  kept.clear();
}

// A connection's deadline watch outlives its exchanges: armed by one, it fires while the
// connection is pooled (and must do nothing), and later fires early for the next exchange
// on it (and must be armed again for that one's deadline, not forget it).
TEST(UpstreamClientTest, ResponseTimeoutFiresOnAConnectionReusedFromThePool) {
  std::vector<std::shared_ptr<Responder>> kept;
  std::string silent_peer;
  std::mutex kept_mutex;
  auto router = BasicRouter();
  router->Handle("GET", "/silent", [&](HttpRequest request, std::shared_ptr<Responder> responder) {
    std::lock_guard lock(kept_mutex);
    silent_peer = request.remote_address;
    kept.push_back(responder);
  });
  TestServer server(testing::TestServerOptions(), router);
  auto options = TestUpstreamOptions();
  options.response_timeout = 300ms;
  UpstreamClient client(options);

  auto first = std::make_shared<Outcome>();
  client.Send(server.endpoint(), Get("/peer"), CallbacksFor(first));
  ASSERT_TRUE(first->WaitDone());
  ASSERT_TRUE(first->result.status.ok()) << first->result.status.ToString();
  std::this_thread::sleep_for(500ms);  // the watch fires with the connection in the pool

  auto second = std::make_shared<Outcome>();
  client.Send(server.endpoint(), Get("/peer"), CallbacksFor(second));
  ASSERT_TRUE(second->WaitDone());
  ASSERT_TRUE(second->result.status.ok()) << second->result.status.ToString();
  EXPECT_EQ(second->body, first->body) << "not the pooled connection";

  // The watch is still armed for the second exchange's deadline, 100 ms before this one's:
  // when it fires, it must be armed again.
  std::this_thread::sleep_for(100ms);
  auto silent = std::make_shared<Outcome>();
  const auto elapsed = TimedExchange(client, server.endpoint(), "/silent", silent);
  EXPECT_EQ(silent->result.status.code(), base::StatusCode::kDeadlineExceeded)
      << silent->result.status.ToString();
  EXPECT_GE(elapsed, 250ms);
  EXPECT_LT(elapsed, 3s);
  std::lock_guard lock(kept_mutex);
  EXPECT_EQ(silent_peer, first->body) << "not the pooled connection";
  kept.clear();
}

// A pooled connection's watch stays armed until its timeout, and an armed timer keeps an
// io_context's run() going: the client's destructor must not wait for it.
TEST(UpstreamClientTest, DestructionDoesNotWaitForAPooledConnectionsDeadline) {
  TestServer server(testing::TestServerOptions(), BasicRouter());
  auto options = TestUpstreamOptions();
  options.connect_timeout = 60s;  // the first deadline the watch is armed for
  options.response_timeout = 60s;
  auto client = std::make_unique<UpstreamClient>(options);
  auto outcome = std::make_shared<Outcome>();
  client->Send(server.endpoint(), Get("/peer"), CallbacksFor(outcome));
  ASSERT_TRUE(outcome->WaitDone());
  ASSERT_TRUE(outcome->result.status.ok()) << outcome->result.status.ToString();

  const auto start = std::chrono::steady_clock::now();
  client.reset();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
}

// A pause for resume longer than the response timeout is not a timeout: the gap counts
// only while the client is reading.
TEST(UpstreamClientTest, PauseForResumeIsNotCountedAsATimeout) {
  Producers producers;
  auto router = BasicRouter();
  router->Handle("GET", "/two", [&](HttpRequest, std::shared_ptr<Responder> responder) {
    producers.Start([responder] {
      responder->StartStream(200, {});
      responder->Write("first;");
      std::this_thread::sleep_for(50ms);
      responder->Write("second;");
      responder->Finish();
    });
  });
  TestServer server(testing::TestServerOptions(), router);
  auto options = TestUpstreamOptions();
  options.response_timeout = 300ms;
  UpstreamClient client(options);
  auto outcome = std::make_shared<Outcome>();
  outcome->auto_resume = false;
  client.Send(server.endpoint(), Get("/two"), CallbacksFor(outcome));
  ASSERT_TRUE(outcome->WaitFor([&] { return outcome->pieces == 1; }));
  std::this_thread::sleep_for(700ms);
  while (outcome->WaitFor([&] { return outcome->done_count > 0 || outcome->pending_resume; }) &&
         outcome->ResumeOnce()) {
  }
  ASSERT_TRUE(outcome->WaitDone());
  producers.JoinAll();
  EXPECT_TRUE(outcome->result.status.ok()) << outcome->result.status.ToString();
  EXPECT_EQ(outcome->body, "first;second;");
}

TEST(UpstreamClientTest, ServerClosingMidBodyIsAnErrorAfterTheHead) {
  // Chunked, from HttpServer: a responder dropped without Finish closes the connection.
  auto router = BasicRouter();
  router->Handle("GET", "/cut", [](HttpRequest, std::shared_ptr<Responder> responder) {
    responder->StartStream(200, {});
    responder->Write("partial");
  });
  TestServer server(testing::TestServerOptions(), router);
  UpstreamClient client(TestUpstreamOptions());
  auto chunked = std::make_shared<Outcome>();
  client.Send(server.endpoint(), Get("/cut"), CallbacksFor(chunked));
  ASSERT_TRUE(chunked->WaitDone());
  EXPECT_FALSE(chunked->result.status.ok());
  EXPECT_TRUE(chunked->result.head_received);
  ASSERT_TRUE(chunked->head.has_value());

  // Content-Length framing, cut short by a raw server.
  ScriptedServer raw([](int fd, int) {
    ReadRequestHead(fd);
    WriteAll(fd, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789");
  });
  auto sized = std::make_shared<Outcome>();
  client.Send(raw.endpoint(), Get("/"), CallbacksFor(sized));
  ASSERT_TRUE(sized->WaitDone());
  EXPECT_EQ(sized->result.status.code(), base::StatusCode::kUnavailable)
      << sized->result.status.ToString();
  EXPECT_TRUE(sized->result.head_received);
  EXPECT_EQ(sized->body, "0123456789");
}

TEST(UpstreamClientTest, BrokenAnswersAreErrorsNeverHangs) {
  struct Case {
    std::string answer;
    base::StatusCode code;
    bool head_seen;
  };
  std::vector<Case> cases = {
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", base::StatusCode::kDataLoss,
       true},
      {"HTTP/1.1 200 OK\r\nContent-Le", base::StatusCode::kUnavailable, false},
      {"garbage that is not HTTP\r\n\r\n", base::StatusCode::kDataLoss, false},
      {"HTTP/1.1 200 OK\r\nX-Big: " + std::string(100000, 'a') + "\r\n\r\n",
       base::StatusCode::kResourceExhausted, false},
  };
  for (const auto& test_case : cases) {
    ScriptedServer raw([&](int fd, int) {
      ReadRequestHead(fd);
      WriteAll(fd, test_case.answer);
    });
    UpstreamClient client(TestUpstreamOptions());
    auto outcome = std::make_shared<Outcome>();
    client.Send(raw.endpoint(), Get("/"), CallbacksFor(outcome));
    ASSERT_TRUE(outcome->WaitDone());
    EXPECT_EQ(outcome->result.status.code(), test_case.code)
        << test_case.answer.substr(0, 40) << ": " << outcome->result.status.ToString();
    EXPECT_TRUE(outcome->result.head_received) << "bytes arrived: not safe to retry";
    EXPECT_EQ(outcome->head.has_value(), test_case.head_seen);
  }
}

// The client's parser (a fast path for plain answers that are all in the buffer, Beast's
// basic_parser for the rest) against Beast's own response_parser as the oracle: the same
// status, fields, body, and success or failure, for answers on both paths. Fields are
// compared grouped by name: Beast's container keeps repeats of a name together, ours
// keep arrival order; the order among one name's fields is the same.
TEST(UpstreamClientTest, AnswersParseAsBeastsResponseParserParsesThem) {
  const std::vector<std::string> answers = {
      // The fast path's kind.
      "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello",
      "HTTP/1.1 201 Created\r\nX-A: 1\r\nX-B: 2\r\nx-a: 3\r\nContent-Length: 2\r\n\r\nok",
      "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
      "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
      "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
      "HTTP/1.1 500 \r\nContent-Length: 3\r\nServer:  spaced \t\r\nEmpty:\r\n\r\nbad",
      // Beast's.
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
      "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
      "HTTP/1.1 204 No Content\r\n\r\n",
      "HTTP/1.1 200 OK\r\n\r\nuntil the close",
      "HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 1\r\n\r\nz",
      "HTTP/1.1 200 OK\r\nX: caf\xc3\xa9\r\nContent-Length: 1\r\n\r\nz",
      "HTTP/1.1 200 OK\r\nContent-Length: +1\r\n\r\nz",
      "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
      "HTTP/1.1 200 OK\r\nBad Name: v\r\nContent-Length: 1\r\n\r\nz",
      "HTTP/1.1 2000 OK\r\nContent-Length: 1\r\n\r\nz",
      "HTTP/1.1 200 OK\r\nContent-Length: 40000\r\n\r\n" + std::string(40000, 'L'),
  };
  for (const std::string& answer : answers) {
    SCOPED_TRACE(answer.substr(0, 60));
    http::response_parser<http::string_body> beast;
    beast.body_limit(1 << 20);
    boost::system::error_code error;
    size_t used = 0;
    while (!error && !beast.is_done() && used < answer.size()) {
      used += beast.put(boost::asio::buffer(answer.data() + used, answer.size() - used), error);
      if (error == http::error::need_more) error = {};
    }
    if (!error && !beast.is_done()) beast.put_eof(error);  // the server closes after it
    const bool beast_ok = !error && beast.is_done();

    ScriptedServer raw([&](int fd, int) {
      ReadRequestHead(fd);
      WriteAll(fd, answer);
    });
    UpstreamClient client(TestUpstreamOptions());
    auto outcome = std::make_shared<Outcome>();
    client.Send(raw.endpoint(), Get("/"), CallbacksFor(outcome));
    ASSERT_TRUE(outcome->WaitDone());
    ASSERT_EQ(outcome->result.status.ok(), beast_ok) << outcome->result.status.ToString();
    if (!beast_ok) continue;
    const auto& message = beast.get();
    ASSERT_TRUE(outcome->head.has_value());
    EXPECT_EQ(outcome->head->status, message.result_int());
    std::vector<std::pair<std::string, std::string>> fields;
    for (const auto& field : message) {
      fields.emplace_back(std::string(field.name_string()), std::string(field.value()));
    }
    EXPECT_EQ(testing::GroupedByName(outcome->head->headers.Copy()),
              testing::GroupedByName(fields));
    EXPECT_EQ(outcome->body, message.body());
  }
}

TEST(UpstreamClientTest, InterimAnswersAreSkipped) {
  ScriptedServer raw([](int fd, int) {
    ReadRequestHead(fd);
    WriteAll(fd, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 4\r\n\r\ndone");
  });
  UpstreamClient client(TestUpstreamOptions());
  auto outcome = std::make_shared<Outcome>();
  client.Send(raw.endpoint(), Get("/"), CallbacksFor(outcome));
  ASSERT_TRUE(outcome->WaitDone());
  EXPECT_TRUE(outcome->result.status.ok()) << outcome->result.status.ToString();
  EXPECT_EQ(outcome->head->status, 201);
  EXPECT_EQ(outcome->body, "done");
}

// A body without a length ends when the server closes: complete, and not pooled.
TEST(UpstreamClientTest, BodyDelimitedByCloseIsComplete) {
  ScriptedServer raw([](int fd, int) {
    ReadRequestHead(fd);
    WriteAll(fd, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end");
  });
  UpstreamClient client(TestUpstreamOptions());
  for (int i = 0; i < 2; ++i) {
    auto outcome = std::make_shared<Outcome>();
    client.Send(raw.endpoint(), Get("/"), CallbacksFor(outcome));
    ASSERT_TRUE(outcome->WaitDone());
    EXPECT_TRUE(outcome->result.status.ok()) << outcome->result.status.ToString();
    EXPECT_EQ(outcome->body, "until the end");
  }
  EXPECT_EQ(raw.accepted(), 2);
}

// The server closes a kept-alive connection just as the client reuses it (it read the
// second request and closed without an answer): the client retries once on a new
// connection, and the caller sees only the answer.
TEST(UpstreamClientTest, StalePooledConnectionIsRetriedOnce) {
  ScriptedServer raw([](int fd, int index) {
    if (index == 0) {
      ReadRequestHead(fd);
      WriteAll(fd, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst");
      ReadRequestHead(fd);  // then close without answering
      return;
    }
    ReadRequestHead(fd);
    WriteAll(fd, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nretry");
  });
  UpstreamClient client(TestUpstreamOptions());
  auto first = std::make_shared<Outcome>();
  client.Send(raw.endpoint(), Get("/"), CallbacksFor(first));
  ASSERT_TRUE(first->WaitDone());
  ASSERT_TRUE(first->result.status.ok()) << first->result.status.ToString();
  auto second = std::make_shared<Outcome>();
  client.Send(raw.endpoint(), Get("/"), CallbacksFor(second));
  ASSERT_TRUE(second->WaitDone());
  EXPECT_TRUE(second->result.status.ok()) << second->result.status.ToString();
  EXPECT_EQ(second->body, "retry");
  EXPECT_EQ(raw.accepted(), 2);
}

// A fresh connection closed without an answer is not retried: the request may be what
// made the server close.
TEST(UpstreamClientTest, FreshConnectionClosedWithoutAnswerIsNotRetried) {
  ScriptedServer raw([](int fd, int) { ReadRequestHead(fd); });
  UpstreamClient client(TestUpstreamOptions());
  auto outcome = std::make_shared<Outcome>();
  client.Send(raw.endpoint(), Get("/"), CallbacksFor(outcome));
  ASSERT_TRUE(outcome->WaitDone());
  EXPECT_EQ(outcome->result.status.code(), base::StatusCode::kUnavailable);
  EXPECT_FALSE(outcome->result.head_received);
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(raw.accepted(), 1);
}

// The common stale case: the server's idle timeout closed the pooled connection long
// before reuse; the client notices before writing and opens a new one.
TEST(UpstreamClientTest, IdleClosedPooledConnectionIsReplaced) {
  CountingObserver observer;
  auto options = ObservedServerOptions(&observer);
  options.idle_timeout = 200ms;
  TestServer server(options, BasicRouter());
  UpstreamClient client(TestUpstreamOptions());
  auto first = std::make_shared<Outcome>();
  client.Send(server.endpoint(), Get("/peer"), CallbacksFor(first));
  ASSERT_TRUE(first->WaitDone());
  ASSERT_TRUE(first->result.status.ok());
  std::this_thread::sleep_for(600ms);
  auto second = std::make_shared<Outcome>();
  client.Send(server.endpoint(), Get("/peer"), CallbacksFor(second));
  ASSERT_TRUE(second->WaitDone());
  EXPECT_TRUE(second->result.status.ok()) << second->result.status.ToString();
  EXPECT_NE(first->body, second->body);
  EXPECT_EQ(observer.opened.load(), 2);
}

// An upstream that writes its answer twice (a broken worker) leaves a stray answer on the
// pooled connection; the next request must not take it for its own, however soon it comes:
// that would hand one client another's answer. The connection is dropped instead.
TEST(UpstreamClientTest, BytesSentAfterAnAnswerNeverBecomeTheNextAnswer) {
  std::atomic<int> requests{0};
  ScriptedServer raw([&](int fd, int) {
    while (!ReadRequestHead(fd).empty()) {
      const std::string body = "answer " + std::to_string(++requests);
      const std::string answer =
          "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
      WriteAll(fd, answer);
      std::this_thread::sleep_for(20ms);
      WriteAll(fd, answer);  // again: nobody asked for this one
    }
  });
  UpstreamClient client(TestUpstreamOptions());
  for (int i = 1; i <= 3; ++i) {
    auto outcome = std::make_shared<Outcome>();
    client.Send(raw.endpoint(), Get("/"), CallbacksFor(outcome));
    ASSERT_TRUE(outcome->WaitDone(3s)) << "request " << i;
    ASSERT_TRUE(outcome->result.status.ok()) << outcome->result.status.ToString();
    EXPECT_EQ(outcome->body, "answer " + std::to_string(i)) << "request " << i;
    std::this_thread::sleep_for(50ms);  // the stray copy has arrived by now
  }
  EXPECT_EQ(raw.accepted(), 3) << "a connection with a stray answer on it was reused";
}

// Chunk-size lines and trailers are bounded as a client's are at the server: an upstream
// that sends an endless chunk extension, or ends chunk lines with a bare LF, fails the
// exchange at once instead of growing the buffer (or waiting for the timeout).
TEST(UpstreamClientTest, EndlessOrBareLineFeedChunkLinesFailTheExchange) {
  const std::string head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (const std::string& framing :
       {"5;ext=" + std::string(1 << 20, 'a'),   // a chunk extension that never ends
        std::string("5\nhello\n0\n\n"),        // bare LF line ends
        "5\r\nhello\r\n0\r\nX-Trailer: " + std::string(1 << 20, 'b')}) {  // endless trailer
    SCOPED_TRACE(framing.substr(0, 20));
    ScriptedServer raw([&](int fd, int) {
      ReadRequestHead(fd);
      WriteAll(fd, head + framing);
      std::this_thread::sleep_for(200ms);  // the connection stays open: no end of stream
    });
    UpstreamOptions options = TestUpstreamOptions();
    options.response_timeout = 5s;
    UpstreamClient client(options);
    auto outcome = std::make_shared<Outcome>();
    auto started = std::chrono::steady_clock::now();
    client.Send(raw.endpoint(), Get("/"), CallbacksFor(outcome));
    ASSERT_TRUE(outcome->WaitDone(5s));
    EXPECT_EQ(outcome->result.status.code(), base::StatusCode::kDataLoss)
        << outcome->result.status.ToString();
    EXPECT_LT(std::chrono::steady_clock::now() - started, 1s) << "waited for the timeout";
  }
}

TEST(UpstreamClientTest, TwoHundredConcurrentExchanges) {
  constexpr int kExchanges = 200;
  CountingObserver observer;
  TestServer server(ObservedServerOptions(&observer), BasicRouter());
  auto options = TestUpstreamOptions();
  options.max_idle_per_endpoint = 64;
  UpstreamClient client(options);
  for (int wave = 0; wave < 2; ++wave) {
    std::vector<std::shared_ptr<Outcome>> outcomes;
    for (int i = 0; i < kExchanges; ++i) {
      outcomes.push_back(std::make_shared<Outcome>());
      client.Send(server.endpoint(), Post("/echo", "exchange " + std::to_string(i)),
                  CallbacksFor(outcomes.back()));
    }
    for (int i = 0; i < kExchanges; ++i) {
      ASSERT_TRUE(outcomes[i]->WaitDone(20s)) << "exchange " << i;
      EXPECT_TRUE(outcomes[i]->result.status.ok()) << outcomes[i]->result.status.ToString();
      EXPECT_EQ(outcomes[i]->body, "exchange " + std::to_string(i));
      EXPECT_EQ(outcomes[i]->done_count, 1);
    }
  }
  EXPECT_LE(observer.opened.load(), 2 * kExchanges - 64) << "the second wave reused nothing";
}

TEST(UpstreamClientTest, UnixSocketUpstream) {
  std::string path = "/tmp/supercluster-upstream-test-" + std::to_string(::getpid()) + ".sock";
  CountingObserver observer;
  HttpServer server(ObservedServerOptions(&observer), BasicRouter());
  auto endpoint = ParseEndpoint("unix://" + path);
  ASSERT_TRUE(endpoint.ok());
  ASSERT_TRUE(server.Listen(*endpoint).ok());
  ASSERT_TRUE(server.Start().ok());
  {
    UpstreamClient client(TestUpstreamOptions());
    for (int i = 0; i < 3; ++i) {
      auto outcome = std::make_shared<Outcome>();
      client.Send(*endpoint, Post("/echo", "over a unix socket"), CallbacksFor(outcome));
      ASSERT_TRUE(outcome->WaitDone());
      EXPECT_TRUE(outcome->result.status.ok()) << outcome->result.status.ToString();
      EXPECT_EQ(outcome->body, "over a unix socket");
      EXPECT_EQ(outcome->head->headers.Get("X-Host"), "localhost");
    }
  }
  server.Stop();
  EXPECT_EQ(observer.opened.load(), 1);
}

// An IPv6 upstream's Host field puts the address in brackets (RFC 9110, section 7.2).
TEST(UpstreamClientTest, Ipv6UpstreamGetsABracketedHost) {
  HttpServer server(testing::TestServerOptions(), BasicRouter());
  auto listen = ParseEndpoint("[::1]:0");
  ASSERT_TRUE(listen.ok());
  if (!server.Listen(*listen).ok()) GTEST_SKIP() << "no IPv6 loopback here";
  ASSERT_TRUE(server.Start().ok());
  Endpoint endpoint;
  endpoint.host = "::1";
  endpoint.port = server.BoundEndpoints().at(0).port;
  {
    UpstreamClient client(TestUpstreamOptions());
    auto outcome = std::make_shared<Outcome>();
    client.Send(endpoint, Post("/echo", "over IPv6"), CallbacksFor(outcome));
    ASSERT_TRUE(outcome->WaitDone());
    EXPECT_TRUE(outcome->result.status.ok()) << outcome->result.status.ToString();
    EXPECT_EQ(outcome->body, "over IPv6");
    EXPECT_EQ(outcome->head->headers.Get("X-Host"), "[::1]:" + std::to_string(endpoint.port));
  }
  server.Stop();
}

// Sending the next request from on_done finds the connection already back in the pool.
TEST(UpstreamClientTest, RequestFromOnDoneReusesTheConnection) {
  CountingObserver observer;
  TestServer server(ObservedServerOptions(&observer), BasicRouter());
  UpstreamClient client(TestUpstreamOptions());
  auto second = std::make_shared<Outcome>();
  UpstreamCallbacks first;
  first.on_done = [&client, &server, second](const UpstreamResult& result) {
    if (result.status.ok()) client.Send(server.endpoint(), Get("/peer"), CallbacksFor(second));
  };
  client.Send(server.endpoint(), Get("/peer"), std::move(first));
  ASSERT_TRUE(second->WaitDone());
  EXPECT_TRUE(second->result.status.ok());
  EXPECT_EQ(observer.opened.load(), 1);
}

// io_threads 0: an exchange started by an HttpServer's handler runs on that server's io
// thread (the proxy's case), reuses its connections there, and the answer is the same.
// Also with a polling server of two io threads, each running an io_context of its own.
TEST(UpstreamClientTest, ZeroIoThreadsRunsExchangesOnTheCallingServerThread) {
  const std::pair<int, std::chrono::microseconds> fronts[] = {{1, 0us}, {2, 50us}};
  for (const auto& [front_io_threads, front_busy_poll] : fronts) {
    SCOPED_TRACE("front io_threads " + std::to_string(front_io_threads));
    TestServer back(testing::TestServerOptions(), BasicRouter());
    UpstreamOptions options = TestUpstreamOptions();
    options.io_threads = 0;
    UpstreamClient client(options);
    std::mutex mutex;
    std::vector<bool> same_thread;  // per request: on_done ran on the handler's thread
    // Set while Send runs: the second request starts on a pooled connection right inside
    // Send, but its callbacks must still run only after Send returned.
    std::atomic<bool> inside_send{false};
    std::atomic<int> callbacks_inside_send{0};
    auto front_router = std::make_shared<HttpRouter>();
    front_router->Handle("GET", "/proxy", [&](HttpRequest, std::shared_ptr<Responder> responder) {
      auto handler_thread = std::this_thread::get_id();
      auto body = std::make_shared<std::string>();
      UpstreamCallbacks callbacks;
      callbacks.on_head = [&](ResponseHead) { callbacks_inside_send += inside_send ? 1 : 0; };
      callbacks.on_data = [&, body](std::string_view data, std::function<void()> resume) {
        callbacks_inside_send += inside_send ? 1 : 0;
        body->append(data);
        resume();
      };
      callbacks.on_done = [&, responder, body, handler_thread](const UpstreamResult& result) {
        callbacks_inside_send += inside_send ? 1 : 0;
        {
          std::lock_guard lock(mutex);
          same_thread.push_back(std::this_thread::get_id() == handler_thread);
        }
        responder->Send(HttpResponse::Text(result.status.ok() ? 200 : 502, *body));
      };
      inside_send = true;
      client.Send(back.endpoint(), Get("/peer"), std::move(callbacks));
      inside_send = false;
    });
    ServerOptions front_options = testing::TestServerOptions();
    front_options.io_threads = front_io_threads;
    front_options.busy_poll = front_busy_poll;
    TestServer front(front_options, front_router);

    HttpClient http(front.endpoint(), testing::TestClientOptions());
    HttpRequest request = Get("/proxy");
    auto first = http.Request(request);
    auto second = http.Request(request);
    ASSERT_TRUE(first.ok()) << first.status().message();
    ASSERT_TRUE(second.ok()) << second.status().message();
    EXPECT_EQ(first->status, 200);
    EXPECT_NE(first->body.find("127.0.0.1:"), std::string::npos) << first->body;
    EXPECT_EQ(first->body, second->body) << "the second request did not reuse the connection";
    EXPECT_EQ(callbacks_inside_send.load(), 0);
    std::lock_guard lock(mutex);
    EXPECT_EQ(same_thread, (std::vector<bool>{true, true}));
  }
}

// A polling server's io threads each run an io_context of their own, and an exchange takes
// only pooled connections of its own. Each context's idle connections have a cap of their
// own: one thread's idle connections filling the pool must not make every request of
// another thread open (and close) a connection of its own.
TEST(UpstreamClientTest, EachIoContextPoolsUpToTheCapOfItsOwn) {
  CountingObserver observer;
  TestServer back(ObservedServerOptions(&observer), BasicRouter());
  UpstreamOptions options = TestUpstreamOptions();
  options.io_threads = 0;
  options.max_idle_per_endpoint = 1;
  UpstreamClient client(options);
  auto front_router = std::make_shared<HttpRouter>();
  front_router->Handle("GET", "/proxy", [&](HttpRequest, std::shared_ptr<Responder> responder) {
    UpstreamCallbacks callbacks;
    callbacks.on_done = [responder](const UpstreamResult& result) {
      responder->Send(HttpResponse::Text(result.status.ok() ? 200 : 502, "proxied"));
    };
    client.Send(back.endpoint(), Get("/peer"), std::move(callbacks));
  });
  ServerOptions front_options = testing::TestServerOptions();
  front_options.io_threads = 2;
  front_options.busy_poll = 50us;  // an io_context per io thread; connections in turn
  TestServer front(front_options, front_router);
  HttpClient on_first_thread(front.endpoint(), testing::TestClientOptions());
  HttpClient on_second_thread(front.endpoint(), testing::TestClientOptions());
  auto first = on_first_thread.Request(Get("/proxy"));  // pools one on the first context
  ASSERT_TRUE(first.ok()) << first.status().message();
  EXPECT_EQ(first->status, 200);
  for (int i = 0; i < 4; ++i) {
    auto response = on_second_thread.Request(Get("/proxy"));
    ASSERT_TRUE(response.ok()) << response.status().message();
    EXPECT_EQ(response->status, 200);
  }
  // One upstream connection per context: the second thread's first request opened one,
  // and the next three reused it.
  EXPECT_EQ(observer.opened.load(), 2);
}

// Each thread looks its shards up in a small cache of its own (ShardOf), whose entries name
// their client. Two clients used on one io thread have a shard each, so neither takes the
// other's pooled connections; and a client made after another one was destroyed, perhaps at
// the same address, must not get the cached shard of the one before, which went with it (a
// use after free under ASan; in any build, an exchange registered where no client waits).
TEST(UpstreamClientTest, ClientsUsedOnOneIoThreadHaveAShardEach) {
  CountingObserver observer;
  TestServer back(ObservedServerOptions(&observer), BasicRouter());
  UpstreamOptions options = TestUpstreamOptions();
  options.io_threads = 0;
  std::atomic<UpstreamClient*> current{nullptr};
  auto front_router = std::make_shared<HttpRouter>();
  front_router->Handle("GET", "/proxy", [&](HttpRequest, std::shared_ptr<Responder> responder) {
    UpstreamCallbacks callbacks;
    callbacks.on_done = [responder](const UpstreamResult& result) {
      responder->Send(HttpResponse::Text(result.status.ok() ? 200 : 502, "proxied"));
    };
    current.load()->Send(back.endpoint(), Get("/peer"), std::move(callbacks));
  });
  ServerOptions front_options = testing::TestServerOptions();
  front_options.io_threads = 1;
  TestServer front(front_options, front_router);
  HttpClient http(front.endpoint(), testing::TestClientOptions());
  auto proxy_through = [&](UpstreamClient& client) {
    current = &client;
    auto response = http.Request(Get("/proxy"));
    current = nullptr;
    ASSERT_TRUE(response.ok()) << response.status().message();
    EXPECT_EQ(response->status, 200);
  };

  auto first = std::make_unique<UpstreamClient>(options);
  auto second = std::make_unique<UpstreamClient>(options);
  proxy_through(*first);   // opens a connection and pools it in the first client's shard
  proxy_through(*second);  // must open one of its own
  proxy_through(*first);   // reuses its own
  EXPECT_EQ(observer.opened.load(), 2);
  first.reset();  // while the front's io thread, and its cache, live on
  auto third = std::make_unique<UpstreamClient>(options);
  proxy_through(*third);
  proxy_through(*third);
  proxy_through(*second);
  EXPECT_EQ(observer.opened.load(), 3);  // the third client's own, reused for its second
}

// The same as StalePooledConnectionIsRetriedOnce on a server's io thread, where a request
// on a pooled connection starts its write inside Send: the write to the closed connection
// fails after Send returned, and the request goes once more on a fresh connection.
TEST(UpstreamClientTest, ZeroIoThreadsStalePooledConnectionIsRetriedOnce) {
  ScriptedServer raw([](int fd, int index) {
    ReadRequestHead(fd);
    WriteAll(fd, index == 0 ? "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst"
                            : "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nretry");
    // then close: the connection pooled after "first" is stale
  });
  UpstreamOptions options = TestUpstreamOptions();
  options.io_threads = 0;
  UpstreamClient client(options);
  auto front_router = std::make_shared<HttpRouter>();
  front_router->Handle("GET", "/proxy", [&](HttpRequest, std::shared_ptr<Responder> responder) {
    auto body = std::make_shared<std::string>();
    UpstreamCallbacks callbacks;
    callbacks.on_data = [body](std::string_view data, std::function<void()> resume) {
      body->append(data);
      resume();
    };
    callbacks.on_done = [responder, body](const UpstreamResult& result) {
      responder->Send(result.status.ok() ? HttpResponse::Text(200, *body)
                                         : HttpResponse::Text(502, result.status.ToString()));
    };
    client.Send(raw.endpoint(), Get("/"), std::move(callbacks));
  });
  ServerOptions front_options = testing::TestServerOptions();
  front_options.io_threads = 1;
  TestServer front(front_options, front_router);
  HttpClient http(front.endpoint(), testing::TestClientOptions());
  auto first = http.Request(Get("/proxy"));
  ASSERT_TRUE(first.ok()) << first.status().message();
  EXPECT_EQ(first->body, "first");
  // Let the server's close reach the pooled connection before it is used again.
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  auto second = http.Request(Get("/proxy"));
  ASSERT_TRUE(second.ok()) << second.status().message();
  EXPECT_EQ(second->status, 200) << second->body;
  EXPECT_EQ(second->body, "retry");
  EXPECT_EQ(raw.accepted(), 2);
}

// io_threads 0 and a client destroyed while its exchange waits on a server that no longer
// runs: the destructor returns (the exchange is abandoned) and on_done never runs, even
// when the stopped server later runs what was left.
TEST(UpstreamClientTest, ZeroIoThreadsDestructionAbandonsExchangesOfAStoppedServer) {
  std::vector<std::shared_ptr<Responder>> kept;
  std::mutex kept_mutex;
  auto back_router = std::make_shared<HttpRouter>();
  back_router->Handle("GET", "/hang", [&](HttpRequest, std::shared_ptr<Responder> responder) {
    responder->StartStream(200, {});
    responder->Write("first");
    std::lock_guard lock(kept_mutex);
    kept.push_back(responder);
  });
  TestServer back(testing::TestServerOptions(), back_router);
  auto outcome = std::make_shared<Outcome>();
  auto front_router = std::make_shared<HttpRouter>();
  std::unique_ptr<UpstreamClient> client;
  front_router->Handle("GET", "/proxy", [&](HttpRequest, std::shared_ptr<Responder> responder) {
    client->Send(back.endpoint(), Get("/hang"), CallbacksFor(outcome));
    responder->Send(HttpResponse::Text(200, "started"));
  });
  auto front = std::make_unique<TestServer>(testing::TestServerOptions(), front_router);
  UpstreamOptions options = TestUpstreamOptions();
  options.io_threads = 0;
  client = std::make_unique<UpstreamClient>(options);
  HttpClient http(front->endpoint(), testing::TestClientOptions());
  ASSERT_TRUE(http.Request(Get("/proxy")).ok());
  ASSERT_TRUE(outcome->WaitFor([&] { return outcome->pieces == 1; }));
  http.Close();
  front->server().Stop();
  auto started = std::chrono::steady_clock::now();
  client.reset();
  EXPECT_LT(std::chrono::steady_clock::now() - started, 2s);
  front.reset();  // runs the handlers the stop left behind
  std::this_thread::sleep_for(50ms);
  std::lock_guard lock(outcome->mutex);
  EXPECT_EQ(outcome->done_count, 0);
  std::lock_guard kept_lock(kept_mutex);
  kept.clear();
}

// A retry sent from the on_done of an exchange the destructor cancelled (what a proxy does
// on a failure) is cancelled at once, not sent and waited for.
TEST(UpstreamClientTest, SendDuringDestructionIsCancelledAtOnce) {
  std::vector<std::shared_ptr<Responder>> kept;
  std::mutex kept_mutex;
  auto router = BasicRouter();
  router->Handle("GET", "/hang", [&](HttpRequest, std::shared_ptr<Responder> responder) {
    responder->StartStream(200, {});
    responder->Write("first");
    std::lock_guard lock(kept_mutex);
    kept.push_back(responder);
  });
  TestServer server(testing::TestServerOptions(), router);
  auto first = std::make_shared<Outcome>();
  auto retry = std::make_shared<Outcome>();
  auto client = std::make_unique<UpstreamClient>(TestUpstreamOptions());
  UpstreamCallbacks callbacks = CallbacksFor(first);
  auto record_first = std::move(callbacks.on_done);
  UpstreamClient* raw = client.get();
  callbacks.on_done = [&, record_first, raw](const UpstreamResult& result) {
    raw->Send(server.endpoint(), Get("/hang"), CallbacksFor(retry));
    record_first(result);
  };
  client->Send(server.endpoint(), Get("/hang"), std::move(callbacks));
  ASSERT_TRUE(first->WaitFor([&] { return first->pieces == 1; }));
  auto started = std::chrono::steady_clock::now();
  client.reset();
  EXPECT_LT(std::chrono::steady_clock::now() - started, 2s);
  ASSERT_TRUE(retry->WaitDone(1s));
  EXPECT_EQ(retry->result.status.code(), base::StatusCode::kCancelled);
  EXPECT_FALSE(retry->result.head_received);
  std::lock_guard lock(kept_mutex);
  kept.clear();
}

}  // namespace
}  // namespace supercluster::net
