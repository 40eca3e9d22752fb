// The routers end to end on loopback: fake workers (test doubles of the worker HTTP API,
// docs/data-plane.md) served by net::HttpServer, a SQLite store with tenant and instance
// records, regional routers and a global endpoint built from RouterService, and a plain
// HTTP client in front.
#include "router/router_service.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <future>
#include <map>
#include <thread>

#include "attest/dev_attestor.h"
#include "base/plain_name.h"
#include "net/http_client.h"
#include "net/sse.h"
#include "net/test_support.h"
#include "base/base64.h"
#include "store/temp_sqlite_store.h"

namespace supercluster::router {
namespace {

using std::chrono::milliseconds;

// ---- a fake worker ----

enum class WorkerMode { kOk, kFail500, kSaturated, kDieMidStream, kCloseConnection, kEndlessStream,
                        kBigStream, kDieMidPlainStream, kLargeAnswer };

// kLargeAnswer's body: over router.max_collected_response_bytes (64 KiB by default).
const std::string kLargeAnswerBody = "\"" + std::string(100 * 1024, 'y') + "\"";

struct WorkerState {
  std::string name;
  std::atomic<int> requests{0};
  std::atomic<WorkerMode> mode{WorkerMode::kOk};
  std::atomic<int> delay_ms{0};
  std::atomic<bool> ready{true};
  // Answers nothing, health checks included (a stopped process, a partition): the
  // responders are kept here, unanswered, until the worker goes.
  std::atomic<bool> silent{false};
  std::vector<std::shared_ptr<net::Responder>> parked;  // guarded by mutex
  std::atomic<bool> client_went_away{false};
  std::atomic<int64_t> bytes_acknowledged{0};  // kBigStream: written to the router's socket
  std::mutex mutex;
  net::Headers last_headers;
};

class FakeWorker {
 public:
  explicit FakeWorker(std::string name) : state_(std::make_shared<WorkerState>()) {
    state_->name = std::move(name);
    auto router = std::make_shared<net::HttpRouter>();
    router->Handle("GET", "/readyz", [state = state_](net::HttpRequest,
                                                      std::shared_ptr<net::Responder> r) {
      if (state->silent) {
        std::lock_guard<std::mutex> lock(state->mutex);
        state->parked.push_back(std::move(r));
        return;
      }
      r->Send(state->ready ? net::HttpResponse::Text(200, "ready\n")
                           : net::HttpResponse::Text(503, "not ready\n"));
    });
    auto handler = [this](net::HttpRequest request, std::shared_ptr<net::Responder> responder) {
      Handle(std::move(request), std::move(responder));
    };
    router->Handle("POST", "/v1/completions", handler);
    router->Handle("POST", "/v1/chat/completions", handler);
    router->Handle("POST", "/v1/sealed", handler);
    server_ = std::make_unique<net::testing::TestServer>(net::testing::TestServerOptions(), router);
  }
  ~FakeWorker() {
    for (std::thread& thread : threads_) thread.join();
    {
      // Parked responders hold their connections, which hold the server's handlers, which
      // hold this state: let them go first.
      std::lock_guard<std::mutex> lock(state_->mutex);
      state_->parked.clear();
    }
    server_.reset();
  }

  WorkerState& state() { return *state_; }
  std::string address() const { return "http://127.0.0.1:" + std::to_string(server_->port()); }
  void Kill() { server_->server().Stop(); }
  net::Headers LastHeaders() {
    std::lock_guard<std::mutex> lock(state_->mutex);
    return state_->last_headers;
  }

 private:
  void Handle(net::HttpRequest request, std::shared_ptr<net::Responder> responder) {
    {
      std::lock_guard<std::mutex> lock(state_->mutex);
      state_->last_headers = request.headers;
      if (state_->silent) state_->parked.push_back(responder);
    }
    ++state_->requests;
    if (state_->silent) return;
    bool stream = request.body.find("\"stream\":true") != std::string::npos;
    std::lock_guard<std::mutex> lock(threads_mutex_);
    threads_.emplace_back([this, state = state_, responder, stream] {
      if (state->delay_ms > 0) std::this_thread::sleep_for(milliseconds(state->delay_ms.load()));
      switch (state->mode.load()) {
        case WorkerMode::kFail500:
          responder->Send(net::HttpResponse::Json(500, R"({"error":{"message":"boom","type":"internal"}})"));
          return;
        case WorkerMode::kSaturated: {
          net::HttpResponse busy = net::HttpResponse::Json(503, R"({"error":{"message":"queue full","type":"saturated"}})");
          busy.headers.Set("Retry-After", "2");
          responder->Send(std::move(busy));
          return;
        }
        case WorkerMode::kCloseConnection:
          Kill();
          return;
        case WorkerMode::kDieMidStream: {
          net::Headers headers;
          headers.Set("Content-Type", "text/event-stream");
          responder->StartStream(200, std::move(headers));
          responder->Write("data: {\"text\":\"In the\"}\n\n");
          std::this_thread::sleep_for(milliseconds(100));
          Kill();
          return;
        }
        case WorkerMode::kDieMidPlainStream: {
          net::Headers headers;
          headers.Set("Content-Type", "application/octet-stream");
          responder->StartStream(200, std::move(headers));
          responder->Write("the first part");
          std::this_thread::sleep_for(milliseconds(100));
          Kill();
          return;
        }
        case WorkerMode::kLargeAnswer:
          responder->Send(net::HttpResponse::Json(200, kLargeAnswerBody));
          return;
        case WorkerMode::kEndlessStream: {
          // Streams until the router goes away, as a long generation would.
          responder->OnClose([state] { state->client_went_away = true; });
          net::Headers headers;
          headers.Set("Content-Type", "text/event-stream");
          responder->StartStream(200, std::move(headers));
          for (int i = 0; i < 500 && !responder->Closed(); ++i) {
            responder->Write("data: {\"text\":\" and\"}\n\n");
            std::this_thread::sleep_for(milliseconds(10));
          }
          responder->Finish();
          return;
        }
        case WorkerMode::kBigStream: {
          // 64 MiB in 64 KiB chunks, each written only once the previous one left.
          net::Headers headers;
          headers.Set("Content-Type", "application/octet-stream");
          responder->StartStream(200, std::move(headers));
          const std::string chunk(64 * 1024, 'x');
          for (int i = 0; i < 1024; ++i) {
            auto written = std::make_shared<std::promise<bool>>();
            responder->Write(chunk, [written](base::Status status) { written->set_value(status.ok()); });
            if (!written->get_future().get()) return;
            state->bytes_acknowledged += static_cast<int64_t>(chunk.size());
          }
          responder->Finish();
          return;
        }
        case WorkerMode::kOk:
          break;
      }
      if (stream) {
        net::Headers headers;
        headers.Set("Content-Type", "text/event-stream");
        headers.Set("X-Supercluster-Served-By", state->name);
        responder->StartStream(200, std::move(headers));
        for (const char* text : {"In the", " beginning", " God"}) {
          responder->Write(std::string("data: {\"text\":\"") + text + "\"}\n\n");
        }
        responder->Write("data: [DONE]\n\n");
        responder->Finish();
        return;
      }
      net::HttpResponse response =
          net::HttpResponse::Json(200, "{\"served_by\":\"" + state->name + "\"}");
      response.headers.Set("X-Supercluster-Served-By", state->name);
      // Hop-by-hop fields the router must not pass on, next to an end-to-end one it must.
      response.headers.Set("Keep-Alive", "timeout=5");
      response.headers.Set("Proxy-Connection", "keep-alive");
      response.headers.Set("Trailer", "X-Checksum");
      response.headers.Set("Upgrade", "h2c");
      response.headers.Set("X-Worker-Note", "end to end");
      responder->Send(std::move(response));
    });
  }

