// End to end on one machine: a whole local cluster (3 regions, each a regional router and
// workers with their enclaves, a global endpoint, the inter-region relay) as real processes,
// and a client going through the global endpoint. One cluster serves every test here; the
// tests that kill parts of it are in cluster_failover_test.cc.
#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "base/config.h"
#include "cluster_fixture.h"
#include "engine/load_engine.h"
#include "engine/model_tokenizer.h"

namespace supercluster::testing {
namespace {

using Json = nlohmann::json;

TestCluster* cluster = nullptr;

const ::testing::Environment* const environment = ::testing::AddGlobalTestEnvironment(
    new SharedClusterEnvironment("e2e", /*settings=*/{}, &cluster));

class ClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (cluster == nullptr) GTEST_FAIL() << "the cluster did not start";
  }
  const std::string& global() const { return cluster->info.global_endpoint; }

  net::HttpRequest Post(const std::string& path, const std::string& body,
                        const std::string& api_key) const {
    net::HttpRequest request;
    request.method = "POST";
    request.target = path;
    request.body = body;
    request.headers.Set("Content-Type", "application/json");
    if (!api_key.empty()) request.headers.Set("Authorization", "Bearer " + api_key);
    return request;
  }
};

std::string CompletionRequest(const std::string& prompt, int max_tokens) {
  return Json{{"model", "kjv"}, {"prompt", prompt}, {"max_tokens", max_tokens},
              {"temperature", 0}}
      .dump();
}

// What the engine itself generates greedily for `prompt`, in this process: the oracle the
// cluster's answer must equal, whichever worker and region served it.
std::string GreedyInProcess(const std::string& prompt, int max_tokens) {
  auto options = engine::EngineLoadOptions::FromConfig(
      base::Config::Defaults(), std::string(SUPERCLUSTER_SOURCE_DIR) + "/models/kjv/kjv.gguf");
  auto loaded = engine::LoadEngine(options);
  EXPECT_TRUE(loaded.ok()) << loaded.status().ToString();
  if (!loaded.ok()) return "";
  engine::GenerationRequest request;
  engine::EncodeOptions encode;
  encode.add_bos = (*loaded)->tokenizer().vocab().add_bos;
  request.prompt = (*loaded)->tokenizer().Encode(prompt, encode);
  request.max_tokens = max_tokens;
  request.sampling.temperature = 0;
  std::mutex mutex;
  std::condition_variable done;
  std::string text;
  bool finished = false;
  auto submitted = (*loaded)->Submit(request, [&](const engine::GenerationEvent& event) {
    std::lock_guard lock(mutex);
    text += event.text;
    if (event.finished) {
      finished = true;
      done.notify_all();
    }
  });
  EXPECT_TRUE(submitted.ok());
  std::unique_lock lock(mutex);
  done.wait(lock, [&] { return finished; });
  return text;
}

TEST_F(ClusterTest, SealedInferenceGoesThroughEveryTierAndMatchesTheEngine) {
  client::ClusterClient client(ClientOptions(*cluster, cluster->demo_api_key));
  auto candidates = client.FetchCandidates("kjv");
  ASSERT_TRUE(candidates.ok()) << candidates.status().ToString();
  EXPECT_TRUE(candidates->rejections.empty());
  // Candidates come from more than one region, so the client can be served elsewhere if
  // the nearest region fails.
  std::set<std::string> regions;
  for (const auto& candidate : candidates->accepted) regions.insert(candidate.region);
  EXPECT_GE(regions.size(), 2u);

  std::string streamed;
  auto result = client.Infer(candidates->accepted, "kjv", CompletionRequest("And God said", 24),
                             [&](std::string_view text) { streamed += text; });
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->text, streamed);
  EXPECT_EQ(result->text, GreedyInProcess("And God said", 24));
  EXPECT_EQ(result->finish_reason, "length");
  EXPECT_EQ(result->completion_tokens, 24);
  // The nearest region (the global endpoint stands in us-east-1) serves it.
  EXPECT_EQ(result->served_by.rfind("us-east-1/", 0), 0u) << result->served_by;
}

