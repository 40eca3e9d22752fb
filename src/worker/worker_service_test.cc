// The worker service end to end in one process: the bundled KJV model in a real engine, a
// real enclave (EnclaveCore behind an EnclaveServer on a Unix socket), the HTTP server on
// loopback, a SQLite store with tenant records, and the blocking HttpClient as the client.
// The sealed round trip must open to what the plaintext API answers for the same greedy
// request; every refusal of the contract (docs/data-plane.md) gets its status; a client
// that leaves mid-stream cancels the engine request and closes the enclave context; the
// registration appears in the store with the attestation and vanishes after draining.
#include "worker/worker_service.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <future>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "attest/dev_attestor.h"
#include "client/sealed_client.h"
#include "client/test_enclave.h"
#include "enclave/enclave_core.h"
#include "enclave/enclave_server.h"
#include "engine/load_engine.h"
#include "engine/model_synth.h"
#include "net/http_client.h"
#include "net/sse.h"
#include "base/base64.h"
#include "store/open_store.h"
#include "worker/enclave_link.h"
#include "worker/registration.h"

namespace supercluster::worker {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

constexpr char kPrompt[] = "In the beginning God created";

struct StreamedAnswer {
  int status = 0;
  net::Headers headers;
  std::vector<net::SseEvent> events;
  std::string body;
};

class WorkerServiceTest : public ::testing::Test {
 protected:
  void SetUp() override { Start(/*max_running=*/4, /*max_queued=*/8, /*max_pending=*/16); }

  // The model the engine loads: the bundled KJV model (context 256, fast).
  virtual std::string ModelPath() {
    return std::string(SUPERCLUSTER_SOURCE_DIR) + "/models/kjv/kjv.gguf";
  }

  void Start(int max_running, int max_queued, int64_t max_pending) {
    char pattern[] = "/tmp/sc-worker-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    dir_ = pattern;
    std::string model_path = ModelPath();
    ASSERT_FALSE(model_path.empty());

    auto ca = attest::DevCa::Generate();
    ASSERT_TRUE(ca.ok());
    ca_.emplace(std::move(*ca));
    auto core = enclave::EnclaveCore::Create({}, enclave::testing::MakeDevAttestor(*ca_));
    ASSERT_TRUE(core.ok());
    core_ = std::move(*core);
    enclave::EnclaveServerOptions server_options;
    server_options.listen.path = (dir_ / "enclave.sock").string();
    auto enclave_server = enclave::EnclaveServer::Start(server_options, core_.get());
    ASSERT_TRUE(enclave_server.ok()) << enclave_server.status().ToString();
    enclave_server_ = std::move(*enclave_server);
    auto link = EnclaveLink::Connect(server_options.listen, 2, 10s);
    ASSERT_TRUE(link.ok()) << link.status().ToString();
    link_ = std::move(*link);

    auto store =
        store::OpenStore("sqlite://" + (dir_ / "state.db").string(), base::Config::Defaults());
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(*store);
    PutTenant("open", true);
    PutTenant("closed", false);
    auto tenants = store::PrefixCache::Start(*store_, store::keys::Tenant(""));
    ASSERT_TRUE(tenants.ok());
    tenants_ = std::move(*tenants);

    engine::EngineLoadOptions load;
    load.model_path = model_path;
    load.backend.threads = 2;
    load.backend.kv_cache_bytes = 64 << 20;
    load.engine.max_running = max_running;
    load.engine.max_queued = max_queued;
    auto engine = engine::LoadEngine(load);
    ASSERT_TRUE(engine.ok()) << engine.status().ToString();

    WorkerServiceOptions options;
    options.instance_id = "w1";
    options.region = "test-1";
    options.model_name = "kjv";
    options.task_threads = 2;
    options.max_pending = max_pending;
    options.capacity = max_running;
    service_ = std::make_unique<WorkerService>(options, link_.get(), tenants_.get(),
                                               std::make_shared<metrics::Registry>());
    auto router = std::make_shared<net::HttpRouter>();
    service_->AddRoutes(*router);
    server_ = std::make_unique<net::HttpServer>(
        net::ServerOptions::FromConfig(base::Config::Defaults()), router);
    ASSERT_TRUE(server_->Listen(*net::ParseEndpoint("127.0.0.1:0")).ok());
    ASSERT_TRUE(server_->Start().ok());
    endpoint_ = server_->BoundEndpoints().front();

    service_->SetEngine(std::move(*engine), 10ms);
    auto document = core_->Attest({}, {});
    ASSERT_TRUE(document.ok());
    document_ = *document;
    service_->SetAttestation(document_);
  }

  void TearDown() override {
    if (server_) server_->Stop();
    service_.reset();
    server_.reset();
    tenants_.reset();
    store_.reset();
    link_.reset();
    enclave_server_.reset();
    core_.reset();
    std::filesystem::remove_all(dir_);
  }