  std::shared_ptr<WorkerState> state_;
  std::unique_ptr<net::testing::TestServer> server_;
  std::mutex threads_mutex_;
  std::vector<std::thread> threads_;
};

// A worker that answers every POST with the bytes it is given, then closes the connection;
// by default it promises more than it sends: a Content-Length of 1000 and 12 bytes of body.
// Raw sockets, because net::HttpServer always frames its answers correctly. GET /readyz is
// answered properly, so that the router's health checks let it in. One request per
// connection.
class ShortAnswerWorker {
 public:
  // With `byte_interval`, the answer's body goes out a byte at a time, that far apart.
  explicit ShortAnswerWorker(std::string post_answer =
                                 "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                 "Content-Length: 1000\r\nConnection: close\r\n\r\n"
                                 "{\"cut-short\"",
                             milliseconds byte_interval = milliseconds(0))
      : post_answer_(std::move(post_answer)), byte_interval_(byte_interval) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof(address);
    EXPECT_EQ(::bind(listen_fd_, reinterpret_cast<sockaddr*>(&address), length), 0);
    EXPECT_EQ(::listen(listen_fd_, 64), 0);
    EXPECT_EQ(::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&address), &length), 0);
    port_ = ntohs(address.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~ShortAnswerWorker() {
    ::shutdown(listen_fd_, SHUT_RDWR);  // accept() fails and Serve returns
    thread_.join();
    ::close(listen_fd_);
  }

  std::string address() const { return "http://127.0.0.1:" + std::to_string(port_); }
  int posts() const { return posts_.load(); }

 private:
  void Serve() {
    while (true) {
      int fd = ::accept(listen_fd_, nullptr, nullptr);
      if (fd < 0) return;
      Answer(fd);
      ::close(fd);
    }
  }

  // Reads one request (head, then the body its Content-Length gives) and answers it.
  void Answer(int fd) {
    std::string received;
    size_t head_end = std::string::npos;
    char buffer[4096];
    while (true) {
      if (head_end == std::string::npos) head_end = received.find("\r\n\r\n");
      if (head_end != std::string::npos) {
        size_t body = 0;
        if (size_t at = received.find("Content-Length: "); at != std::string::npos) {
          body = std::stoul(received.substr(at + 16));
        }
        if (received.size() >= head_end + 4 + body) break;
      }
      ssize_t got = ::read(fd, buffer, sizeof(buffer));
      if (got <= 0) return;
      received.append(buffer, static_cast<size_t>(got));
    }
    std::string answer;
    if (received.starts_with("GET /readyz ")) {
      answer = "HTTP/1.1 200 OK\r\nContent-Length: 6\r\nConnection: close\r\n\r\nready\n";
    } else {
      ++posts_;
      answer = post_answer_;
      if (byte_interval_.count() > 0) {
        const size_t body = answer.find("\r\n\r\n") + 4;
        if (::send(fd, answer.data(), body, MSG_NOSIGNAL) != static_cast<ssize_t>(body)) return;
        for (size_t at = body; at < answer.size(); ++at) {
          std::this_thread::sleep_for(byte_interval_);
          if (::send(fd, answer.data() + at, 1, MSG_NOSIGNAL) != 1) return;  // the router left
        }
        return;
      }
    }
    EXPECT_EQ(::write(fd, answer.data(), answer.size()), static_cast<ssize_t>(answer.size()));
  }

  const std::string post_answer_;
  const milliseconds byte_interval_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<int> posts_{0};
  std::thread thread_;
};

// ---- records ----

attest::DevMeasurements Measurements(std::string_view tag) {
  attest::DevMeasurements measurements;
  measurements.pcr0 = attest::Sha384(attest::AsByteView(std::string(tag) + " enclave"));
  measurements.pcr1 = attest::Sha384(attest::AsByteView(std::string(tag) + " config"));
  measurements.pcr2 = attest::Sha384(attest::AsByteView(std::string(tag) + " worker"));
  return measurements;
}

store::Tenant MakeTenant(const std::string& id, const std::string& key,
                         std::vector<std::string> allowed_regions = {}, double rate = 0) {
  store::Tenant tenant;
  tenant.id = id;
  tenant.api_key_hashes = {HashApiKey(key)};
  tenant.allowed_regions = std::move(allowed_regions);
  tenant.requests_per_second = rate;
  tenant.allow_plaintext = true;
  return tenant;
}

// ---- a router ----

class TestRouter {
 public:
  // `io_threads` above 1: each polls its own io_context (as `supercluster router` with its
  // default server.io_threads on a machine of several cores).
  TestRouter(store::Store& store, Tier tier, const std::string& region,
             const attest::AttestationPolicy& policy, std::vector<std::string> via,
             int io_threads = 1, milliseconds response_timeout = milliseconds(5000)) {
    tenants_ = store::PrefixCache::Start(store, store::keys::Tenant("")).value();
    routers_ = store::PrefixCache::Start(store, store::keys::RouterPrefix("")).value();
    regions_ = store::PrefixCache::Start(store, store::keys::Region("")).value();
    gate_ = std::make_unique<TenantGate>(*tenants_, TenantGateOptions{});
    RouterServiceDependencies dependencies;
    dependencies.gate = gate_.get();
    dependencies.routers = routers_.get();
    dependencies.regions = regions_.get();
    if (tier == Tier::kRegional) {
      instances_ = store::PrefixCache::Start(store, store::keys::InstancePrefix(region)).value();
      workers_ = std::make_unique<WorkerDirectory>(*instances_, region, policy);
      dependencies.workers = workers_.get();
    }
    RouterServiceOptions options =
        RouterServiceOptions::FromConfig(base::Config::Defaults());
    options.tier = tier;
    options.region = region;
    options.router_id = region + "-router";
    options.via = std::move(via);
    options.health.interval = milliseconds(50);
    options.health.timeout = milliseconds(500);
    options.balancer.base_ejection_time = std::chrono::seconds(30);
    options.upstream.connect_timeout = milliseconds(500);
    options.upstream.response_timeout = response_timeout;
    auto service = RouterService::Create(options, dependencies);
    EXPECT_TRUE(service.ok()) << service.status().ToString();
    service_ = std::move(*service);
    auto http_router = std::make_shared<net::HttpRouter>();
    service_->AddRoutes(*http_router);
    // As bench/router runs `supercluster router`: one io thread (unless asked for more),
    // which polls for events before it sleeps, and runs the upstream exchanges too.
    net::ServerOptions server_options = net::testing::TestServerOptions();
    server_options.io_threads = io_threads;
    server_options.busy_poll =
        std::chrono::microseconds(base::Config::Defaults().GetInt("router.busy_poll_us"));
    server_ = std::make_unique<net::testing::TestServer>(server_options, http_router);
  }
  ~TestRouter() {
    service_->Stop();
    server_.reset();
    service_.reset();
  }

  RouterService& service() { return *service_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(server_->port()); }
  net::Endpoint endpoint() const { return server_->endpoint(); }
  void Kill() { server_->server().Stop(); }

 private:
  std::unique_ptr<store::PrefixCache> tenants_, routers_, regions_, instances_;
  std::unique_ptr<TenantGate> gate_;
  std::unique_ptr<WorkerDirectory> workers_;
  std::unique_ptr<RouterService> service_;
  std::unique_ptr<net::testing::TestServer> server_;
};

struct GoodAndFailingWorkers {
  FakeWorker& good;
  FakeWorker& bad;
};

// Two regions, each a worker "w1" behind its regional router, and a global router in front.
struct TwoRegions {
  FakeWorker& east_worker;
  FakeWorker& west_worker;
  TestRouter& east;
  TestRouter& west;
  TestRouter& global;
};

class RouterServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store::SqliteStoreOptions options;
    options.watch_poll_interval = milliseconds(5);
    store_ = store::testing::OpenTempSqliteStore(options).value();
    ca_.emplace(attest::DevCa::Generate().value());
    good_ = Measurements("good");
    policy_.root_certificate = ca_->root_certificate();
    policy_.allowed_measurements.push_back({{0, good_.pcr0}, {1, good_.pcr1}, {2, good_.pcr2}});
    PutTenant(MakeTenant("tenant-a", "key-a"));
    PutTenant(MakeTenant("tenant-b", "key-b"));
    PutTenant(MakeTenant("tenant-east", "key-east", {"us-east-*"}));
    PutTenant(MakeTenant("tenant-slow", "key-slow", {}, 1));
  }
  void TearDown() override {
    routers_.clear();
    workers_.clear();
    store_.reset();
  }

  void PutTenant(const store::Tenant& tenant) {
    ASSERT_TRUE(store_->Put(store::keys::Tenant(tenant.id), store::Encode(tenant)).ok());
  }

  std::string Document(const attest::DevMeasurements& measurements) {
    attest::DevAttestor attestor(*ca_, measurements);
    auto document = attestor.Attest(std::nullopt, std::nullopt, attest::BytesOf("node key"));
    EXPECT_TRUE(document.ok());
    return base::Base64Encode(
        std::string_view(reinterpret_cast<const char*>(document->data()), document->size()));
  }

  // Starts a fake worker and registers it as serving `model` in `region`.
  FakeWorker& AddWorker(const std::string& region, const std::string& id,
                        const attest::DevMeasurements* measurements = nullptr,
                        const std::string& model = "kjv") {
    workers_.push_back(std::make_unique<FakeWorker>(region + "/" + id));
    RegisterWorker(region, id, workers_.back()->address(), measurements ? *measurements : good_,
                   model);
    return *workers_.back();
  }

  // Registers a worker listening at `address` (http://HOST:PORT) as serving `model`.
  void RegisterWorker(const std::string& region, const std::string& id,
                      const std::string& address, const attest::DevMeasurements& measurements,
                      const std::string& model = "kjv") {
    store::Instance instance;
    instance.id = id;
    instance.region = region;
    instance.state = store::InstanceState::kServing;
    instance.address = address;
    instance.model = model;
    instance.capacity = 8;
    instance.attestation_b64 = Document(measurements);
    EXPECT_TRUE(store_->Put(store::keys::Instance(region, id), store::Encode(instance)).ok());
  }

  void RemoveWorker(const std::string& region, const std::string& id) {
    ASSERT_TRUE(store_->Delete(store::keys::Instance(region, id)).ok());
  }

  // us-east-1 and us-west-2, each with a worker and its regional router, and a global
  // router that reaches them by --via and has checked their health once.
  TwoRegions AddTwoRegionsAndAGlobalRouter() {
    FakeWorker& east_worker = AddWorker("us-east-1", "w1");
    FakeWorker& west_worker = AddWorker("us-west-2", "w1");
    TestRouter& east = AddRouter(Tier::kRegional, "us-east-1");
    TestRouter& west = AddRouter(Tier::kRegional, "us-west-2");
    WaitForWorkers(east, 1);
    WaitForWorkers(west, 1);
    TestRouter& global = AddRouter(
        Tier::kGlobal, "global", {"us-east-1=" + east.address(), "us-west-2=" + west.address()});
    global.service().CheckHealthNow();
    return {east_worker, west_worker, east, west, global};
  }

  // In us-east-1, a worker "good" and a worker "bad" that fails every request. The good
  // worker is a little slower than the latency assumed for a worker that never answered,
  // so two choices prefer the failing one until it is ejected.
  GoodAndFailingWorkers AddGoodAndFailingWorkers() {
    FakeWorker& good = AddWorker("us-east-1", "good");
    FakeWorker& bad = AddWorker("us-east-1", "bad");
    bad.state().mode = WorkerMode::kFail500;
    good.state().delay_ms = 25;
    return {good, bad};
  }

  // Sends `count` requests, each on a connection of its own; every one must be answered
  // 200 by us-east-1/good.
  static void ExpectEachAnsweredByTheGoodWorker(const net::Endpoint& endpoint, int count) {
    for (int i = 0; i < count; ++i) {
      net::HttpResponse response = Post(endpoint, "key-a", kPrompt);
      ASSERT_EQ(response.status, 200) << "request " << i << ": " << response.body;
      EXPECT_EQ(response.headers.Get("X-Supercluster-Served-By"), "us-east-1/good");
    }
  }


  TestRouter& AddRouter(Tier tier, const std::string& region, std::vector<std::string> via = {},
                        int io_threads = 1, milliseconds response_timeout = milliseconds(5000)) {
    routers_.push_back(std::make_unique<TestRouter>(*store_, tier, region, policy_,
                                                    std::move(via), io_threads,
                                                    response_timeout));
    return *routers_.back();
  }

  // Waits until `router` sees `count` eligible workers (the store watch is asynchronous).
  void WaitForWorkers(TestRouter& router, size_t count) {
    for (int i = 0; i < 300; ++i) {
      // A health round registers the directory's eligible workers with the balancer.
      size_t eligible = 0;
      router.service().CheckHealthNow();
      for (const UpstreamState& state : router.service().worker_balancer().States()) {
        if (state.healthy) ++eligible;
      }
      if (eligible == count) return;
      std::this_thread::sleep_for(milliseconds(10));
    }
    FAIL() << "router never saw " << count << " workers";
  }

  // POST `path` with a JSON `body`, as tenant `key` (none when empty).
  static net::HttpRequest JsonPost(const std::string& key, const std::string& body,
                                   const std::string& path = "/v1/completions",
                                   std::vector<std::pair<std::string, std::string>> headers = {}) {
    net::HttpRequest request;
    request.method = "POST";
    request.target = path;
    request.body = body;
    request.headers.Set("Content-Type", "application/json");
    if (!key.empty()) request.headers.Set("Authorization", "Bearer " + key);
    for (auto& [name, value] : headers) request.headers.Set(name, value);
    return request;
  }

  // JsonPost on a connection of its own.
  static net::HttpResponse Post(const net::Endpoint& endpoint, const std::string& key,
                                const std::string& body,
                                const std::string& path = "/v1/completions",
                                std::vector<std::pair<std::string, std::string>> headers = {}) {
    net::HttpClient client(endpoint, net::testing::TestClientOptions());
    auto response = client.Request(JsonPost(key, body, path, std::move(headers)));
    EXPECT_TRUE(response.ok()) << response.status().ToString();
    return response.ok() ? *response : net::HttpResponse{};
  }

  static net::HttpResponse Get(const net::Endpoint& endpoint, const std::string& key,
                               const std::string& target) {
    net::HttpClient client(endpoint, net::testing::TestClientOptions());
    net::HttpRequest request;
    request.target = target;
    if (!key.empty()) request.headers.Set("Authorization", "Bearer " + key);
    auto response = client.Request(request);
    EXPECT_TRUE(response.ok()) << response.status().ToString();
    return response.ok() ? *response : net::HttpResponse{};
  }

  // POST /v1/completions as tenant-a, for tests that drive the HTTP client themselves.
  static net::HttpRequest CompletionRequest(std::string body = kPrompt) {
    net::HttpRequest request;
    request.method = "POST";
    request.target = "/v1/completions";
    request.headers.Set("Authorization", "Bearer key-a");
    request.body = std::move(body);
    return request;
  }

  static constexpr char kPrompt[] = R"({"model":"kjv","prompt":"In the beginning"})";

  store::testing::TempSqliteStore store_;
  std::optional<attest::DevCa> ca_;
  attest::DevMeasurements good_;
  attest::AttestationPolicy policy_;
  std::vector<std::unique_ptr<FakeWorker>> workers_;
  std::vector<std::unique_ptr<TestRouter>> routers_;
};

