// One request's way from the engine to the client: the engine's events for it are queued
// here (the engine's scheduler thread must not block), then a task thread turns them into
// the answer's bytes (sealing each chunk through the enclave for the sealed API) and hands
// them to the connection. Internal to the worker module; the worker service creates one per
// admitted request.
//
// Backpressure and coalescing: at most one write is in flight per request. Text that the
// engine produces while the previous chunk is still being written (a slow client, a slow
// enclave) is gathered into the next chunk, so a slow reader gets fewer, larger chunks
// instead of an ever-growing queue; a client that stops reading altogether is cut off by the
// server's max_stream_buffer_bytes, which cancels the request. A client that goes away
// cancels the engine request and closes the enclave response context.
//
// The response head goes out with the first bytes of the answer, not before: until then a
// request the worker cancels (a drain that ran out of time) can still be answered 503
// unavailable, which a router retries on another worker. One cut off after that ends as an
// engine failure does: an `event: error` (OpenAI streams) or a sealed final chunk with
// finish_reason "error"; never with OpenAI's finish_reason set to "cancelled".
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "net/http_server.h"
#include "worker/enclave_link.h"
#include "worker/openai_format.h"
#include "worker/task_queue.h"
#include "worker/worker_metrics.h"

namespace supercluster::worker {

enum class AnswerMode {
  kSealed,        // SSE "event: sealed" chunks, sealed by the enclave
  kOpenAiStream,  // SSE "data: {chunk}" ... "data: [DONE]"
  kOpenAiWhole,   // one JSON answer at the end
};

// What a stream needs from the service; everything outlives every stream's tasks.
struct StreamEnvironment {
  TaskQueue* tasks = nullptr;
  EnclaveLink* enclave = nullptr;  // kSealed only
  WorkerMetrics* metrics = nullptr;
  std::string served_by;  // "region/instance", the X-Supercluster-Served-By value
  std::chrono::seconds retry_after{1};  // with a 503
};

class GenerationStream : public std::enable_shared_from_this<GenerationStream> {
 public:
  // `on_done` runs once, on a task thread, after the engine's last event for the request
  // has been handled (answered, failed, or dropped because the client left).
  GenerationStream(AnswerMode mode, std::shared_ptr<net::Responder> responder,
                   AnswerIdentity identity, uint64_t enclave_context,
                   std::chrono::steady_clock::time_point arrived, StreamEnvironment environment,
                   std::function<void()> on_done);

  // The callback to give Engine::Submit. Runs on the engine's scheduler thread; only queues.
  engine::Engine::EventCallback Callback();

  // Call once Submit succeeded: lets the queued output flow (the response head goes with
  // its first bytes), and arranges for `cancel` (Engine::Cancel of this request) to run
  // when the client goes away.
  void Begin(std::function<void()> cancel);

 private:
  void OnEvent(const engine::GenerationEvent& event);
  void ScheduleLocked();  // posts Pump unless one is scheduled; mutex_ held
  void Pump();
  // Turns the gathered text (and the final event, when it came) into bytes and writes them.
  void Emit();
  bool OutputWaiting() const;  // Emit would write something now
  void EmitSealed();
  void EmitOpenAi();
  void StartStreamOnce();  // the head of a streamed answer, before its first bytes
  // The worker cancelled the request before any of its answer was sent: 503, to retry.
  void RefuseCancelled();
  void Abandon(const std::string& why);  // stop answering; cancel the request
  void WriteAndWait(std::string bytes);
  void FinishRequest();

  const AnswerMode mode_;
  const std::shared_ptr<net::Responder> responder_;
  const AnswerIdentity identity_;
  const uint64_t enclave_context_;
  const std::chrono::steady_clock::time_point arrived_;
  const StreamEnvironment environment_;
  const std::function<void()> on_done_;
  bool first_token_seen_ = false;  // engine thread only

  std::mutex mutex_;
  std::vector<engine::GenerationEvent> pending_;
  bool scheduled_ = false;
  bool write_in_flight_ = true;  // true until Begin(): nothing is written before the head
  std::function<void()> cancel_;

  // Pump only (one Pump runs at a time).
  std::string gathered_;
  std::optional<engine::GenerationEvent> final_;
  bool first_chunk_ = true;
  bool head_sent_ = false;  // the response head went out (answered or streaming)
  bool abandoned_ = false;    // the client left or the answer failed: write nothing more
  bool context_open_ = true;  // the enclave response context still exists (kSealed)
  bool done_ = false;
};

}  // namespace supercluster::worker
