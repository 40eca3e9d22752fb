// The scheduler (engine.h) over a scripted backend: streaming, stopping, continuous
// batching, cancellation, admission against the KV budget, and failure handling. The real
// forward pass is tested against PyTorch in cpu_backend_test.cc; here the backend writes
// known logits so the scheduling itself is what is checked.
#include "engine/engine.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

#include "engine/test_event_collector.h"

namespace supercluster::engine {
namespace {

using namespace std::chrono_literals;

// <unk>, <s>, </s>, then the 256 byte tokens: id 3 + b decodes to byte b.
constexpr TokenId kEos = 2;
TokenId ByteToken(char c) { return 3 + static_cast<unsigned char>(c); }

std::shared_ptr<const Tokenizer> ByteTokenizer() {
  TokenizerVocab vocab;
  vocab.tokens = {"<unk>", "<s>", "</s>"};
  vocab.types = {TokenType::kUnknown, TokenType::kControl, TokenType::kControl};
  for (int byte = 0; byte < 256; ++byte) {
    char piece[8];
    std::snprintf(piece, sizeof(piece), "<0x%02X>", byte);
    vocab.tokens.push_back(piece);
    vocab.types.push_back(TokenType::kByte);
  }
  vocab.scores.assign(vocab.tokens.size(), 0.0f);
  vocab.unknown_id = 0;
  vocab.bos_id = 1;
  vocab.eos_id = kEos;
  auto tokenizer = Tokenizer::Build(vocab);
  EXPECT_TRUE(tokenizer.ok()) << tokenizer.status().ToString();
  return std::shared_ptr<const Tokenizer>(std::move(*tokenizer));
}

// Writes logits whose argmax after position p of a sequence whose first token is f is the
// letter 'a' + (p + f) % 26, or EOS at eos_position. It checks what a real backend relies
// on: every slice starts exactly where its sequence's cache ends.
class ScriptedBackend : public ModelBackend {
 public:
  ScriptedBackend(size_t budget_tokens, int32_t context = 256) {
    shape_.vocab_size = 259;
    shape_.context_length = context;
    shape_.kv_bytes_per_token = 1000;
    budget_ = budget_tokens * shape_.kv_bytes_per_token;
  }

  const ModelShape& shape() const override { return shape_; }
  base::Status AddSequence(SequenceId sequence, int32_t capacity) override {
    std::lock_guard lock(mutex_);
    size_t bytes = static_cast<size_t>(capacity) * shape_.kv_bytes_per_token;
    if (in_use_ + bytes > budget_) return base::ResourceExhausted("KV budget");
    reserved_[sequence] = bytes;
    in_use_ += bytes;
    cached_[sequence] = 0;
    return base::Status::Ok();
  }
  void RemoveSequence(SequenceId sequence) override {
    std::lock_guard lock(mutex_);
    auto found = reserved_.find(sequence);
    if (found == reserved_.end()) return;
    in_use_ -= found->second;
    reserved_.erase(found);
    cached_.erase(sequence);
    first_token_.erase(sequence);
  }
  size_t kv_bytes_in_use() const override {
    std::lock_guard lock(mutex_);
    return in_use_;
  }
  size_t kv_bytes_budget() const override { return budget_; }

  base::Status Forward(std::span<const ForwardSlice> batch, std::vector<float>* logits) override {
    if (step_delay_.count() > 0) std::this_thread::sleep_for(step_delay_);
    if (fail_next_.exchange(false)) return base::Internal("scripted failure");
    std::lock_guard lock(mutex_);
    largest_batch_ = std::max(largest_batch_, batch.size());
    logits->clear();
    for (const ForwardSlice& slice : batch) {
      if (cached_.count(slice.sequence) == 0 || cached_[slice.sequence] != slice.start_position) {
        return base::Internal("slice does not continue its sequence's cache");
      }
      if (slice.start_position == 0) first_token_[slice.sequence] = slice.tokens[0];
      cached_[slice.sequence] += static_cast<int32_t>(slice.tokens.size());
      int32_t position = cached_[slice.sequence] - 1;
      std::vector<float> row(static_cast<size_t>(shape_.vocab_size), 0.0f);
      TokenId next = position == eos_position_
                         ? kEos
                         : ByteToken(static_cast<char>('a' + (position + first_token_[slice.sequence]) % 26));
      row[static_cast<size_t>(next)] = 10.0f;
      logits->insert(logits->end(), row.begin(), row.end());
    }
    return base::Status::Ok();
  }