TEST_F(RouterServiceTest, RoutesToAnEligibleWorkerAsTheAuthenticatedTenant) {
  FakeWorker& worker = AddWorker("us-east-1", "w1");
  TestRouter& router = AddRouter(Tier::kRegional, "us-east-1");
  WaitForWorkers(router, 1);
  // A client claiming to be tenant-b with tenant-a's key is tenant-a.
  net::HttpResponse response = Post(router.endpoint(), "key-a", kPrompt, "/v1/completions",
                                    {{"X-Supercluster-Tenant", "tenant-b"}});
  ASSERT_EQ(response.status, 200) << response.body;
  EXPECT_EQ(response.headers.Get("X-Supercluster-Served-By"), "us-east-1/w1");
  EXPECT_FALSE(response.headers.Get("X-Supercluster-Request-Id").empty());
  net::Headers seen = worker.LastHeaders();
  EXPECT_EQ(seen.Get("X-Supercluster-Tenant"), "tenant-a");
  EXPECT_FALSE(seen.Has("Authorization")) << "the API key never reaches a worker";
  EXPECT_FALSE(seen.Get("X-Supercluster-Request-Id").empty());
  // The id the router made up is the one the client gets back.
  EXPECT_EQ(seen.Get("X-Supercluster-Request-Id"),
            response.headers.Get("X-Supercluster-Request-Id"));

  // The request id a client sends is kept across the hop and comes back.
  net::HttpResponse traced = Post(router.endpoint(), "key-b", kPrompt, "/v1/chat/completions",
                                  {{"X-Supercluster-Request-Id", "trace-42"}});
  EXPECT_EQ(traced.headers.Get("X-Supercluster-Request-Id"), "trace-42");
  EXPECT_EQ(worker.LastHeaders().Get("X-Supercluster-Request-Id"), "trace-42");
  EXPECT_EQ(worker.LastHeaders().Get("X-Supercluster-Tenant"), "tenant-b");

  // One that is not short and plain is replaced by the router's own, not joined by it.
  net::HttpResponse replaced = Post(router.endpoint(), "key-b", kPrompt, "/v1/completions",
                                    {{"X-Supercluster-Request-Id", "not plain!"}});
  const std::string made_up = replaced.headers.Get("X-Supercluster-Request-Id");
  EXPECT_FALSE(made_up.empty());
  EXPECT_NE(made_up, "not plain!");
  int ids = 0;
  for (auto [name, value] : worker.LastHeaders()) {
    if (!net::EqualsIgnoreCase(name, "X-Supercluster-Request-Id")) continue;
    ++ids;
    EXPECT_EQ(value, made_up);
  }
  EXPECT_EQ(ids, 1);
  EXPECT_EQ(worker.state().requests.load(), 3);
}

// Header names are case-insensitive: no spelling or repetition of the tenant field gets a
// client's claim to a worker, and no spelling of Authorization gets its key there.
TEST_F(RouterServiceTest, TenantAndCredentialFieldsInAnyCaseNeverReachAWorker) {
  FakeWorker& worker = AddWorker("us-east-1", "w1");
  TestRouter& router = AddRouter(Tier::kRegional, "us-east-1");
  WaitForWorkers(router, 1);
  net::HttpClient client(router.endpoint(), net::testing::TestClientOptions());
  net::HttpRequest request;
  request.method = "POST";
  request.target = "/v1/completions";
  request.body = kPrompt;
  request.headers.Add("authorization", "Bearer key-a");
  request.headers.Add("x-supercluster-tenant", "tenant-b");
  request.headers.Add("X-SUPERCLUSTER-TENANT", "tenant-east");
  auto response = client.Request(request);
  ASSERT_TRUE(response.ok()) << response.status().ToString();
  ASSERT_EQ(response->status, 200) << response->body;
  std::vector<std::string> tenants;
  const net::Headers seen = worker.LastHeaders();
  for (const auto& [name, value] : seen.Copy()) {
    std::string lower = name;
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    EXPECT_NE(lower, "authorization") << "the API key reached a worker";
    if (lower == "x-supercluster-tenant") tenants.push_back(value);
  }
  EXPECT_EQ(tenants, std::vector<std::string>{"tenant-a"});
}

TEST_F(RouterServiceTest, HopByHopHeadersStopAtTheRouter) {
  FakeWorker& worker = AddWorker("us-east-1", "w1");
  TestRouter& router = AddRouter(Tier::kRegional, "us-east-1");
  WaitForWorkers(router, 1);
  net::HttpResponse response =
      Post(router.endpoint(), "key-a", kPrompt, "/v1/completions",
           {{"Keep-Alive", "timeout=9"}, {"Proxy-Connection", "keep-alive"}, {"TE", "trailers"},
            {"Upgrade", "h2c"}, {"X-Client-Note", "end to end"}});
  ASSERT_EQ(response.status, 200) << response.body;
  EXPECT_EQ(response.headers.Get("X-Worker-Note"), "end to end");
  for (const char* hop : {"Keep-Alive", "Proxy-Connection", "Trailer", "Upgrade"}) {
    EXPECT_FALSE(response.headers.Has(hop)) << hop << " reached the client";
  }
  net::Headers seen = worker.LastHeaders();
  EXPECT_EQ(seen.Get("X-Client-Note"), "end to end");
  for (const char* hop : {"Keep-Alive", "Proxy-Connection", "TE", "Upgrade"}) {
    EXPECT_FALSE(seen.Has(hop)) << hop << " reached the worker";
  }
}

// Whatever id fields a client sent, one goes on, and it is one the router checked: a second
// id field, whose bytes were never looked at, went on to the worker.
TEST_F(RouterServiceTest, OneRequestIdGoesOnWhateverTheClientSent) {
  FakeWorker& worker = AddWorker("us-east-1", "w1");
  TestRouter& router = AddRouter(Tier::kRegional, "us-east-1");
  WaitForWorkers(router, 1);
  net::HttpRequest request = JsonPost("key-a", kPrompt);
  request.headers.Add("X-Supercluster-Request-Id", "good-1");
  request.headers.Add("X-Supercluster-Request-Id", "\xff\xfe bad");
  net::HttpClient client(router.endpoint(), net::testing::TestClientOptions());
  auto response = client.Request(request);
  ASSERT_TRUE(response.ok()) << response.status().ToString();
  ASSERT_EQ(response->status, 200) << response->body;
  EXPECT_EQ(response->headers.Get("X-Supercluster-Request-Id"), "good-1");
  net::Headers seen = worker.LastHeaders();
  size_t ids = 0;
  for (auto [name, value] : seen) {
    if (net::EqualsIgnoreCase(name, "X-Supercluster-Request-Id")) {
      ++ids;
      EXPECT_TRUE(base::IsPlainName(value, 64)) << value;
    }
  }
  EXPECT_EQ(ids, 1u);
}

