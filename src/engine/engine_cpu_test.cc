// The whole engine on a real model (a synthesized GGUF, the CPU backend, the scheduler):
// eight concurrent greedy requests give exactly what each gives alone; a request cancelled
// mid-stream frees its KV memory; a request over the memory budget is refused clearly.
#include <gtest/gtest.h>

#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <thread>

#include "engine/load_engine.h"
#include "engine/test_event_collector.h"
#include "engine/model_synth.h"

namespace supercluster::engine {
namespace {

using namespace std::chrono_literals;

using Result = testing::EventCollector;

class EngineOnCpuTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/sc-engine-XXXXXX";
    dir_ = ::mkdtemp(pattern);
    auto shape = FindSynthShape("test-llama3");
    ASSERT_TRUE(shape.ok());
    SynthOptions synth;
    synth.shape = *shape;
    synth.type = TensorType::kQ8_0;
    synth.seed = 11;
    path_ = dir_ + "/model.gguf";
    ASSERT_TRUE(WriteSynthModel(synth, path_).ok());
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::unique_ptr<Engine> Load(size_t kv_bytes = 16 << 20) {
    EngineLoadOptions options;
    options.model_path = path_;
    options.backend.threads = 2;
    options.backend.kv_cache_bytes = kv_bytes;
    options.engine.max_running = 8;
    auto engine = LoadEngine(options);
    EXPECT_TRUE(engine.ok()) << engine.status().ToString();
    return engine.ok() ? std::move(*engine) : nullptr;
  }

  GenerationRequest Request(int i, int32_t max_tokens) {
    GenerationRequest request;
    request.prompt = {1, static_cast<TokenId>(20 + 7 * i), static_cast<TokenId>(40 + i), 5};
    request.max_tokens = max_tokens;
    request.stop_at_eos = false;  // random weights: keep lengths fixed
    return request;
  }

  std::string dir_, path_;
};

TEST_F(EngineOnCpuTest, EightConcurrentGreedyRequestsEqualEachRunAlone) {
  std::unique_ptr<Engine> engine = Load();
  ASSERT_NE(engine, nullptr);
  constexpr int kRequests = 8;
  std::vector<Result> batched(kRequests);
  for (int i = 0; i < kRequests; ++i) {
    ASSERT_TRUE(engine->Submit(Request(i, 24), batched[i].Callback()).ok());
  }
  for (Result& result : batched) EXPECT_EQ(result.Wait().completion_tokens, 24);
  for (int i = 0; i < kRequests; ++i) {
    Result alone;
    ASSERT_TRUE(engine->Submit(Request(i, 24), alone.Callback()).ok());
    alone.Wait();
    EXPECT_EQ(alone.tokens, batched[i].tokens) << "request " << i;
  }
}

TEST_F(EngineOnCpuTest, CancellingMidStreamFreesTheKvCache) {
  // What the callback uses is declared before the engine, so that the engine (whose
  // thread may still be inside the callback after the final event woke the test) goes
  // first. ASan found the other order writing `events` after its scope ended.
  Result result;
  std::atomic<Engine::RequestId> id{0};
  std::atomic<int> events{0};
  auto collect = result.Callback();
  std::atomic<size_t> seen_in_use{0};
  std::unique_ptr<Engine> engine = Load();
  ASSERT_NE(engine, nullptr);
  Engine* raw = engine.get();
  auto submitted = engine->Submit(Request(0, 48), [&](const GenerationEvent& event) {
    collect(event);
    // While the request runs, its KV reservation is in use.
    if (!event.finished) seen_in_use = std::max(seen_in_use.load(), raw->Stats().kv_bytes_in_use);
    if (++events == 4) {
      // The first events can come before Submit has returned the id to this thread.
      while (id.load() == 0) std::this_thread::yield();
      raw->Cancel(id.load());
    }
  });
  ASSERT_TRUE(submitted.ok());
  id = *submitted;
  EXPECT_EQ(result.Wait().reason, FinishReason::kCancelled);
  EXPECT_GT(seen_in_use.load(), 0u) << "the request held KV memory while it ran";
  EXPECT_EQ(engine->Stats().kv_bytes_in_use, 0u) << "cancelling gave the memory back";
}

TEST_F(EngineOnCpuTest, ARequestOverTheMemoryBudgetIsRefusedClearly) {
  std::unique_ptr<Engine> engine = Load(/*kv_bytes=*/8 << 10);  // 16 tokens of this model
  ASSERT_NE(engine, nullptr);
  Result result;
  auto refused = engine->Submit(Request(0, 40), result.Callback());
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("KV cache"), std::string::npos)
      << refused.status().message();
  Result fits;
  ASSERT_TRUE(engine->Submit(Request(0, 8), fits.Callback()).ok());
  EXPECT_EQ(fits.Wait().reason, FinishReason::kLength);
}

}  // namespace
}  // namespace supercluster::engine