  void PutTenant(const std::string& id, bool allow_plaintext) {
    store::Tenant tenant;
    tenant.id = id;
    tenant.allow_plaintext = allow_plaintext;
    ASSERT_TRUE(store_->Put(store::keys::Tenant(id), store::Encode(tenant)).ok());
  }

  net::HttpClient Client() {
    return net::HttpClient(endpoint_, net::ClientOptions::FromConfig(base::Config::Defaults()));
  }

  net::HttpResponse Post(const std::string& path, const std::string& body,
                         const std::string& tenant = "open", const std::string& model_header = "") {
    net::HttpRequest request;
    request.method = "POST";
    request.target = path;
    request.body = body;
    request.headers.Set("Content-Type", "application/json");
    if (!tenant.empty()) request.headers.Set("X-Supercluster-Tenant", tenant);
    if (!model_header.empty()) request.headers.Set("X-Supercluster-Model", model_header);
    auto response = Client().Request(request);
    EXPECT_TRUE(response.ok()) << response.status().ToString();
    return response.ok() ? *response : net::HttpResponse{};
  }

  net::HttpResponse Get(const std::string& path, const std::string& tenant = "open") {
    net::HttpRequest request;
    request.target = path;
    if (!tenant.empty()) request.headers.Set("X-Supercluster-Tenant", tenant);
    auto response = Client().Request(request);
    EXPECT_TRUE(response.ok()) << response.status().ToString();
    return response.ok() ? *response : net::HttpResponse{};
  }

  // POSTs and collects the SSE events; `keep_reading` may stop early (the client leaves).
  StreamedAnswer PostStream(const std::string& path, const std::string& body,
                            const std::function<bool(const StreamedAnswer&)>& keep_reading = {},
                            const std::string& tenant = "open") {
    net::HttpRequest request;
    request.method = "POST";
    request.target = path;
    request.body = body;
    request.headers.Set("X-Supercluster-Tenant", tenant);
    StreamedAnswer answer;
    net::SseParser parser([&](const net::SseEvent& event) { answer.events.push_back(event); });
    net::HttpClient client = Client();
    auto head = client.Stream(
        request,
        [&](const net::ResponseHead& head) {
          answer.status = head.status;
          answer.headers = head.headers;
        },
        [&](std::string_view data) {
          answer.body += data;
          parser.Feed(data);
          return !keep_reading || keep_reading(answer);
        });
    if (head.ok()) answer.status = head->status;
    return answer;
  }

  std::string SealedBody(int max_tokens) {
    return json{
        {"model", "kjv"}, {"prompt", kPrompt}, {"temperature", 0}, {"max_tokens", max_tokens}}
        .dump();
  }

  client::SealedRequest Seal(const std::string& body, const crypto::Bytes& document) {
    client::CandidateVerdicts verdicts =
        client::VerifyCandidates({document}, enclave::testing::PolicyFor(*ca_));
    EXPECT_EQ(verdicts.accepted.size(), 1u);
    auto sealed = client::SealRequest(verdicts.accepted, crypto::AsBytes(body), client::NowMs());
    EXPECT_TRUE(sealed.ok());
    return std::move(*sealed);
  }

  // Opens the sealed events of an answer into its JSON chunks.
  std::vector<json> OpenAnswer(client::SealedRequest sealed, const StreamedAnswer& answer) {
    crypto::ChunkedResponseOpener opener = client::OpenResponse(std::move(sealed));
    std::vector<crypto::Bytes> plaintext;
    for (const net::SseEvent& event : answer.events) {
      EXPECT_EQ(event.event, "sealed") << event.data;
      auto bytes = base::Base64Decode(event.data);
      EXPECT_TRUE(bytes.ok());
      if (!bytes.ok()) return {};
      EXPECT_TRUE(opener.Feed(crypto::AsBytes(*bytes), &plaintext).ok());
    }
    EXPECT_TRUE(opener.Finish(&plaintext).ok()) << "the sealed stream is truncated";
    std::vector<json> chunks;
    for (const crypto::Bytes& chunk : plaintext)
      chunks.push_back(json::parse(crypto::AsText(chunk)));
    return chunks;
  }

  // Waits until the engine runs nothing (or fails after 10 s).
  void WaitEngineIdle() {
    for (int i = 0; i < 1000; ++i) {
      engine::EngineStats stats = service_->EngineStats();
      if (stats.running == 0 && stats.queued == 0) return;
      std::this_thread::sleep_for(10ms);
    }
    FAIL() << "the engine still runs requests";
  }