// A Connection field names more fields that end at the hop (RFC 9110 7.6.1), in either
// direction, in any case.
TEST_F(RouterServiceTest, FieldsTheClientsConnectionNamesStopAtTheRouter) {
  FakeWorker& worker = AddWorker("us-east-1", "w1");
  TestRouter& router = AddRouter(Tier::kRegional, "us-east-1");
  WaitForWorkers(router, 1);
  net::HttpResponse response =
      Post(router.endpoint(), "key-a", kPrompt, "/v1/completions",
           {{"Connection", "keep-alive, x-client-hop ,X-Other-Hop"}, {"X-Client-Hop", "secret"},
            {"X-Other-Hop", "secret"}, {"X-Client-Note", "end to end"}});
  ASSERT_EQ(response.status, 200) << response.body;
  net::Headers seen = worker.LastHeaders();
  EXPECT_EQ(seen.Get("X-Client-Note"), "end to end");
  EXPECT_FALSE(seen.Has("X-Client-Hop")) << "a field the client's Connection named went on";
  EXPECT_FALSE(seen.Has("X-Other-Hop")) << "a field the client's Connection named went on";
}

TEST_F(RouterServiceTest, FieldsAWorkersConnectionNamesStopAtTheRouter) {
  ShortAnswerWorker worker(
      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
      "Connection: close, X-Private-Hop\r\nx-private-hop: secret\r\n"
      "X-Worker-Note: end to end\r\n\r\n{}");
  RegisterWorker("us-east-1", "w1", worker.address(), good_);
  TestRouter& router = AddRouter(Tier::kRegional, "us-east-1");
  WaitForWorkers(router, 1);
  net::HttpResponse response = Post(router.endpoint(), "key-a", kPrompt);
  ASSERT_EQ(response.status, 200) << response.body;
  EXPECT_EQ(response.headers.Get("X-Worker-Note"), "end to end");
  EXPECT_FALSE(response.headers.Has("X-Private-Hop"))
      << "a field the worker's Connection named reached the client";
}

TEST_F(RouterServiceTest, RefusesMissingUnknownAndMalformedCredentials) {
  FakeWorker& worker = AddWorker("us-east-1", "w1");
  TestRouter& router = AddRouter(Tier::kRegional, "us-east-1");
  WaitForWorkers(router, 1);
  for (const std::string key : {"", "wrong-key", "KEY-A", "key-ab"}) {
    net::HttpResponse response = Post(router.endpoint(), key, kPrompt);
    EXPECT_EQ(response.status, 401) << key;
    EXPECT_NE(response.body.find("\"error\""), std::string::npos);
  }
  // Tenant ids are not keys.
  EXPECT_EQ(Post(router.endpoint(), "tenant-a", kPrompt).status, 401);
  EXPECT_EQ(Get(router.endpoint(), "", "/v1/models").status, 401);
  EXPECT_EQ(worker.state().requests.load(), 0);
}

// A tenant that may not send plaintext is refused at the router, for both OpenAI paths,
// and its prompt never reaches a worker; the same key's sealed path is not affected here.
TEST_F(RouterServiceTest, PlaintextOfAConfidentialTenantStopsAtTheRouter) {
  store::Tenant confidential = MakeTenant("tenant-sealed", "key-sealed");
  confidential.allow_plaintext = false;
  PutTenant(confidential);
  FakeWorker& worker = AddWorker("us-east-1", "w1");
  TestRouter& router = AddRouter(Tier::kRegional, "us-east-1");
  WaitForWorkers(router, 1);
  for (const char* path : {"/v1/completions", "/v1/chat/completions"}) {
    net::HttpResponse response = Post(router.endpoint(), "key-sealed", kPrompt, path);
    EXPECT_EQ(response.status, 403) << path << ": " << response.body;
    EXPECT_NE(response.body.find("plaintext_forbidden"), std::string::npos) << response.body;
  }
  EXPECT_EQ(worker.state().requests.load(), 0);
  // Another tenant's plaintext still goes through.
  EXPECT_EQ(Post(router.endpoint(), "key-a", kPrompt).status, 200);
  EXPECT_EQ(worker.state().requests.load(), 1);
}

TEST_F(RouterServiceTest, BadRequestsAreAnsweredByTheRouter) {
  FakeWorker& worker = AddWorker("us-east-1", "w1");
  TestRouter& router = AddRouter(Tier::kRegional, "us-east-1");
  WaitForWorkers(router, 1);
  EXPECT_EQ(Post(router.endpoint(), "key-a", "{not json").status, 400);
  EXPECT_EQ(Post(router.endpoint(), "key-a", "[1,2]").status, 400);
  EXPECT_EQ(Post(router.endpoint(), "key-a", R"({"model":7})").status, 400);
  EXPECT_EQ(Post(router.endpoint(), "key-a", R"({"prompt":"x"})").status, 400);
  net::HttpResponse unknown = Post(router.endpoint(), "key-a", R"({"model":"nope","prompt":"x"})");
  EXPECT_EQ(unknown.status, 404);
  EXPECT_NE(unknown.body.find("model_not_found"), std::string::npos);
  const std::string long_name(257, 'm');
  net::HttpResponse too_long =
      Post(router.endpoint(), "key-a", R"({"model":")" + long_name + R"(","prompt":"x"})");
  EXPECT_EQ(too_long.status, 400) << too_long.body;
  EXPECT_NE(too_long.body.find("longer than 256 bytes"), std::string::npos) << too_long.body;
  // OpenAI's type for a request it refuses, as the worker's.
  EXPECT_EQ(nlohmann::json::parse(too_long.body)["error"]["type"], "invalid_request_error");
  EXPECT_EQ(too_long.body.find(long_name), std::string::npos) << "the name was echoed";
  EXPECT_EQ(Post(router.endpoint(), "key-a", "sealed", "/v1/sealed",
                 {{"X-Supercluster-Model", long_name}, {"X-Supercluster-Candidates", "w1"}})
                .status,
            400);
  EXPECT_EQ(Post(router.endpoint(), "key-a", R"({"model":")" + long_name.substr(1) +
                                                 R"(","prompt":"x"})")
                .status,
            404)
      << "a name of 256 bytes is not refused for its length";
  // Sealed requests name their model and candidates in headers.
  EXPECT_EQ(Post(router.endpoint(), "key-a", "sealed", "/v1/sealed").status, 400);
  EXPECT_EQ(Post(router.endpoint(), "key-a", "sealed", "/v1/sealed",
                 {{"X-Supercluster-Model", "kjv"}, {"X-Supercluster-Candidates", "w1,,"}})
                .status,
            400);
  std::string big(2 << 20, 'x');
  EXPECT_EQ(Post(router.endpoint(), "key-a", R"({"model":"kjv","prompt":")" + big + "\"}").status,
            413);
  EXPECT_EQ(worker.state().requests.load(), 0);
}

TEST_F(RouterServiceTest, SealedRequestsGoOnlyToTheirCandidates) {
  FakeWorker& w1 = AddWorker("us-east-1", "w1");
  FakeWorker& w2 = AddWorker("us-east-1", "w2");
  TestRouter& router = AddRouter(Tier::kRegional, "us-east-1");
  WaitForWorkers(router, 2);
  for (int i = 0; i < 10; ++i) {
    net::HttpResponse response =
        Post(router.endpoint(), "key-a", "opaque envelope", "/v1/sealed",
             {{"X-Supercluster-Model", "kjv"}, {"X-Supercluster-Candidates", "us-east-1/w2"}});
    EXPECT_EQ(response.status, 200);
  }
  EXPECT_EQ(w1.state().requests.load(), 0);
  EXPECT_EQ(w2.state().requests.load(), 10);
  // Candidates nobody here can serve: a clear 503.
  net::HttpResponse none =
      Post(router.endpoint(), "key-a", "opaque envelope", "/v1/sealed",
           {{"X-Supercluster-Model", "kjv"}, {"X-Supercluster-Candidates", "us-east-1/w9"}});
  EXPECT_EQ(none.status, 503);
  EXPECT_FALSE(none.headers.Get("Retry-After").empty());
}

TEST_F(RouterServiceTest, RateLimitAnswers429WithRetryAfter) {
  AddWorker("us-east-1", "w1");
  TestRouter& router = AddRouter(Tier::kRegional, "us-east-1");
  WaitForWorkers(router, 1);
  int limited = 0;
  for (int i = 0; i < 5; ++i) {
    net::HttpResponse response = Post(router.endpoint(), "key-slow", kPrompt);
    if (response.status == 429) {
      ++limited;
      EXPECT_FALSE(response.headers.Get("Retry-After").empty());
    } else {
      EXPECT_EQ(response.status, 200);
    }
  }
  EXPECT_GE(limited, 3) << "one request a second";
  EXPECT_EQ(Post(router.endpoint(), "key-a", kPrompt).status, 200) << "other tenants unaffected";
}

TEST_F(RouterServiceTest, FailingWorkerIsEjectedAndClientsNeverSeeItsFailures) {
  auto [good, bad] = AddGoodAndFailingWorkers();
  TestRouter& router = AddRouter(Tier::kRegional, "us-east-1");
  WaitForWorkers(router, 2);
  ExpectEachAnsweredByTheGoodWorker(router.endpoint(), 40);
  EXPECT_EQ(bad.state().requests.load(), 5) << "ejected after five consecutive failures";
  EXPECT_EQ(good.state().requests.load(), 40);
  bool ejected = false;
  for (const UpstreamState& state : router.service().worker_balancer().States()) {
    if (state.id == "us-east-1/bad") ejected = state.ejected;
  }
  EXPECT_TRUE(ejected);
  EXPECT_NE(router.service().StatusJson().find("\"ejected\""), std::string::npos);
  net::HttpResponse metrics = Get(router.endpoint(), "", "/metrics");
  EXPECT_NE(metrics.body.find("supercluster_router_ejections_total{tier=\"regional\"} 1"),
            std::string::npos);
}

