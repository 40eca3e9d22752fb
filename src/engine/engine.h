// Engine: what a worker uses to run inference. Requests go in as token ids with their
// sampling settings; text comes out as a stream of events, one per generated token, through
// a callback. Many requests run at once as a continuous batch: new sequences join between
// steps, finished ones leave, and every step runs all running sequences (prefill and
// decode alike) through one batched forward pass of the ModelBackend (model_backend.h).
//
// Admission: a request needs KV cache for its prompt plus max_tokens. One that could never
// fit (longer than the context, or bigger than the whole budget) is refused at Submit with a
// clear error; one that fits the budget but not what is free now waits in the queue, which
// is bounded: Submit fails with kResourceExhausted when max_running + max_queued requests
// are running or waiting already.
//
// Threading: Submit, Cancel and Stats may be called from any thread. Callbacks run on the
// engine's scheduler thread, one request's events in order; they must not block (hand the
// text to an I/O thread) and must not call back into the Engine except Cancel.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "base/status.h"
#include "engine/model_backend.h"
#include "engine/sampler.h"
#include "engine/tokenizer.h"

namespace supercluster::engine {

struct EngineOptions {
  int32_t max_running = 8;   // sequences in one batch step
  // Requests that may wait for a slot (or KV memory) beyond the max_running that run:
  // Submit refuses one only when running and waiting would exceed the two together.
  int32_t max_queued = 64;
  // EngineStats::tokens_per_second is the tokens generated over this last stretch of time,
  // divided by it (tests shorten it).
  std::chrono::milliseconds rate_window{5000};
};

struct GenerationRequest {
  std::vector<TokenId> prompt;  // not empty
  int32_t max_tokens = 128;     // > 0
  SamplingParams sampling;
  std::vector<std::string> stop;  // stop strings (the text before one is kept)
  bool stop_at_eos = true;        // end at the vocabulary's end-of-sequence tokens
};

enum class FinishReason { kNone, kStop, kLength, kCancelled, kError };
const char* FinishReasonName(FinishReason reason);  // "stop", "length", ...

struct GenerationEvent {
  std::string text;             // new text since the previous event (may be empty)
  TokenId token = kNoToken;     // the token this event is for (kNoToken on a final-only event)
  bool finished = false;        // the last event of the request
  FinishReason reason = FinishReason::kNone;
  base::Status error;           // set when reason is kError
  int32_t prompt_tokens = 0;
  int32_t completion_tokens = 0;
};

struct EngineStats {
  int32_t queued = 0;
  int32_t running = 0;
  size_t kv_bytes_in_use = 0;
  size_t kv_bytes_budget = 0;
  uint64_t requests_finished = 0;
  uint64_t prompt_tokens = 0;      // processed, in total
  uint64_t generated_tokens = 0;   // in total
  double tokens_per_second = 0;    // generated over the last rate_window (0 when idle)
};

class Engine {
 public:
  using RequestId = uint64_t;
  using EventCallback = std::function<void(const GenerationEvent&)>;

  // `tokenizer` decodes the output and names the end-of-sequence tokens.
  static base::Result<std::unique_ptr<Engine>> Create(std::unique_ptr<ModelBackend> backend,
                                                      std::shared_ptr<const Tokenizer> tokenizer,
                                                      EngineOptions options);
  // Cancels everything still running (their callbacks get a kCancelled event) and stops.
  ~Engine();

  // Queues a request. kInvalidArgument for a malformed request or one that can never fit;
  // kResourceExhausted when the queue is full.
  base::Result<RequestId> Submit(GenerationRequest request, EventCallback callback);
  // Ends a request at the next step boundary and frees its KV cache; its callback gets a
  // final kCancelled event unless it had already finished. Unknown ids are ignored.
  void Cancel(RequestId id);
  // Cancels them all at once: no step runs between two of them, so a queued request is
  // never moved into a slot that another's cancellation freed, and started, before its own
  // cancellation lands (a drain: what never started is refused, not cut off).
  void Cancel(std::span<const RequestId> ids);

  EngineStats Stats() const;
  const Tokenizer& tokenizer() const;
  const ModelShape& shape() const;

 private:
  struct State;
  explicit Engine(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace supercluster::engine