TEST_F(ClusterTest, RoutersNeverSeeThePrompt) {
  const std::string marker = "MARKER-7f3a9c-" + std::to_string(::getpid());
  client::ClusterClient client(ClientOptions(*cluster, cluster->demo_api_key));
  for (int i = 0; i < 3; ++i) {
    auto result = client.FetchAndInfer(
        "kjv", CompletionRequest("Secret " + marker + " unto Moses", 8), nullptr);
    ASSERT_TRUE(result.ok()) << result.status().ToString();
  }
  EXPECT_FALSE(FilesContain(cluster->data_dir / "cluster" / "logs", marker));
  int scanned = 0;
  for (const std::string role : {"router", "global", "relay"}) {
    for (const auto& process : cluster->Processes(role)) {
      std::optional<bool> found = MemoryContains(process.pid, marker);
      if (!found) continue;
      ++scanned;
      EXPECT_FALSE(*found) << process.name << " holds the prompt in its memory";
    }
  }
  if (scanned == 0) GTEST_SKIP() << "process memory is not readable here (ptrace rules)";
  // The scan works: the marker sent in a header the routers read is found in some router.
  (void)Call(global(), [&] {
    net::HttpRequest request = Post("/v1/completions", CompletionRequest("x", 1),
                                    cluster->demo_api_key);
    request.headers.Set("X-Supercluster-Model", "header-" + marker);
    return request;
  }());
  bool seen = false;
  for (const auto& process : cluster->Processes("global")) {
    seen = seen || MemoryContains(process.pid, "header-" + marker).value_or(false);
  }
  EXPECT_TRUE(seen) << "the memory scan did not find a marker the global endpoint did read";
}

TEST_F(ClusterTest, OpenAiCompletionsAndChatWorkThroughTheGlobalEndpoint) {
  auto response = Call(global(), Post("/v1/completions", CompletionRequest("And God said", 12),
                                      cluster->demo_api_key));
  ASSERT_TRUE(response.ok()) << response.status().ToString();
  ASSERT_EQ(response->status, 200) << response->body;
  Json body = Json::parse(response->body);
  EXPECT_EQ(body["choices"][0]["text"].get<std::string>(), GreedyInProcess("And God said", 12));
  EXPECT_EQ(body["usage"]["completion_tokens"].get<int>(), 12);

  Json chat = {{"model", "kjv"},
               {"messages", {{{"role", "user"}, {"content", "Who made the heaven?"}}}},
               {"max_tokens", 8},
               {"stream", true}};
  response = Call(global(), Post("/v1/chat/completions", chat.dump(), cluster->demo_api_key));
  ASSERT_TRUE(response.ok());
  ASSERT_EQ(response->status, 200) << response->body;
  EXPECT_NE(response->headers.Get("Content-Type").find("text/event-stream"), std::string::npos);
  EXPECT_NE(response->body.find("data: [DONE]"), std::string::npos) << response->body;
  EXPECT_NE(response->body.find("chat.completion.chunk"), std::string::npos);

  net::HttpRequest models;
  models.target = "/v1/models";
  models.headers.Set("Authorization", "Bearer " + cluster->demo_api_key);
  response = Call(global(), models);
  ASSERT_TRUE(response.ok());
  EXPECT_NE(response->body.find("\"kjv\""), std::string::npos) << response->body;
}