// A router with three polling io threads (an io_context each): every request gets a new
// connection, so consecutive requests run on different threads, while the balancer, the
// ejection and the upstream pools are shared or kept per thread. Requests from several
// clients at once are all answered by the good worker once the failing one is ejected.
TEST_F(RouterServiceTest, SeveralPollingIoThreadsShareOneBalancer) {
  auto [good, bad] = AddGoodAndFailingWorkers();
  TestRouter& router = AddRouter(Tier::kRegional, "us-east-1", {}, /*io_threads=*/3);
  WaitForWorkers(router, 2);
  ExpectEachAnsweredByTheGoodWorker(router.endpoint(), 12);
  EXPECT_EQ(bad.state().requests.load(), 5) << "ejected after five consecutive failures";
  std::vector<std::future<int>> clients;
  for (int c = 0; c < 6; ++c) {
    clients.push_back(std::async(std::launch::async, [&router] {
      net::HttpClient client(router.endpoint(), net::testing::TestClientOptions());
      int answered = 0;
      for (int i = 0; i < 10; ++i) {
        auto response = client.Request(JsonPost("key-a", kPrompt));
        if (response.ok() && response->status == 200) ++answered;
      }
      return answered;
    }));
  }
  for (auto& answered : clients) EXPECT_EQ(answered.get(), 10);
  EXPECT_EQ(good.state().requests.load(), 12 + 60);
  EXPECT_EQ(bad.state().requests.load(), 5);
  // Every try was counted out as it was counted in (a first try by the pick, a retry by
  // the proxy): none is left outstanding, which would weigh on later picks.
  net::HttpResponse status = Get(router.endpoint(), "", "/v1/status");
  nlohmann::json upstreams = nlohmann::json::parse(status.body)["upstreams"];
  ASSERT_EQ(upstreams.size(), 2u) << status.body;
  for (const nlohmann::json& upstream : upstreams) {
    EXPECT_EQ(upstream["outstanding"], 0) << upstream.dump();
  }
}

// A worker that goes silent (a stopped process, a partition) while a request waits on it
// for its answer: once the health checks find it unreachable, the request is tried on
// another worker instead of waiting out router.upstream_response_timeout (30 s here).
TEST_F(RouterServiceTest, ARequestWaitingOnAWorkerThatGoesSilentIsTriedElsewhere) {
  FakeWorker& silent = AddWorker("us-east-1", "w1");
  FakeWorker& other = AddWorker("us-east-1", "w2");
  TestRouter& router = AddRouter(Tier::kRegional, "us-east-1", {}, 1, milliseconds(30000));
  WaitForWorkers(router, 2);
  other.state().ready = false;  // so that the request goes to w1
  WaitForWorkers(router, 1);
  silent.state().silent = true;
  const auto started = std::chrono::steady_clock::now();
  net::HttpResponse response;
  std::thread client([&] { response = Post(router.endpoint(), "key-a", kPrompt); });
  for (int i = 0; i < 500 && silent.state().requests.load() == 0; ++i) {
    std::this_thread::sleep_for(milliseconds(10));
  }
  ASSERT_EQ(silent.state().requests.load(), 1) << "the request should be waiting on w1";
  other.state().ready = true;
  router.service().Start();  // health checks every 50 ms, each given 500 ms
  client.join();
  const auto took = std::chrono::steady_clock::now() - started;
  EXPECT_EQ(response.status, 200) << response.body;
  EXPECT_EQ(response.headers.Get("X-Supercluster-Served-By"), "us-east-1/w2");
  EXPECT_LT(took, std::chrono::seconds(10)) << "it waited for the response timeout";
}

TEST_F(RouterServiceTest, AWorkerThatDropsConnectionsIsRetriedElsewhere) {
  AddWorker("us-east-1", "good");
  FakeWorker& bad = AddWorker("us-east-1", "bad");
  bad.state().mode = WorkerMode::kCloseConnection;
  TestRouter& router = AddRouter(Tier::kRegional, "us-east-1");
  WaitForWorkers(router, 2);
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(Post(router.endpoint(), "key-a", kPrompt).status, 200) << i;
  }
}

TEST_F(RouterServiceTest, SaturatedWorkerPassesTheRequestOn) {
  FakeWorker& busy = AddWorker("us-east-1", "busy");
  busy.state().mode = WorkerMode::kSaturated;
  TestRouter& router = AddRouter(Tier::kRegional, "us-east-1");
  WaitForWorkers(router, 1);
  net::HttpResponse alone = Post(router.endpoint(), "key-a", kPrompt);
  EXPECT_EQ(alone.status, 503) << "with nobody else, the worker's answer";
  EXPECT_EQ(alone.headers.Get("Retry-After"), "2");
  AddWorker("us-east-1", "free");
  WaitForWorkers(router, 2);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(Post(router.endpoint(), "key-a", kPrompt).status, 200);
  for (const UpstreamState& state : router.service().worker_balancer().States()) {
    EXPECT_FALSE(state.ejected) << state.id << ": saturation is not failure";
  }
}

// One request, two attempts: a saturated local worker, then a spill to the peer region's
// router. Each attempt carries the client's fields and its own hop's, never the other's.
TEST_F(RouterServiceTest, EachAttemptCarriesOnlyItsOwnHopsFields) {
  FakeWorker& busy = AddWorker("us-east-1", "busy");
  busy.state().mode = WorkerMode::kSaturated;
  FakeWorker peer("us-east-2's router");  // records what a peer router would get
  TestRouter& router = AddRouter(Tier::kRegional, "us-east-1", {"us-east-2=" + peer.address()});
  WaitForWorkers(router, 1);
  net::HttpResponse response = Post(router.endpoint(), "key-a", kPrompt, "/v1/completions",
                                    {{"X-Client-Note", "end to end"}});
  ASSERT_EQ(response.status, 200) << response.body;
  ASSERT_EQ(busy.state().requests.load(), 1);
  ASSERT_EQ(peer.state().requests.load(), 1);
  auto count = [](const net::Headers& headers, std::string_view name) {
    int found = 0;
    for (auto [field, value] : headers) found += net::EqualsIgnoreCase(field, name) ? 1 : 0;
    return found;
  };
  const net::Headers to_worker = busy.LastHeaders();
  EXPECT_EQ(to_worker.Get("X-Client-Note"), "end to end");
  EXPECT_EQ(count(to_worker, "X-Supercluster-Tenant"), 1);
  EXPECT_EQ(to_worker.Get("X-Supercluster-Tenant"), "tenant-a");
  EXPECT_EQ(count(to_worker, "Authorization"), 0) << "the API key reached a worker";
  EXPECT_EQ(count(to_worker, "X-Supercluster-Spilled"), 0);
  const net::Headers to_peer = peer.LastHeaders();
  EXPECT_EQ(to_peer.Get("X-Client-Note"), "end to end");
  EXPECT_EQ(count(to_peer, "X-Supercluster-Tenant"), 0) << "the worker's field went on";
  EXPECT_EQ(count(to_peer, "Authorization"), 1);
  EXPECT_EQ(to_peer.Get("Authorization"), "Bearer key-a");
  EXPECT_EQ(count(to_peer, "X-Supercluster-Spilled"), 1);
  EXPECT_EQ(to_peer.Get("X-Supercluster-Spilled"), "us-east-1");
}

TEST_F(RouterServiceTest, FiveTimesSlowerWorkerGetsASmallerShare) {
  FakeWorker& fast = AddWorker("us-east-1", "fast");
  FakeWorker& slow = AddWorker("us-east-1", "slow");
  fast.state().delay_ms = 10;
  slow.state().delay_ms = 50;
  TestRouter& router = AddRouter(Tier::kRegional, "us-east-1");
  WaitForWorkers(router, 2);
  std::vector<std::thread> clients;
  std::atomic<int> failures{0};
  for (int c = 0; c < 4; ++c) {
    clients.emplace_back([&] {
      for (int i = 0; i < 25; ++i) {
        if (Post(router.endpoint(), "key-a", kPrompt).status != 200) ++failures;
      }
    });
  }
  for (std::thread& client : clients) client.join();
  EXPECT_EQ(failures.load(), 0);
  int fast_share = fast.state().requests.load();
  int slow_share = slow.state().requests.load();
  EXPECT_EQ(fast_share + slow_share, 100);
  EXPECT_LT(slow_share * 2, fast_share) << "fast " << fast_share << " slow " << slow_share;
}

TEST_F(RouterServiceTest, WorkerDyingMidStreamEndsTheClientStreamWithAnError) {
  FakeWorker& worker = AddWorker("us-east-1", "w1");
  worker.state().mode = WorkerMode::kDieMidStream;
  TestRouter& router = AddRouter(Tier::kRegional, "us-east-1");
  WaitForWorkers(router, 1);
  net::HttpClient client(router.endpoint(), net::testing::TestClientOptions());
  net::HttpRequest request = CompletionRequest(R"({"model":"kjv","prompt":"x","stream":true})");
  std::vector<net::SseEvent> events;
  net::SseParser parser([&](const net::SseEvent& event) { events.push_back(event); });
  auto start = std::chrono::steady_clock::now();
  auto head = client.Stream(request, [](const net::ResponseHead&) {},
                            [&](std::string_view data) { return parser.Feed(data); });
  ASSERT_TRUE(head.ok()) << head.status().ToString();
  EXPECT_EQ(head->status, 200);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3)) << "no hang";
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].data, R"({"text":"In the"})");
  EXPECT_EQ(events[1].event, "error");
  EXPECT_NE(events[1].data.find("\"error\":{"), std::string::npos) << events[1].data;
}