  void set_eos_position(int32_t position) { eos_position_ = position; }
  void set_step_delay(std::chrono::milliseconds delay) { step_delay_ = delay; }
  void FailNextStep() { fail_next_ = true; }
  size_t largest_batch() const {
    std::lock_guard lock(mutex_);
    return largest_batch_;
  }

 private:
  ModelShape shape_;
  size_t budget_;
  mutable std::mutex mutex_;
  size_t in_use_ = 0;
  std::map<SequenceId, size_t> reserved_;
  std::map<SequenceId, int32_t> cached_;
  std::map<SequenceId, TokenId> first_token_;
  size_t largest_batch_ = 0;
  int32_t eos_position_ = -1;
  std::chrono::milliseconds step_delay_{0};
  std::atomic<bool> fail_next_{false};
};

using Collector = testing::EventCollector;

struct EngineUnderTest {
  ScriptedBackend* backend;
  std::unique_ptr<Engine> engine;
};

EngineUnderTest MakeEngine(size_t budget_tokens = 10000, EngineOptions options = {},
                           int32_t context = 256) {
  auto backend = std::make_unique<ScriptedBackend>(budget_tokens, context);
  ScriptedBackend* raw = backend.get();
  auto engine = Engine::Create(std::move(backend), ByteTokenizer(), options);
  EXPECT_TRUE(engine.ok()) << engine.status().ToString();
  return {raw, std::move(*engine)};
}

GenerationRequest Request(std::vector<TokenId> prompt, int32_t max_tokens) {
  GenerationRequest request;
  request.prompt = std::move(prompt);
  request.max_tokens = max_tokens;
  return request;
}

TEST(EngineTest, StreamsTextAndStopsAtMaxTokens) {
  EngineUnderTest under_test = MakeEngine();
  Collector collector;
  // First token 1, prompt of 2: the first generated token follows position 1: 'a' + 2 = 'c'.
  ASSERT_TRUE(under_test.engine->Submit(Request({1, 0}, 5), collector.Callback()).ok());
  GenerationEvent last = collector.Wait();
  EXPECT_EQ(collector.text, "cdefg");
  EXPECT_EQ(collector.tokens.size(), 5u);
  EXPECT_EQ(last.reason, FinishReason::kLength);
  EXPECT_EQ(last.prompt_tokens, 2);
  EXPECT_EQ(last.completion_tokens, 5);
  EngineStats stats = under_test.engine->Stats();
  EXPECT_EQ(stats.generated_tokens, 5u);
  EXPECT_EQ(stats.prompt_tokens, 2u);
  EXPECT_EQ(stats.requests_finished, 1u);
  EXPECT_EQ(stats.kv_bytes_in_use, 0u) << "a finished request frees its KV cache";
}

TEST(EngineTest, EndOfSequenceAndStopStringsEndTheRequest) {
  EngineUnderTest under_test = MakeEngine();
  under_test.backend->set_eos_position(4);
  Collector at_eos;
  ASSERT_TRUE(under_test.engine->Submit(Request({1, 0}, 50), at_eos.Callback()).ok());
  EXPECT_EQ(at_eos.Wait().reason, FinishReason::kStop);
  EXPECT_EQ(at_eos.text, "cde");

  under_test.backend->set_eos_position(-1);
  Collector at_stop;
  GenerationRequest request = Request({1, 0}, 50);
  request.stop = {"ef"};
  ASSERT_TRUE(under_test.engine->Submit(request, at_stop.Callback()).ok());
  GenerationEvent last = at_stop.Wait();
  EXPECT_EQ(last.reason, FinishReason::kStop);
  EXPECT_EQ(at_stop.text, "cd") << "the stop string and what follows are not shown";

  Collector eos_ignored;
  under_test.backend->set_eos_position(4);
  GenerationRequest keep_going = Request({1, 0}, 6);
  keep_going.stop_at_eos = false;
  ASSERT_TRUE(under_test.engine->Submit(keep_going, eos_ignored.Callback()).ok());
  EXPECT_EQ(eos_ignored.Wait().reason, FinishReason::kLength);
}

TEST(EngineTest, ConcurrentRequestsBatchAndMatchRunningAlone) {
  EngineUnderTest under_test = MakeEngine();
  under_test.backend->set_step_delay(2ms);  // lets all eight join before the first finishes
  constexpr int kRequests = 8;
  std::vector<std::string> batched(kRequests), alone(kRequests);
  {
    std::vector<Collector> collectors(kRequests);
    for (int i = 0; i < kRequests; ++i) {
      ASSERT_TRUE(under_test.engine
                      ->Submit(Request({static_cast<TokenId>(10 + i), 5, 6}, 12 + i),
                               collectors[i].Callback())
                      .ok());
    }
    for (int i = 0; i < kRequests; ++i) {
      collectors[i].Wait();
      batched[i] = collectors[i].text;
    }
  }
  EXPECT_GE(under_test.backend->largest_batch(), 4u) << "requests did not share steps";
  for (int i = 0; i < kRequests; ++i) {
    Collector collector;
    ASSERT_TRUE(under_test.engine
                    ->Submit(Request({static_cast<TokenId>(10 + i), 5, 6}, 12 + i),
                             collector.Callback())
                    .ok());
    collector.Wait();
    alone[i] = collector.text;
    EXPECT_EQ(alone[i].size(), static_cast<size_t>(12 + i));
  }
  EXPECT_EQ(batched, alone);
}

TEST(EngineTest, CancelMidStreamEndsTheRequestAndFreesItsMemory) {
  EngineUnderTest under_test = MakeEngine();
  under_test.backend->set_step_delay(1ms);
  Collector collector;
  std::atomic<Engine::RequestId> id{0};
  std::atomic<int> seen{0};
  Engine* engine = under_test.engine.get();
  auto callback = collector.Callback();
  auto submitted = engine->Submit(Request({1, 2, 3}, 200), [&](const GenerationEvent& event) {
    callback(event);
    if (++seen == 3) {
      // The first events can come before Submit has returned the id to this thread.
      while (id.load() == 0) std::this_thread::yield();
      engine->Cancel(id.load());  // Cancel is allowed from a callback
    }
  });
  ASSERT_TRUE(submitted.ok());
  id = *submitted;
  // The reservation is visible while it runs...
  for (int i = 0; i < 100 && under_test.engine->Stats().kv_bytes_in_use == 0; ++i) {
    std::this_thread::sleep_for(1ms);
  }
  GenerationEvent last = collector.Wait();
  EXPECT_EQ(last.reason, FinishReason::kCancelled);
  EXPECT_LT(last.completion_tokens, 10);
  // ...and gone after the cancel.
  EXPECT_EQ(under_test.engine->Stats().kv_bytes_in_use, 0u);
  EXPECT_EQ(under_test.engine->Stats().running, 0);
}

TEST(EngineTest, RequestsOverTheBudgetOrContextAreRefusedClearly) {
  EngineUnderTest under_test = MakeEngine(/*budget_tokens=*/100, {}, /*context=*/256);
  Collector unused;
  auto over_budget = under_test.engine->Submit(Request({1, 2}, 150), unused.Callback());
  ASSERT_FALSE(over_budget.ok());
  EXPECT_EQ(over_budget.status().code(), base::StatusCode::kInvalidArgument);
  EXPECT_NE(over_budget.status().message().find("KV cache"), std::string::npos)
      << over_budget.status().message();
  auto over_context = under_test.engine->Submit(Request({1, 2}, 300), unused.Callback());
  EXPECT_NE(over_context.status().message().find("context"), std::string::npos);
  EXPECT_FALSE(under_test.engine->Submit(Request({}, 5), unused.Callback()).ok());
  EXPECT_FALSE(under_test.engine->Submit(Request({1}, 0), unused.Callback()).ok());
  EXPECT_FALSE(under_test.engine->Submit(Request({999}, 5), unused.Callback()).ok());
  GenerationRequest bad_sampling = Request({1}, 5);
  bad_sampling.sampling.top_p = 2;
  EXPECT_FALSE(under_test.engine->Submit(bad_sampling, unused.Callback()).ok());
}

TEST(EngineTest, RequestsWaitForMemoryThenRun) {
  // Each request needs 60 tokens of KV; the budget holds one at a time.
  EngineUnderTest under_test = MakeEngine(/*budget_tokens=*/100);
  std::vector<Collector> collectors(3);
  for (Collector& collector : collectors) {
    ASSERT_TRUE(under_test.engine->Submit(Request({1, 2}, 58), collector.Callback()).ok());
  }
  for (Collector& collector : collectors) EXPECT_EQ(collector.Wait().reason, FinishReason::kLength);
  EXPECT_EQ(under_test.backend->largest_batch(), 1u);
}

TEST(EngineTest, FullQueueIsRefused) {
  // Declared before the engine, so they outlive it: its destructor still calls them.
  std::vector<Collector> collectors(6);
  EngineOptions options;
  options.max_running = 1;
  options.max_queued = 2;
  EngineUnderTest under_test = MakeEngine(10000, options);
  under_test.backend->set_step_delay(5ms);
  int refused = 0;
  for (Collector& collector : collectors) {
    auto submitted = under_test.engine->Submit(Request({1}, 100), collector.Callback());
    if (!submitted.ok()) {
      EXPECT_EQ(submitted.status().code(), base::StatusCode::kResourceExhausted);
      ++refused;
    }
  }
  EXPECT_EQ(refused, 3) << "one running and two queued at most";
}

// The queue bounds the requests that must wait for a slot, not those a free slot takes:
// an idle engine with max_queued 0 runs max_running requests, and a burst of max_running +
// max_queued requests at once is all accepted (most are still in the queue when the next
// arrives, on their way to a free slot).
TEST(EngineTest, FreeBatchSlotsAreNotCountedAgainstTheQueue) {
  for (int32_t max_queued : {0, 1}) {
    SCOPED_TRACE(max_queued);
    std::vector<Collector> collectors(10);
    EngineOptions options;
    options.max_running = 8;
    options.max_queued = max_queued;
    EngineUnderTest under_test = MakeEngine(10000, options);
    under_test.backend->set_step_delay(5ms);  // none finishes during the burst
    int accepted = 0;
    for (Collector& collector : collectors) {
      auto submitted = under_test.engine->Submit(Request({1}, 100), collector.Callback());
      if (submitted.ok()) {
        ++accepted;
      } else {
        EXPECT_EQ(submitted.status().code(), base::StatusCode::kResourceExhausted);
        EXPECT_NE(submitted.status().message().find("may wait"), std::string::npos)
            << submitted.status().message();
      }
    }
    EXPECT_EQ(accepted, 8 + max_queued);
  }
}

// The rate is over the last window of time, taken when read: it falls to 0 once the engine
// has generated nothing for a window, not stuck at the last busy value.
TEST(EngineTest, TokensPerSecondFallsToZeroWhenIdle) {
  EngineOptions options;
  options.rate_window = 300ms;
  EngineUnderTest under_test = MakeEngine(10000, options);
  EXPECT_EQ(under_test.engine->Stats().tokens_per_second, 0);
  Collector collector;
  ASSERT_TRUE(under_test.engine->Submit(Request({1}, 30), collector.Callback()).ok());
  collector.Wait();
  EngineStats busy = under_test.engine->Stats();
  EXPECT_GT(busy.tokens_per_second, 0);
  EXPECT_LE(busy.tokens_per_second, 30 / 0.3 + 1e-9) << "30 tokens within 300 ms at most";
  std::this_thread::sleep_for(400ms);
  EXPECT_EQ(under_test.engine->Stats().tokens_per_second, 0);
}

TEST(EngineTest, AFailedStepFailsTheRunningRequests) {
  EngineUnderTest under_test = MakeEngine();
  under_test.backend->FailNextStep();
  Collector collector;
  ASSERT_TRUE(under_test.engine->Submit(Request({1}, 5), collector.Callback()).ok());
  GenerationEvent last = collector.Wait();
  EXPECT_EQ(last.reason, FinishReason::kError);
  EXPECT_NE(last.error.message().find("scripted failure"), std::string::npos);
  Collector after;
  ASSERT_TRUE(under_test.engine->Submit(Request({1}, 3), after.Callback()).ok());
  EXPECT_EQ(after.Wait().reason, FinishReason::kLength) << "the engine serves on";
}

TEST(EngineTest, DestroyingTheEngineCancelsWhatIsLeft) {
  Collector running, queued;
  {
    EngineOptions options;
    options.max_running = 1;
    EngineUnderTest under_test = MakeEngine(10000, options);
    under_test.backend->set_step_delay(5ms);
    ASSERT_TRUE(under_test.engine->Submit(Request({1}, 200), running.Callback()).ok());
    ASSERT_TRUE(under_test.engine->Submit(Request({1}, 200), queued.Callback()).ok());
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(running.Wait().reason, FinishReason::kCancelled);
  EXPECT_EQ(queued.Wait().reason, FinishReason::kCancelled);
}

}  // namespace
}  // namespace supercluster::engine