TEST_F(ClusterTest, BadInputAtTheEdgeGetsAClear4xx) {
  const std::string& key = cluster->demo_api_key;
  struct Case {
    std::string name;
    net::HttpRequest request;
    int status;
  };
  net::HttpRequest sealed_garbage = Post("/v1/sealed", "not an envelope", key);
  sealed_garbage.headers.Set("X-Supercluster-Model", "kjv");
  client::ClusterClient client(ClientOptions(*cluster, key));
  auto candidates = client.FetchCandidates("kjv");
  ASSERT_TRUE(candidates.ok());
  const client::Candidate& first = candidates->accepted.front();
  sealed_garbage.headers.Set("X-Supercluster-Candidates", first.region + "/" + first.instance);
  std::vector<Case> cases = {
      {"no API key", Post("/v1/completions", CompletionRequest("x", 1), ""), 401},
      {"unknown API key", Post("/v1/completions", CompletionRequest("x", 1), "sc-nobody"), 401},
      {"malformed JSON", Post("/v1/completions", "{\"model\": \"kjv\", ", key), 400},
      {"not an object", Post("/v1/completions", "[1,2]", key), 400},
      {"unknown model",
       Post("/v1/completions", Json{{"model", "gpt-9"}, {"prompt", "x"}}.dump(), key), 404},
      {"oversized prompt",
       Post("/v1/completions", CompletionRequest(std::string(2 << 20, 'a'), 1), key), 413},
      {"invalid sealed body", sealed_garbage, 400},
  };
  for (const Case& test : cases) {
    auto response = Call(global(), test.request);
    ASSERT_TRUE(response.ok()) << test.name << ": " << response.status().ToString();
    EXPECT_EQ(response->status, test.status) << test.name << ": " << response->body;
    Json body = Json::parse(response->body, nullptr, false);
    EXPECT_TRUE(body.is_object() && body.contains("error")) << test.name << ": " << response->body;
  }

  // Sealed to one worker but sent to another (a wrong key id): that worker's enclave cannot
  // open it.
  ASSERT_GE(candidates->accepted.size(), 2u);
  std::vector<client::Candidate> only_first = {candidates->accepted[0]};
  auto sealed = client::SealRequest({only_first[0].enclave},
                                    crypto::AsBytes(CompletionRequest("x", 1)), client::NowMs());
  ASSERT_TRUE(sealed.ok());
  net::HttpRequest misdirected = Post("/v1/sealed", crypto::ToString(sealed->envelope), key);
  misdirected.headers.Set("X-Supercluster-Model", "kjv");
  const client::Candidate& other = candidates->accepted[1];
  misdirected.headers.Set("X-Supercluster-Candidates", other.region + "/" + other.instance);
  auto response = Call(global(), misdirected);
  ASSERT_TRUE(response.ok());
  EXPECT_EQ(response->status, 400) << response->body;

  // The cluster is still up after all of that.
  auto result = client.FetchAndInfer("kjv", CompletionRequest("And", 2), nullptr);
  EXPECT_TRUE(result.ok()) << result.status().ToString();
}

TEST_F(ClusterTest, ATenantCannotActAsAnother) {
  store::Tenant confidential;
  confidential.id = "confidential-a";
  confidential.allow_plaintext = false;
  std::string key_a = AddTenant(*cluster, confidential);
  store::Tenant open;
  open.id = "plaintext-b";
  open.allow_plaintext = true;
  AddTenant(*cluster, open);
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // the routers' caches follow

  // A's key with a forged tenant header naming B: still A, and A may not send plaintext.
  net::HttpRequest forged = Post("/v1/completions", CompletionRequest("x", 1), key_a);
  forged.headers.Set("X-Supercluster-Tenant", "plaintext-b");
  auto response = Call(global(), forged);
  ASSERT_TRUE(response.ok());
  EXPECT_EQ(response->status, 403) << response->body;
  EXPECT_NE(response->body.find("plaintext"), std::string::npos) << response->body;

  // A's sealed requests are served.
  client::ClusterClient client(ClientOptions(*cluster, key_a));
  auto result = client.FetchAndInfer("kjv", CompletionRequest("And", 2), nullptr);
  EXPECT_TRUE(result.ok()) << result.status().ToString();
}

TEST_F(ClusterTest, RateLimitsArePerTenant) {
  store::Tenant slow;
  slow.id = "rate-limited";
  slow.allow_plaintext = true;
  slow.requests_per_second = 1;
  std::string slow_key = AddTenant(*cluster, slow);
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  int limited = 0;
  for (int i = 0; i < 5; ++i) {
    auto response = Call(global(), Post("/v1/completions", CompletionRequest("x", 1), slow_key));
    ASSERT_TRUE(response.ok());
    if (response->status == 429) {
      ++limited;
      EXPECT_FALSE(response->headers.Get("Retry-After").empty());
    }
  }
  EXPECT_GE(limited, 3);
  // Another tenant is not affected.
  auto response =
      Call(global(), Post("/v1/completions", CompletionRequest("x", 1), cluster->demo_api_key));
  ASSERT_TRUE(response.ok());
  EXPECT_EQ(response->status, 200) << response->body;
}

}  // namespace
}  // namespace supercluster::testing