// Without an event stream to carry an error event, a broken stream is cut off: the client
// gets no last chunk and sees the body incomplete, never a short body that looks whole.
TEST_F(RouterServiceTest, WorkerDyingMidPlainStreamCutsTheClientResponseOff) {
  FakeWorker& worker = AddWorker("us-east-1", "w1");
  worker.state().mode = WorkerMode::kDieMidPlainStream;
  TestRouter& router = AddRouter(Tier::kRegional, "us-east-1");
  WaitForWorkers(router, 1);
  net::HttpClient client(router.endpoint(), net::testing::TestClientOptions());
  net::HttpRequest request = CompletionRequest();
  std::string received;
  int status = 0;
  auto start = std::chrono::steady_clock::now();
  auto head = client.Stream(
      request, [&](const net::ResponseHead& response) { status = response.status; },
      [&](std::string_view data) {
        received.append(data);
        return true;
      });
  EXPECT_FALSE(head.ok()) << "a cut-off body was delivered as complete";
  EXPECT_EQ(status, 200);
  EXPECT_EQ(received, "the first part");
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3)) << "no hang";
}

// Answers with a Content-Length within router.max_collected_response_bytes reach the client
// whole with their length; longer ones are streamed chunked, byte for byte the same.
TEST_F(RouterServiceTest, SmallAnswersKeepTheirLengthAndLargeOnesStream) {
  FakeWorker& worker = AddWorker("us-east-1", "w1");
  TestRouter& router = AddRouter(Tier::kRegional, "us-east-1");
  WaitForWorkers(router, 1);
  net::HttpResponse small = Post(router.endpoint(), "key-a", kPrompt);
  ASSERT_EQ(small.status, 200) << small.body;
  EXPECT_EQ(small.body, R"({"served_by":"us-east-1/w1"})");
  EXPECT_EQ(small.headers.Get("Content-Length"), std::to_string(small.body.size()));
  EXPECT_FALSE(small.headers.Has("Transfer-Encoding"));
  EXPECT_EQ(small.headers.Get("Content-Type"), "application/json");
  EXPECT_EQ(small.headers.Get("X-Worker-Note"), "end to end");
  EXPECT_FALSE(small.headers.Get("X-Supercluster-Request-Id").empty());

  worker.state().mode = WorkerMode::kLargeAnswer;
  net::HttpResponse large = Post(router.endpoint(), "key-a", kPrompt);
  ASSERT_EQ(large.status, 200);
  EXPECT_EQ(large.body, kLargeAnswerBody);
  EXPECT_EQ(large.headers.Get("Transfer-Encoding"), "chunked");
  EXPECT_FALSE(large.headers.Has("Content-Length"));
  EXPECT_FALSE(large.headers.Get("X-Supercluster-Request-Id").empty());
}

// A collected answer that ends before its Content-Length is not passed on short, and not
// retried (the worker may have acted on the request): the client gets a 502.
TEST_F(RouterServiceTest, AnAnswerShorterThanItsLengthBecomesA502) {
  ShortAnswerWorker worker;
  RegisterWorker("us-east-1", "w1", worker.address(), good_);
  TestRouter& router = AddRouter(Tier::kRegional, "us-east-1");
  WaitForWorkers(router, 1);
  net::HttpResponse response = Post(router.endpoint(), "key-a", kPrompt);
  EXPECT_EQ(response.status, 502) << response.body;
  EXPECT_NE(response.body.find("upstream_error"), std::string::npos) << response.body;
  EXPECT_EQ(response.body.find("cut-short"), std::string::npos) << response.body;
  EXPECT_EQ(worker.posts(), 1);
}