  std::filesystem::path dir_;
  std::optional<attest::DevCa> ca_;
  std::unique_ptr<enclave::EnclaveCore> core_;
  std::unique_ptr<enclave::EnclaveServer> enclave_server_;
  std::unique_ptr<EnclaveLink> link_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<store::PrefixCache> tenants_;
  std::unique_ptr<WorkerService> service_;
  std::unique_ptr<net::HttpServer> server_;
  net::Endpoint endpoint_;
  crypto::Bytes document_;
};

TEST_F(WorkerServiceTest, SealedAnswerOpensToThePlaintextGreedyAnswer) {
  net::HttpResponse plain = Post("/v1/completions", SealedBody(12));
  ASSERT_EQ(plain.status, 200) << plain.body;
  json completion = json::parse(plain.body);
  std::string expected = completion["choices"][0]["text"];
  EXPECT_FALSE(expected.empty());
  EXPECT_EQ(completion["usage"]["completion_tokens"], 12);
  EXPECT_EQ(plain.headers.Get("X-Supercluster-Served-By"), "test-1/w1");

  client::SealedRequest sealed = Seal(SealedBody(12), document_);
  crypto::Bytes envelope = sealed.envelope;
  StreamedAnswer answer = PostStream("/v1/sealed", crypto::ToString(envelope));
  ASSERT_EQ(answer.status, 200) << answer.body;
  EXPECT_EQ(answer.headers.Get("Content-Type"), "text/event-stream");
  EXPECT_EQ(answer.body.find(kPrompt), std::string::npos);
  std::vector<json> chunks = OpenAnswer(std::move(sealed), answer);
  ASSERT_FALSE(chunks.empty());
  std::string text;
  for (const json& chunk : chunks) text += chunk["text"].get<std::string>();
  EXPECT_EQ(text, expected);
  const json& last = chunks.back();
  EXPECT_EQ(last["finish_reason"], completion["choices"][0]["finish_reason"]);
  EXPECT_EQ(last["usage"]["prompt_tokens"], completion["usage"]["prompt_tokens"]);
  EXPECT_EQ(last["usage"]["completion_tokens"], 12);
  for (size_t i = 0; i + 1 < chunks.size(); ++i) EXPECT_FALSE(chunks[i].contains("finish_reason"));
  EXPECT_EQ(core_->Stats().contexts_open, 0u);

  // The same envelope again: the enclave refuses the replay.
  net::HttpResponse replayed = Post("/v1/sealed", crypto::ToString(envelope));
  EXPECT_EQ(replayed.status, 400) << replayed.body;
  EXPECT_NE(replayed.body.find("replayed"), std::string::npos) << replayed.body;
}

TEST_F(WorkerServiceTest, SealedRefusals) {
  net::HttpResponse garbage = Post("/v1/sealed", "this is not an envelope");
  EXPECT_EQ(garbage.status, 400);
  EXPECT_EQ(json::parse(garbage.body)["error"]["type"], "sealed_request_refused");
  EXPECT_EQ(Post("/v1/sealed", "").status, 400);

  // Sealed to another enclave.
  auto other = enclave::EnclaveCore::Create({}, enclave::testing::MakeDevAttestor(*ca_));
  ASSERT_TRUE(other.ok());
  auto other_document = (*other)->Attest({}, {});
  ASSERT_TRUE(other_document.ok());
  client::SealedRequest elsewhere = Seal(SealedBody(4), *other_document);
  EXPECT_EQ(Post("/v1/sealed", crypto::ToString(elsewhere.envelope)).status, 400);

  // Opened fine, but not a completion request; and a model this worker does not serve.
  client::SealedRequest not_json = Seal("hello", document_);
  net::HttpResponse bad_body = Post("/v1/sealed", crypto::ToString(not_json.envelope));
  EXPECT_EQ(bad_body.status, 400);
  EXPECT_NE(bad_body.body.find("not valid JSON"), std::string::npos) << bad_body.body;
  client::SealedRequest wrong_model =
      Seal(json{{"model", "gpt-9"}, {"prompt", "x"}}.dump(), document_);
  EXPECT_EQ(Post("/v1/sealed", crypto::ToString(wrong_model.envelope)).status, 404);
  EXPECT_EQ(Post("/v1/sealed", "x", "", "gpt-9").status, 404);  // by header, before opening
  EXPECT_EQ(core_->Stats().contexts_open, 0u) << "a refused request left its context open";
}

TEST_F(WorkerServiceTest, EnclaveRestartCostsAtMostOneRequestPerConnection) {
  enclave::EnclaveServerOptions server_options;
  server_options.listen.path = (dir_ / "enclave.sock").string();
  enclave_server_.reset();  // drops the worker's connections
  auto restarted = enclave::EnclaveServer::Start(server_options, core_.get());
  ASSERT_TRUE(restarted.ok()) << restarted.status().ToString();
  enclave_server_ = std::move(*restarted);
  int unavailable = 0;
  bool served = false;
  for (int attempt = 0; attempt < 4 && !served; ++attempt) {
    client::SealedRequest sealed = Seal(SealedBody(3), document_);
    StreamedAnswer answer = PostStream("/v1/sealed", crypto::ToString(sealed.envelope));
    if (answer.status == 503) {
      ++unavailable;
      EXPECT_NE(answer.body.find("enclave_unavailable"), std::string::npos) << answer.body;
      continue;
    }
    ASSERT_EQ(answer.status, 200) << answer.body;
    EXPECT_EQ(OpenAnswer(std::move(sealed), answer).back()["usage"]["completion_tokens"], 3);
    served = true;
  }
  EXPECT_TRUE(served);
  EXPECT_LE(unavailable, 2) << "each of the 2 connections should fail at most once";
}

// The default max_tokens (256 here, the model's whole context) is a ceiling: a request that
// sets none generates at most what its prompt leaves of the context, where asking for 256
// outright is refused. (OpenAI's clients leave max_tokens out by default.)
TEST_F(WorkerServiceTest, AnUnsetMaxTokensFitsWhatTheContextLeaves) {
  ASSERT_EQ(WorkerServiceOptions().limits.default_max_tokens, 256);
  for (const char* field : {"", "max_tokens", "max_completion_tokens"}) {
    SCOPED_TRACE(field);
    json request = {{"model", "kjv"}, {"prompt", kPrompt}, {"temperature", 0}};
    if (*field != '\0') request[field] = nullptr;  // null: the default, as OpenAI takes it
    net::HttpResponse answer = Post("/v1/completions", request.dump(), "open");
    ASSERT_EQ(answer.status, 200) << answer.body;
    json usage = json::parse(answer.body)["usage"];
    EXPECT_GT(usage["completion_tokens"], 0);
    EXPECT_LE(usage["prompt_tokens"].get<int>() + usage["completion_tokens"].get<int>(), 256);
  }
  json explicit_request = {{"model", "kjv"}, {"prompt", kPrompt}, {"max_tokens", 256}};
  net::HttpResponse refused = Post("/v1/completions", explicit_request.dump(), "open");
  EXPECT_EQ(refused.status, 400) << refused.body;
  EXPECT_NE(refused.body.find("256-token context"), std::string::npos) << refused.body;

  // A prompt longer than the context, without max_tokens: the refusal is about the prompt
  // alone, not about a max_tokens the client never sent.
  std::string long_prompt;
  for (int i = 0; i < 60; ++i) long_prompt += "In the beginning God created the heaven. ";
  net::HttpResponse too_long = Post(
      "/v1/completions", json{{"model", "kjv"}, {"prompt", long_prompt}}.dump(), "open");
  EXPECT_EQ(too_long.status, 400) << too_long.body;
  std::string message = json::parse(too_long.body)["error"]["message"];
  EXPECT_NE(message.find("alone exceeds the model's 256-token context"), std::string::npos)
      << message;
  EXPECT_EQ(message.find("max_tokens"), std::string::npos) << message;
}

TEST_F(WorkerServiceTest, PlaintextOnlyForTenantsThatAllowIt) {
  std::string body = json{{"model", "kjv"}, {"prompt", kPrompt}, {"max_tokens", 3}}.dump();
  for (const std::string& tenant :
       {std::string("closed"), std::string(""), std::string("nobody")}) {
    net::HttpResponse refused = Post("/v1/completions", body, tenant);
    EXPECT_EQ(refused.status, 403) << tenant;
    EXPECT_EQ(json::parse(refused.body)["error"]["type"], "plaintext_forbidden") << tenant;
    EXPECT_EQ(Get("/v1/models", tenant).status, 403);
  }
  net::HttpResponse allowed = Post("/v1/completions", body, "open");
  ASSERT_EQ(allowed.status, 200) << allowed.body;
  json answer = json::parse(allowed.body);
  EXPECT_EQ(answer["object"], "text_completion");
  EXPECT_GT(answer["usage"]["prompt_tokens"], 0);
  EXPECT_GT(answer["usage"]["completion_tokens"], 0);

  net::HttpResponse chat =
      Post("/v1/chat/completions",
           json{{"model", "kjv"},
                {"messages", {{{"role", "user"}, {"content", "Who begat Enos?"}}}},
                {"max_tokens", 4},
                {"seed", 3}}
               .dump());
  ASSERT_EQ(chat.status, 200) << chat.body;
  EXPECT_EQ(json::parse(chat.body)["choices"][0]["message"]["role"], "assistant");

  net::HttpResponse models = Get("/v1/models");
  ASSERT_EQ(models.status, 200);
  EXPECT_EQ(json::parse(models.body)["data"][0]["id"], "kjv");

  EXPECT_EQ(Post("/v1/completions", json{{"model", "llama"}, {"prompt", "x"}}.dump()).status, 404);
  net::HttpResponse bad = Post("/v1/completions", R"({"model":"kjv","prompt":"x","top_p":7})");
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.body.find("top_p"), std::string::npos);
  EXPECT_EQ(Post("/v1/completions", "{\"model\":\"kjv\",\"prompt\":").status, 400);
}