// A 5xx is held back in case another worker does better; if its body breaks off (or is
// too long to hold), the client gets the router's own error body, never the short one as
// if whole.
TEST_F(RouterServiceTest, AHeldErrorWhoseBodyBreaksOffIsNeverPassedOnShort) {
  for (const std::string& answer :
       {std::string("HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                    "Content-Length: 1000\r\nConnection: close\r\n\r\n{\"err"),
        "HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain\r\nContent-Length: " +
            std::to_string(100 * 1024) + "\r\nConnection: close\r\n\r\n" +
            std::string(100 * 1024, 'x')}) {
    SCOPED_TRACE(answer.substr(0, 12));
    ShortAnswerWorker worker(answer);
    RegisterWorker("us-east-1", "w1", worker.address(), good_);
    TestRouter& router = AddRouter(Tier::kRegional, "us-east-1");
    WaitForWorkers(router, 1);
    net::HttpResponse response = Post(router.endpoint(), "key-a", kPrompt);
    EXPECT_GE(response.status, 500) << response.body;
    nlohmann::json body = nlohmann::json::parse(response.body, nullptr, false);
    ASSERT_TRUE(body.is_object()) << response.body.substr(0, 200);
    EXPECT_EQ(body["error"]["type"], "upstream_error") << response.body;
    EXPECT_EQ(worker.posts(), 1);
    RemoveWorker("us-east-1", "w1");
  }
}

// An answer collected whole (or a 5xx held back) must end within the upstream response
// timeout from its head: an upstream trickling its body a byte at a time, each pause well
// within the timeout, is cut off instead of holding the client for ever (here 100 bytes,
// 100 ms apart, against a 600 ms timeout).
TEST_F(RouterServiceTest, AnAnswerTrickledPastTheResponseTimeoutIsCutOff) {
  for (const char* status : {"200 OK", "500 Internal Server Error"}) {
    SCOPED_TRACE(status);
    ShortAnswerWorker worker(std::string("HTTP/1.1 ") + status +
                                 "\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n"
                                 "Connection: close\r\n\r\n" + std::string(100, 'z'),
                             milliseconds(100));
    RegisterWorker("us-east-1", "w1", worker.address(), good_);
    TestRouter& router = AddRouter(Tier::kRegional, "us-east-1", {}, 1, milliseconds(600));
    WaitForWorkers(router, 1);
    auto started = std::chrono::steady_clock::now();
    net::HttpResponse response = Post(router.endpoint(), "key-a", kPrompt);
    auto took = std::chrono::steady_clock::now() - started;
    EXPECT_GE(response.status, 500) << response.body;
    EXPECT_NE(response.body.find("did not end within 600 ms"), std::string::npos)
        << response.body;
    EXPECT_LT(took, std::chrono::seconds(4)) << "held for the whole trickle (10 s)";
    RemoveWorker("us-east-1", "w1");
  }
}

// An event stream that breaks off mid-event still ends with an error event the client's
// SSE parser sees as one: an empty line ends the partial event first.
TEST_F(RouterServiceTest, AStreamCutMidEventEndsWithAnErrorEventOfItsOwn) {
  ShortAnswerWorker worker(
      "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n"
      "Connection: close\r\n\r\n12\r\ndata: {\"text\":\"hel\r\n");
  RegisterWorker("us-east-1", "w1", worker.address(), good_);
  TestRouter& router = AddRouter(Tier::kRegional, "us-east-1");
  WaitForWorkers(router, 1);
  net::HttpResponse response = Post(router.endpoint(), "key-a", kPrompt);
  EXPECT_EQ(response.status, 200);
  std::vector<net::SseEvent> events;
  net::SseParser parser([&](const net::SseEvent& event) { events.push_back(event); });
  ASSERT_TRUE(parser.Feed(response.body)) << response.body;
  ASSERT_FALSE(events.empty()) << response.body;
  EXPECT_EQ(events.back().event, "error") << response.body;
}

// Whether an answer is an event stream is read from the media type, not a substring of the
// Content-Type: a JSON answer that mentions text/event-stream in a parameter is cut off when
// it breaks (never completed with an error event and a clean end, a short body that looks
// whole), and an event stream in capitals still gets its error event.
TEST_F(RouterServiceTest, TheMediaTypeDecidesWhetherABrokenAnswerGetsAnErrorEvent) {
  struct Case {
    std::string content_type;
    bool event_stream;
  };
  for (const Case& test : {Case{"application/json; note=text/event-stream", false},
                           Case{"Text/Event-Stream; charset=utf-8", true}}) {
    SCOPED_TRACE(test.content_type);
    ShortAnswerWorker worker("HTTP/1.1 200 OK\r\nContent-Type: " + test.content_type +
                             "\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                             "6\r\ndata: \r\n");
    RegisterWorker("us-east-1", "w1", worker.address(), good_);
    TestRouter& router = AddRouter(Tier::kRegional, "us-east-1");
    WaitForWorkers(router, 1);
    net::HttpClient client(router.endpoint(), net::testing::TestClientOptions());
    auto response = client.Request(JsonPost("key-a", kPrompt, "/v1/completions", {}));
    if (test.event_stream) {
      ASSERT_TRUE(response.ok()) << response.status().ToString();
      EXPECT_NE(response->body.find("event: error"), std::string::npos) << response->body;
    } else {
      EXPECT_FALSE(response.ok()) << "a broken JSON answer ended cleanly: " << response->body;
    }
    RemoveWorker("us-east-1", "w1");
  }
}

TEST_F(RouterServiceTest, ClientGoingAwayCancelsTheUpstreamExchange) {
  FakeWorker& worker = AddWorker("us-east-1", "w1");
  worker.state().mode = WorkerMode::kEndlessStream;
  TestRouter& router = AddRouter(Tier::kRegional, "us-east-1");
  WaitForWorkers(router, 1);
  net::HttpClient client(router.endpoint(), net::testing::TestClientOptions());
  net::HttpRequest request = CompletionRequest(R"({"model":"kjv","prompt":"x","stream":true})");
  size_t received = 0;
  auto head = client.Stream(request, [](const net::ResponseHead&) {}, [&](std::string_view data) {
    received += data.size();
    return received < 100;  // then hang up
  });
  EXPECT_GE(received, 100u);
  auto start = std::chrono::steady_clock::now();
  while (!worker.state().client_went_away &&
         std::chrono::steady_clock::now() - start < std::chrono::seconds(3)) {
    std::this_thread::sleep_for(milliseconds(10));
  }
  EXPECT_TRUE(worker.state().client_went_away) << "the router cancelled the worker's stream";
  for (int i = 0; i < 100 && router.service().worker_balancer().Outstanding("us-east-1/w1") > 0;
       ++i) {
    std::this_thread::sleep_for(milliseconds(10));
  }
  EXPECT_EQ(router.service().worker_balancer().Outstanding("us-east-1/w1"), 0);
  EXPECT_TRUE(router.service().worker_balancer().Available("us-east-1/w1"))
      << "a client leaving is not the worker's failure";
}

TEST_F(RouterServiceTest, HealthChecksTakeANotReadyWorkerOutAndBringItBack) {
  FakeWorker& sick = AddWorker("us-east-1", "sick");
  FakeWorker& well = AddWorker("us-east-1", "well");
  TestRouter& router = AddRouter(Tier::kRegional, "us-east-1");
  WaitForWorkers(router, 2);
  sick.state().ready = false;
  router.service().CheckHealthNow();
  EXPECT_TRUE(router.service().worker_balancer().Available("us-east-1/sick")) << "one failure";
  router.service().CheckHealthNow();
  EXPECT_FALSE(router.service().worker_balancer().Available("us-east-1/sick"));
  for (int i = 0; i < 10; ++i) EXPECT_EQ(Post(router.endpoint(), "key-a", kPrompt).status, 200);
  EXPECT_EQ(sick.state().requests.load(), 0);
  EXPECT_EQ(well.state().requests.load(), 10);
  sick.state().ready = true;
  router.service().CheckHealthNow();
  EXPECT_TRUE(router.service().worker_balancer().Available("us-east-1/sick"));
  // With both workers down, the router is not ready.
  sick.state().ready = false;
  well.state().ready = false;
  router.service().CheckHealthNow();
  router.service().CheckHealthNow();
  EXPECT_EQ(Get(router.endpoint(), "", "/readyz").status, 503);
}

TEST_F(RouterServiceTest, ASlowClientSlowsTheWorkerDown) {
  FakeWorker& worker = AddWorker("us-east-1", "w1");
  worker.state().mode = WorkerMode::kBigStream;
  TestRouter& router = AddRouter(Tier::kRegional, "us-east-1");
  WaitForWorkers(router, 1);
  net::HttpClient client(router.endpoint(), net::testing::TestClientOptions());
  net::HttpRequest request = CompletionRequest();
  int64_t received = 0;
  int64_t ahead_while_paused = -1;
  bool intact = true;
  auto head = client.Stream(request, [](const net::ResponseHead&) {}, [&](std::string_view data) {
    received += static_cast<int64_t>(data.size());
    intact = intact && data.find_first_not_of('x') == std::string_view::npos;
    if (ahead_while_paused < 0 && received >= (1 << 20)) {
      std::this_thread::sleep_for(milliseconds(1500));  // the client stops reading
      ahead_while_paused = worker.state().bytes_acknowledged.load() - received;
    }
    return true;
  });
  ASSERT_TRUE(head.ok()) << head.status().ToString();
  EXPECT_EQ(received, int64_t{64} << 20);
  EXPECT_TRUE(intact);
  // Socket buffers on the way hold a few MiB; without backpressure the router would have
  // read all 64 MiB from the worker during the pause.
  EXPECT_LT(ahead_while_paused, int64_t{24} << 20) << ahead_while_paused;
}

TEST_F(RouterServiceTest, StreamsPassThrough) {
  AddWorker("us-east-1", "w1");
  TestRouter& router = AddRouter(Tier::kRegional, "us-east-1");
  WaitForWorkers(router, 1);
  net::HttpResponse response =
      Post(router.endpoint(), "key-a", R"({"model":"kjv","prompt":"x","stream":true})");
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.headers.Get("Content-Type"), "text/event-stream");
  EXPECT_NE(response.body.find(" beginning"), std::string::npos);
  EXPECT_NE(response.body.find("data: [DONE]"), std::string::npos);
}

TEST_F(RouterServiceTest, WorkerWithTheWrongMeasurementsNeverGetsTraffic) {
  attest::DevMeasurements evil = Measurements("evil");
  FakeWorker& impostor = AddWorker("us-east-1", "impostor", &evil);
  FakeWorker& honest = AddWorker("us-east-1", "honest");
  TestRouter& router = AddRouter(Tier::kRegional, "us-east-1");
  WaitForWorkers(router, 1);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(Post(router.endpoint(), "key-a", kPrompt).status, 200);
  EXPECT_EQ(impostor.state().requests.load(), 0);
  EXPECT_EQ(honest.state().requests.load(), 20);
  std::string status = router.service().StatusJson();
  EXPECT_NE(status.find("pcr_mismatch"), std::string::npos) << status;
  // Its document is not handed out either.
  net::HttpResponse candidates = Get(router.endpoint(), "key-a", "/v1/attestation?model=kjv&k=5");
  EXPECT_EQ(candidates.status, 200);
  EXPECT_NE(candidates.body.find("\"instance\":\"honest\""), std::string::npos);
  EXPECT_EQ(candidates.body.find("impostor"), std::string::npos);
}

TEST_F(RouterServiceTest, ModelsAttestationAndReadiness) {
  TestRouter& router = AddRouter(Tier::kRegional, "us-east-1");
  EXPECT_EQ(Get(router.endpoint(), "", "/readyz").status, 503) << "no worker yet";
  AddWorker("us-east-1", "w1");
  AddWorker("us-east-1", "w2", nullptr, "tiny");
  WaitForWorkers(router, 2);
  EXPECT_EQ(Get(router.endpoint(), "", "/readyz").status, 200);
  net::HttpResponse models = Get(router.endpoint(), "key-a", "/v1/models");
  EXPECT_EQ(models.status, 200);
  EXPECT_NE(models.body.find("\"id\":\"kjv\""), std::string::npos) << models.body;
  EXPECT_NE(models.body.find("\"id\":\"tiny\""), std::string::npos) << models.body;
  net::HttpResponse one = Get(router.endpoint(), "key-a", "/v1/attestation?model=kjv&k=1");
  EXPECT_EQ(one.status, 200);
  EXPECT_NE(one.body.find("\"region\":\"us-east-1\""), std::string::npos);
  EXPECT_NE(one.body.find("\"document\":\""), std::string::npos);
  EXPECT_EQ(Get(router.endpoint(), "key-a", "/v1/attestation?model=kjv&k=0").status, 400);
  EXPECT_EQ(Get(router.endpoint(), "key-a", "/v1/attestation?model=kjv&k=x").status, 400);
  EXPECT_EQ(Get(router.endpoint(), "key-a", "/v1/attestation?k=1").status, 400);
  // A model no worker of the region serves is not found (404), not unavailable (503).
  net::HttpResponse unknown = Get(router.endpoint(), "key-a", "/v1/attestation?model=nope&k=1");
  EXPECT_EQ(unknown.status, 404) << unknown.body;
  EXPECT_NE(unknown.body.find("model_not_found"), std::string::npos) << unknown.body;
  net::HttpResponse status = Get(router.endpoint(), "", "/v1/status");
  EXPECT_NE(status.body.find("\"tier\":\"regional\""), std::string::npos) << status.body;
}

TEST_F(RouterServiceTest, SpillsToAPeerRegionWhenLocalWorkersAreGone) {
  FakeWorker& east2 = AddWorker("us-east-2", "w1");
  TestRouter& peer = AddRouter(Tier::kRegional, "us-east-2");
  WaitForWorkers(peer, 1);
  FakeWorker& east1 = AddWorker("us-east-1", "w1");
  TestRouter& router = AddRouter(Tier::kRegional, "us-east-1", {"us-east-2=" + peer.address()});
  WaitForWorkers(router, 1);
  EXPECT_EQ(Post(router.endpoint(), "key-a", kPrompt).headers.Get("X-Supercluster-Served-By"),
            "us-east-1/w1");
  RemoveWorker("us-east-1", "w1");
  WaitForWorkers(router, 0);
  net::HttpResponse spilled = Post(router.endpoint(), "key-a", kPrompt);
  ASSERT_EQ(spilled.status, 200) << spilled.body;
  EXPECT_EQ(spilled.headers.Get("X-Supercluster-Served-By"), "us-east-2/w1");
  net::Headers seen = east2.LastHeaders();
  EXPECT_EQ(seen.Get("X-Supercluster-Spilled"), "us-east-1");
  EXPECT_EQ(seen.Get("X-Supercluster-Tenant"), "tenant-a") << "the peer authenticated again";
  EXPECT_EQ(east1.state().requests.load(), 1);
  // A request that was spilled already is not spilled again: this region knows the model
  // no more, and says so.
  net::HttpResponse again = Post(router.endpoint(), "key-a", kPrompt, "/v1/completions",
                                 {{"X-Supercluster-Spilled", "eu-west-1"}});
  EXPECT_EQ(again.status, 404) << again.body;
  EXPECT_EQ(east2.state().requests.load(), 1);
}

TEST_F(RouterServiceTest, TenantRestrictedToUsEastIsNeverServedInUsWest) {
  FakeWorker& west = AddWorker("us-west-2", "w1");
  TestRouter& router = AddRouter(Tier::kRegional, "us-west-2");
  WaitForWorkers(router, 1);
  net::HttpResponse refused = Post(router.endpoint(), "key-east", kPrompt);
  EXPECT_EQ(refused.status, 503);
  EXPECT_NE(refused.body.find("no allowed region can serve this request"), std::string::npos)
      << refused.body;
  EXPECT_EQ(west.state().requests.load(), 0);
  EXPECT_EQ(Post(router.endpoint(), "key-a", kPrompt).status, 200) << "others are served";

  // With a us-east peer, the restricted tenant is handed over there.
  FakeWorker& east = AddWorker("us-east-1", "w1");
  TestRouter& east_router = AddRouter(Tier::kRegional, "us-east-1");
  WaitForWorkers(east_router, 1);
  TestRouter& west_with_peer =
      AddRouter(Tier::kRegional, "us-west-2", {"us-east-1=" + east_router.address()});
  WaitForWorkers(west_with_peer, 1);
  net::HttpResponse spilled = Post(west_with_peer.endpoint(), "key-east", kPrompt);
  EXPECT_EQ(spilled.status, 200) << spilled.body;
  EXPECT_EQ(spilled.headers.Get("X-Supercluster-Served-By"), "us-east-1/w1");
  EXPECT_EQ(west.state().requests.load(), 1);
  EXPECT_EQ(east.state().requests.load(), 1);
  net::HttpResponse models = Get(router.endpoint(), "key-east", "/v1/models");
  EXPECT_EQ(models.body.find("kjv"), std::string::npos) << "nothing here is for this tenant";

  // Sealed only to workers in a region the tenant may not use: it can never be served, so
  // a 400 that says why, not a 503 to retry.
  net::HttpResponse sealed_west = Post(
      west_with_peer.endpoint(), "key-east", "opaque envelope", "/v1/sealed",
      {{"X-Supercluster-Model", "kjv"}, {"X-Supercluster-Candidates", "us-west-2/w1"}});
  EXPECT_EQ(sealed_west.status, 400) << sealed_west.body;
  EXPECT_NE(sealed_west.body.find("names no region tenant tenant-east may be served in"),
            std::string::npos)
      << sealed_west.body;
  EXPECT_EQ(west.state().requests.load(), 1);
  EXPECT_EQ(east.state().requests.load(), 1);
  // A sealed request can spill only to its candidates' regions: for a model nobody here
  // serves, with candidates here only, there is nowhere to spill, and that is a 404.
  net::HttpResponse unknown = Post(
      west_with_peer.endpoint(), "key-a", "opaque envelope", "/v1/sealed",
      {{"X-Supercluster-Model", "nope"}, {"X-Supercluster-Candidates", "us-west-2/w1"}});
  EXPECT_EQ(unknown.status, 404) << unknown.body;
  EXPECT_NE(unknown.body.find("model_not_found"), std::string::npos) << unknown.body;
}

// The global tier sends each request to the healthy region with the shortest measured
// round trip. Round trips on loopback are alike, so they are set here as health checks
// would report them (the real checks keep running: each moves an estimate 30 % of the way
// to about a millisecond, which leaves 200 ms far above 5).
TEST_F(RouterServiceTest, GlobalTierSendsEachRequestToTheNearestRegion) {
  TestRouter& global = AddTwoRegionsAndAGlobalRouter().global;
  auto report_round_trips = [&](int east_ms, int west_ms) {
    for (int i = 0; i < 20; ++i) {  // the estimate is smoothed: many samples to move it
      global.service().region_balancer().OnHealthCheck(
          "us-east-1", HealthCheckResult::kPassed, std::chrono::milliseconds(east_ms));
      global.service().region_balancer().OnHealthCheck(
          "us-west-2", HealthCheckResult::kPassed, std::chrono::milliseconds(west_ms));
    }
  };
  auto expect_served_by = [&](const std::string& worker) {
    for (int i = 0; i < 3; ++i) {
      net::HttpResponse response = Post(global.endpoint(), "key-a", kPrompt);
      ASSERT_EQ(response.status, 200) << response.body;
      EXPECT_EQ(response.headers.Get("X-Supercluster-Served-By"), worker);
    }
  };
  report_round_trips(200, 5);
  expect_served_by("us-west-2/w1");
  report_round_trips(5, 200);
  expect_served_by("us-east-1/w1");
}

TEST_F(RouterServiceTest, GlobalTierFailsOverWhenARegionsRouterDies) {
  auto [east_worker, west_worker, east, west, global] = AddTwoRegionsAndAGlobalRouter();
  EXPECT_EQ(Get(global.endpoint(), "", "/readyz").status, 200);
  net::HttpResponse first = Post(global.endpoint(), "key-a", kPrompt);
  ASSERT_EQ(first.status, 200) << first.body;
  std::string nearest = first.headers.Get("X-Supercluster-Served-By");
  ASSERT_FALSE(nearest.empty());
  std::string nearest_region = nearest.substr(0, nearest.find('/'));

  // The nearest region's router dies; the next request fails over before the first byte.
  (nearest_region == "us-east-1" ? east : west).Kill();
  net::HttpResponse failed_over = Post(global.endpoint(), "key-a", kPrompt);
  ASSERT_EQ(failed_over.status, 200) << failed_over.body;
  EXPECT_NE(failed_over.headers.Get("X-Supercluster-Served-By"), nearest);

  // The health checks take it out within two seconds (here, one round).
  auto start = std::chrono::steady_clock::now();
  global.service().Start();
  while (global.service().region_balancer().Available(nearest_region) &&
         std::chrono::steady_clock::now() - start < std::chrono::seconds(2)) {
    std::this_thread::sleep_for(milliseconds(10));
  }
  EXPECT_FALSE(global.service().region_balancer().Available(nearest_region));
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(Post(global.endpoint(), "key-a", kPrompt).status, 200);
  }
  // The tenant restricted to us-east-* never reaches us-west-2 through the global tier.
  net::HttpResponse east_only = Post(global.endpoint(), "key-east", kPrompt);
  if (nearest_region == "us-east-1") {
    EXPECT_EQ(east_only.status, 503) << east_only.body;
    EXPECT_NE(east_only.body.find("no allowed region"), std::string::npos) << east_only.body;
  } else {
    EXPECT_EQ(east_only.headers.Get("X-Supercluster-Served-By"), "us-east-1/w1");
  }
  // Attestation candidates come from the healthy regions.
  net::HttpResponse candidates = Get(global.endpoint(), "key-a", "/v1/attestation?model=kjv&k=4");
  EXPECT_EQ(candidates.status, 200);
  EXPECT_NE(candidates.body.find("\"document\""), std::string::npos) << candidates.body;
  net::HttpResponse models = Get(global.endpoint(), "key-a", "/v1/models");
  EXPECT_NE(models.body.find("\"id\":\"kjv\""), std::string::npos) << models.body;
}

TEST_F(RouterServiceTest, GlobalTierSendsSealedRequestsToTheirCandidatesRegions) {
  auto [east_worker, west_worker, east, west, global] = AddTwoRegionsAndAGlobalRouter();
  for (const std::string candidate : {"us-west-2/w1", "us-east-1/w1", "us-west-2/w1"}) {
    net::HttpResponse response =
        Post(global.endpoint(), "key-a", "opaque envelope", "/v1/sealed",
             {{"X-Supercluster-Model", "kjv"}, {"X-Supercluster-Candidates", candidate}});
    EXPECT_EQ(response.status, 200) << response.body;
    EXPECT_EQ(response.headers.Get("X-Supercluster-Served-By"), candidate);
  }
  EXPECT_EQ(east_worker.state().requests.load(), 1);
  EXPECT_EQ(west_worker.state().requests.load(), 2);
  EXPECT_EQ(east_worker.LastHeaders().Get("X-Supercluster-Candidates"), "us-east-1/w1");
  // A spill mark from an end client stops at the global endpoint: passed on, it would keep
  // the regional router from spilling the request.
  net::HttpResponse marked =
      Post(global.endpoint(), "key-a", "opaque envelope", "/v1/sealed",
           {{"X-Supercluster-Model", "kjv"}, {"X-Supercluster-Candidates", "us-east-1/w1"},
            {"X-Supercluster-Spilled", "us-west-2"}});
  EXPECT_EQ(marked.status, 200) << marked.body;
  EXPECT_EQ(east_worker.LastHeaders().Get("X-Supercluster-Spilled"), "");

  // Sealed only to workers in regions the cluster does not have: a client error (400); to an
  // unknown worker of a real region, no capacity now (503: the client may fetch candidates
  // again). An unknown model's candidates: not found in any region (404).
  const net::Endpoint global_endpoint = global.endpoint();  // a lambda cannot capture a binding
  auto sealed_to = [&](const std::string& candidates) {
    return Post(global_endpoint, "key-a", "opaque envelope", "/v1/sealed",
                {{"X-Supercluster-Model", "kjv"}, {"X-Supercluster-Candidates", candidates}});
  };
  net::HttpResponse nowhere = sealed_to("nowhere/w1,elsewhere/w2");
  EXPECT_EQ(nowhere.status, 400) << nowhere.body;
  EXPECT_NE(nowhere.body.find("names no region"), std::string::npos) << nowhere.body;
  EXPECT_EQ(sealed_to("us-east-1/w9").status, 503);
  EXPECT_EQ(sealed_to("nowhere/w1,us-west-2/w1").status, 200) << "one real candidate suffices";
  net::HttpResponse unknown = Get(global.endpoint(), "key-a", "/v1/attestation?model=nope&k=2");
  EXPECT_EQ(unknown.status, 404) << unknown.body;

  // Candidates alternate between regions (nearest first), so a client sealing to them has a
  // region to fall back on.
  AddWorker("us-east-1", "w2");
  AddWorker("us-west-2", "w2");
  WaitForWorkers(east, 2);
  WaitForWorkers(west, 2);
  net::HttpResponse candidates = Get(global.endpoint(), "key-a", "/v1/attestation?model=kjv&k=2");
  ASSERT_EQ(candidates.status, 200);
  size_t first_east = candidates.body.find("\"region\":\"us-east-1\"");
  size_t first_west = candidates.body.find("\"region\":\"us-west-2\"");
  ASSERT_NE(first_east, std::string::npos) << candidates.body;
  ASSERT_NE(first_west, std::string::npos) << candidates.body;
  size_t count = 0;
  for (size_t at = candidates.body.find("\"document\""); at != std::string::npos;
       at = candidates.body.find("\"document\"", at + 1)) {
    ++count;
  }
  EXPECT_EQ(count, 2u) << "one from each region, not both from the nearest";
}

}  // namespace
}  // namespace supercluster::router