TEST_F(WorkerServiceTest, StreamingCompletionsEndWithDone) {
  StreamedAnswer answer = PostStream("/v1/completions", json{{"model", "kjv"},
                                                             {"prompt", kPrompt},
                                                             {"max_tokens", 8},
                                                             {"stream", true},
                                                             {"temperature", 0}}
                                                            .dump());
  ASSERT_EQ(answer.status, 200) << answer.body;
  ASSERT_GE(answer.events.size(), 2u);
  EXPECT_EQ(answer.events.back().data, "[DONE]");
  std::string text;
  json last;
  for (size_t i = 0; i + 1 < answer.events.size(); ++i) {
    json chunk = json::parse(answer.events[i].data);
    EXPECT_EQ(chunk["object"], "text_completion");
    EXPECT_FALSE(chunk.contains("usage")) << "usage only when asked for";
    text += chunk["choices"][0]["text"].get<std::string>();
    last = chunk;
  }
  EXPECT_EQ(last["choices"][0]["finish_reason"], "length");

  // Asked for, usage comes after the finish in a chunk of its own (OpenAI's
  // stream_options.include_usage), and every other chunk says "usage": null.
  StreamedAnswer with_usage =
      PostStream("/v1/completions", json{{"model", "kjv"},
                                         {"prompt", kPrompt},
                                         {"max_tokens", 8},
                                         {"stream", true},
                                         {"stream_options", {{"include_usage", true}}},
                                         {"temperature", 0}}
                                        .dump());
  ASSERT_EQ(with_usage.status, 200) << with_usage.body;
  ASSERT_GE(with_usage.events.size(), 3u);
  EXPECT_EQ(with_usage.events.back().data, "[DONE]");
  json usage_chunk = json::parse(with_usage.events[with_usage.events.size() - 2].data);
  EXPECT_EQ(usage_chunk["choices"], json::array());
  EXPECT_EQ(usage_chunk["usage"]["completion_tokens"], 8);
  std::string text_with_usage;
  for (size_t i = 0; i + 2 < with_usage.events.size(); ++i) {
    json chunk = json::parse(with_usage.events[i].data);
    EXPECT_TRUE(chunk.contains("usage") && chunk["usage"].is_null()) << chunk.dump();
    text_with_usage += chunk["choices"][0]["text"].get<std::string>();
  }
  EXPECT_EQ(text_with_usage, text);

  net::HttpResponse whole = Post(
      "/v1/completions",
      json{{"model", "kjv"}, {"prompt", kPrompt}, {"max_tokens", 8}, {"temperature", 0}}.dump());
  EXPECT_EQ(json::parse(whole.body)["choices"][0]["text"], text);

  StreamedAnswer chat =
      PostStream("/v1/chat/completions", json{{"model", "kjv"},
                                              {"messages", {{{"role", "user"}, {"content", "Hi"}}}},
                                              {"max_tokens", 4},
                                              {"stream", true}}
                                             .dump());
  ASSERT_EQ(chat.status, 200);
  ASSERT_GE(chat.events.size(), 2u);
  json first = json::parse(chat.events.front().data);
  EXPECT_EQ(first["object"], "chat.completion.chunk");
  EXPECT_EQ(first["choices"][0]["delta"]["role"], "assistant");
  EXPECT_EQ(chat.events.back().data, "[DONE]");
}

TEST_F(WorkerServiceTest, StatusAttestationMetricsAndDrain) {
  net::HttpResponse attestation = Get("/v1/attestation", "");
  ASSERT_EQ(attestation.status, 200);
  json document = json::parse(attestation.body);
  EXPECT_EQ(document["instance"], "w1");
  EXPECT_EQ(document["region"], "test-1");
  EXPECT_EQ(document["model"], "kjv");
  EXPECT_EQ(*base::Base64Decode(document["document"].get<std::string>()),
            crypto::ToString(document_));

  ASSERT_EQ(Post("/v1/completions", SealedBody(2)).status, 200);
  json status = json::parse(Get("/v1/status").body);
  EXPECT_EQ(status["state"], "serving");
  EXPECT_EQ(status["capacity"], 4);
  EXPECT_EQ(status["model"], "kjv");
  // A request's metrics are recorded just after its last bytes are handed to the server,
  // so a client can ask for /metrics a moment before they are: it asks again for a while.
  const std::vector<std::string> expected = {
      "gpu_cluster_inference_latency_seconds_count 1",
      "gpu_cluster_model_load_time_seconds_count 1",
      "supercluster_worker_time_to_first_token_seconds_count 1", "gpu_cluster_queue_depth 0",
      "supercluster_worker_running_sequences 0",
      "gpu_cluster_rps 0.1"};  // one request in the 10 s window: set at the scrape
  auto all_present = [&expected](const std::string& text) {
    return std::all_of(expected.begin(), expected.end(), [&text](const std::string& name) {
      return text.find(name) != std::string::npos;
    });
  };
  std::string metrics = Get("/metrics").body;
  for (int i = 0; i < 200 && !all_present(metrics); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    metrics = Get("/metrics").body;
  }
  for (const std::string& name : expected) {
    EXPECT_NE(metrics.find(name), std::string::npos) << name << "\n" << metrics;
  }
  EXPECT_EQ(Get("/readyz").status, 200);

  service_->BeginDrain();
  EXPECT_EQ(Get("/readyz").status, 503);
  EXPECT_EQ(Get("/healthz").status, 200);
  net::HttpResponse refused = Post("/v1/completions", SealedBody(2));
  EXPECT_EQ(refused.status, 503);
  EXPECT_EQ(refused.headers.Get("Retry-After"), "1");
  EXPECT_EQ(json::parse(Get("/v1/status").body)["state"], "draining");
  EXPECT_TRUE(service_->WaitIdle(1s));
}

TEST_F(WorkerServiceTest, LoadingWorkerIsAliveButNotReady) {
  WorkerServiceOptions options;
  options.instance_id = "w2";
  options.region = "test-1";
  options.model_name = "kjv";
  WorkerService loading(options, link_.get(), tenants_.get(),
                        std::make_shared<metrics::Registry>());
  auto router = std::make_shared<net::HttpRouter>();
  loading.AddRoutes(*router);
  net::HttpServer server(net::ServerOptions::FromConfig(base::Config::Defaults()), router);
  ASSERT_TRUE(server.Listen(*net::ParseEndpoint("127.0.0.1:0")).ok());
  ASSERT_TRUE(server.Start().ok());
  net::HttpClient client(server.BoundEndpoints().front(),
                         net::ClientOptions::FromConfig(base::Config::Defaults()));
  auto send = [&](const std::string& method, const std::string& path) {
    net::HttpRequest request;
    request.method = method;
    request.target = path;
    request.headers.Set("X-Supercluster-Tenant", "open");
    if (method == "POST") request.body = SealedBody(2);
    auto response = client.Request(request);
    EXPECT_TRUE(response.ok());
    return response.ok() ? *response : net::HttpResponse{};
  };
  EXPECT_EQ(send("GET", "/healthz").status, 200);
  net::HttpResponse ready = send("GET", "/readyz");
  EXPECT_EQ(ready.status, 503);
  EXPECT_NE(ready.body.find("loading"), std::string::npos);
  net::HttpResponse refused = send("POST", "/v1/completions");
  EXPECT_EQ(refused.status, 503);
  EXPECT_EQ(refused.headers.Get("Retry-After"), "1");
  EXPECT_EQ(send("GET", "/v1/attestation").status, 503);  // no document yet
  EXPECT_EQ(json::parse(send("GET", "/v1/status").body)["state"], "loading");
  // Counted as refused while loading, not as draining (a worker that never served).
  std::string metrics = send("GET", "/metrics").body;
  EXPECT_NE(metrics.find("supercluster_worker_rejected_total{outcome=\"loading\"} 1"),
            std::string::npos)
      << metrics;
  EXPECT_EQ(metrics.find("outcome=\"draining\""), std::string::npos) << metrics;
  server.Stop();
}

TEST_F(WorkerServiceTest, RegistrationLivesUnderALeaseAndVanishesAfterDrain) {
  store::Instance record;
  record.id = "w1";
  record.region = "test-1";
  record.address = "http://" + endpoint_.host + ":" + std::to_string(endpoint_.port);
  record.model = "kjv";
  record.capacity = 4;
  record.capacity_type = "on-demand";
  int attested = 0;
  std::mutex mutex;
  auto registration = Registration::Start(
      *store_, record,
      [&]() -> base::Result<crypto::Bytes> {
        std::lock_guard lock(mutex);
        ++attested;
        return core_->Attest({}, crypto::AsBytes("test-1/w1"));
      },
      [&](const crypto::Bytes& document) { service_->SetAttestation(document); },
      {.lease_ttl = 2s, .attestation_refresh = 300ms});
  ASSERT_TRUE(registration.ok()) << registration.status().ToString();
  std::string key = store::keys::Instance("test-1", "w1");
  auto read = [&]() -> std::optional<store::Instance> {
    auto value = store_->Get(key);
    EXPECT_TRUE(value.ok());
    if (!value.ok() || !value->has_value()) return std::nullopt;
    auto decoded = store::DecodeInstance((*value)->value, key);
    EXPECT_TRUE(decoded.ok());
    return decoded.ok() ? std::optional(*decoded) : std::nullopt;
  };
  std::optional<store::Instance> written = read();
  ASSERT_TRUE(written.has_value());
  EXPECT_EQ(written->state, store::InstanceState::kServing);
  EXPECT_EQ(written->address, record.address);
  EXPECT_EQ(written->capacity, 4);
  auto document = base::Base64Decode(written->attestation_b64);
  ASSERT_TRUE(document.ok());
  client::CandidateVerdicts verdicts = client::VerifyCandidates(
      {crypto::Bytes(document->begin(), document->end())}, enclave::testing::PolicyFor(*ca_));
  EXPECT_EQ(verdicts.accepted.size(), 1u);

  // Outlives its TTL (kept alive) and gets fresh documents.
  std::this_thread::sleep_for(2500ms);
  std::optional<store::Instance> later = read();
  ASSERT_TRUE(later.has_value()) << "the lease was not kept alive";
  EXPECT_NE(later->attestation_b64, written->attestation_b64);
  {
    std::lock_guard lock(mutex);
    EXPECT_GE(attested, 3);
  }

  ASSERT_TRUE((*registration)->MarkDraining().ok());
  EXPECT_EQ(read()->state, store::InstanceState::kDraining);
  (*registration)->Stop();
  EXPECT_FALSE(read().has_value()) << "the record outlived the drain";
}

// A random-weight model with a long context and enough work per token (about 30M
// multiply-adds) that a long request runs for seconds: long enough to leave mid-stream or
// fill the queue behind it without racing its end.
class SlowModelTest : public WorkerServiceTest {
 protected:
  static constexpr int kLongGeneration = 2000;

  void SetUp() override { Start(/*max_running=*/1, /*max_queued=*/1, /*max_pending=*/16); }

  // Streams a long completion from another thread until `leave` is set (and some text
  // arrives after that).
  std::thread HoldSlot(std::atomic<bool>& leave) {
    return std::thread([this, &leave] {
      PostStream("/v1/completions",
                 json{{"model", "kjv"},
                      {"prompt", kPrompt},
                      {"max_tokens", kLongGeneration},
                      {"temperature", 0},
                      {"stream", true}}
                     .dump(),
                 [&](const StreamedAnswer&) { return !leave.load(); });
    });
  }

  // Waits until the engine's stats satisfy `condition` (at most 10 s).
  bool WaitForEngine(const std::function<bool(const engine::EngineStats&)>& condition) {
    for (int i = 0; i < 2000; ++i) {
      if (condition(service_->EngineStats())) return true;
      std::this_thread::sleep_for(5ms);
    }
    return false;
  }

  std::string ModelPath() override {
    engine::SynthOptions synth;
    synth.shape = {"slow",
                   /*embedding_length=*/512,
                   /*block_count=*/8,
                   /*head_count=*/8,
                   /*head_count_kv=*/2,
                   /*feed_forward_length=*/2048,
                   /*vocab_size=*/1000,
                   /*context_length=*/2048};
    synth.type = engine::TensorType::kQ8_0;
    std::string path = (dir_ / "slow.gguf").string();
    base::Status written = engine::WriteSynthModel(synth, path);
    EXPECT_TRUE(written.ok()) << written.ToString();
    return written.ok() ? path : "";
  }
};

TEST_F(SlowModelTest, ClientLeavingMidStreamCancelsAndClosesTheContext) {
  client::SealedRequest sealed = Seal(SealedBody(kLongGeneration), document_);
  uint64_t generated_before = service_->EngineStats().generated_tokens;
  StreamedAnswer answer =
      PostStream("/v1/sealed", crypto::ToString(sealed.envelope),
                 [](const StreamedAnswer& so_far) { return so_far.events.empty(); });
  EXPECT_EQ(answer.status, 200);
  WaitEngineIdle();
  EXPECT_LT(service_->EngineStats().generated_tokens - generated_before,
            static_cast<uint64_t>(kLongGeneration))
      << "the request ran to its end instead of being cancelled";
  for (int i = 0; i < 500 && core_->Stats().contexts_open != 0; ++i)
    std::this_thread::sleep_for(10ms);
  EXPECT_EQ(core_->Stats().contexts_open, 0u);
  ASSERT_TRUE(service_->WaitIdle(5s));
}

// What a drain that runs out of time (CancelAll) answers: a request with nothing of its
// answer sent gets 503 unavailable with Retry-After (a router retries it elsewhere), a
// stream under way ends with an error; no answer is a 200 with finish_reason "cancelled".
class DrainCancelTest : public SlowModelTest {
 protected:
  // Runs `running` until it has sent something (or, for whole answers, generated some
  // tokens), then `queued` behind it in the only queue place, then cancels both.
  template <typename Running, typename Queued>
  void CancelBoth(Running running, Queued queued, bool running_streams) {
    std::atomic<bool> started{false};
    auto first = std::async(std::launch::async, [&] { return running(started); });
    uint64_t before = service_->EngineStats().generated_tokens;
    bool under_way = WaitForEngine([&](const engine::EngineStats& stats) {
      return running_streams ? started.load() : stats.generated_tokens > before + 3;
    });
    auto second = std::async(std::launch::async, queued);
    bool waiting = WaitForEngine([](const engine::EngineStats& stats) { return stats.queued == 1; });
    EXPECT_TRUE(under_way && waiting) << "the requests did not fill the engine";
    // Until both are over: a request is known to CancelAll a moment after the engine has it.
    for (int i = 0; i < 1000 && (first.wait_for(0s) != std::future_status::ready ||
                                 second.wait_for(0s) != std::future_status::ready);
         ++i) {
      service_->CancelAll();
      std::this_thread::sleep_for(10ms);
    }
    first_answer_ = first.get();
    second_answer_ = second.get();
    WaitEngineIdle();
  }

  StreamedAnswer LongStream(const std::string& path, const std::string& body,
                            std::atomic<bool>& started) {
    return PostStream(path, body, [&](const StreamedAnswer& so_far) {
      if (!so_far.events.empty()) started = true;
      return true;
    });
  }

  static std::string LongBody(bool stream) {
    return json{{"model", "kjv"},
                {"prompt", kPrompt},
                {"max_tokens", kLongGeneration},
                {"temperature", 0},
                {"stream", stream}}
        .dump();
  }

  // A 503 a router retries: type unavailable, Retry-After, nothing else.
  static void ExpectRetryable(const StreamedAnswer& answer) {
    EXPECT_EQ(answer.status, 503) << answer.body;
    EXPECT_EQ(answer.headers.Get("Retry-After"), "1");
    json body = json::parse(answer.body, nullptr, /*allow_exceptions=*/false);
    EXPECT_TRUE(body.is_object() && body["error"]["type"] == "unavailable") << answer.body;
  }

  StreamedAnswer first_answer_, second_answer_;
};

TEST_F(DrainCancelTest, OpenAiStreams) {
  CancelBoth(
      [&](std::atomic<bool>& started) {
        return LongStream("/v1/completions", LongBody(true), started);
      },
      [&] { return PostStream("/v1/chat/completions", json{{"model", "kjv"},
                                                            {"messages", {{{"role", "user"},
                                                                           {"content", "Hi"}}}},
                                                            {"max_tokens", kLongGeneration},
                                                            {"stream", true}}
                                                           .dump()); },
      /*running_streams=*/true);
  // Cut off mid-stream: the text so far, then an error event, no [DONE].
  const StreamedAnswer& cut = first_answer_;
  EXPECT_EQ(cut.status, 200);
  ASSERT_GE(cut.events.size(), 2u) << cut.body;
  EXPECT_EQ(cut.events.back().event, "error") << cut.body;
  json error = json::parse(cut.events.back().data)["error"];
  EXPECT_EQ(error["type"], "unavailable");
  EXPECT_NE(error["message"].get<std::string>().find("cut off"), std::string::npos);
  EXPECT_EQ(cut.body.find("[DONE]"), std::string::npos) << cut.body;
  EXPECT_EQ(cut.body.find("cancelled"), std::string::npos) << cut.body;
  // Never started: the stream's head had not gone out, so it is a plain 503.
  ExpectRetryable(second_answer_);
}

TEST_F(DrainCancelTest, WholeAnswers) {
  CancelBoth([&](std::atomic<bool>&) { return PostStream("/v1/completions", LongBody(false)); },
             [&] { return PostStream("/v1/completions", LongBody(false)); },
             /*running_streams=*/false);
  // Whether it had generated tokens or not, nothing of either answer was sent.
  ExpectRetryable(first_answer_);
  ExpectRetryable(second_answer_);
}

TEST_F(DrainCancelTest, SealedStreams) {
  client::SealedRequest running = Seal(SealedBody(kLongGeneration), document_);
  client::SealedRequest queued = Seal(SealedBody(kLongGeneration), document_);
  CancelBoth(
      [&](std::atomic<bool>& started) {
        return LongStream("/v1/sealed", crypto::ToString(running.envelope), started);
      },
      [&] { return PostStream("/v1/sealed", crypto::ToString(queued.envelope)); },
      /*running_streams=*/true);
  // Cut off: a sealed final chunk with finish_reason "error", as on an engine failure.
  ASSERT_EQ(first_answer_.status, 200) << first_answer_.body;
  std::vector<json> chunks = OpenAnswer(std::move(running), first_answer_);
  ASSERT_GE(chunks.size(), 2u);
  EXPECT_EQ(chunks.back()["finish_reason"], "error");
  EXPECT_NE(chunks.back()["error"].get<std::string>().find("cut off"), std::string::npos);
  ExpectRetryable(second_answer_);
  for (int i = 0; i < 500 && core_->Stats().contexts_open != 0; ++i)
    std::this_thread::sleep_for(10ms);
  EXPECT_EQ(core_->Stats().contexts_open, 0u);
}

TEST_F(SlowModelTest, FullQueueIsRefusedWithRetryAfter) {
  // One long request holds the only slot and another the only queue place (their clients
  // end them by leaving), so the next request is refused at once.
  std::atomic<bool> leave{false};
  std::thread running = HoldSlot(leave);
  bool one_running =
      WaitForEngine([](const engine::EngineStats& stats) { return stats.running == 1; });
  std::thread queued = HoldSlot(leave);
  bool one_queued =
      WaitForEngine([](const engine::EngineStats& stats) { return stats.queued == 1; });
  if (one_running && one_queued) {
    net::HttpResponse refused = Post("/v1/completions", SealedBody(2));
    EXPECT_EQ(refused.status, 503) << refused.body;
    EXPECT_EQ(refused.headers.Get("Retry-After"), "1");
    EXPECT_EQ(json::parse(refused.body)["error"]["type"], "overloaded");
  }
  leave = true;
  running.join();
  queued.join();
  EXPECT_TRUE(one_running && one_queued) << "the long requests did not fill the engine";
  WaitEngineIdle();
}

}  // namespace
}  // namespace supercluster::worker
