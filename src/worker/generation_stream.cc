#include "worker/generation_stream.h"

#include "base/logging.h"
#include "crypto/bytes.h"
#include "net/sse.h"
#include "base/base64.h"

namespace supercluster::worker {
namespace {

std::string DataEvent(std::string data) { return net::FormatSseEvent({"", std::move(data), ""}); }

std::string ErrorEvent(const std::string& message, const std::string& type) {
  return net::FormatSseEvent({"error", net::JsonErrorBody(message, type), ""});
}

Usage UsageOf(const engine::GenerationEvent& event) {
  return {event.prompt_tokens, event.completion_tokens};
}

// Why an answer the worker cancelled after it had started streaming ends early.
std::string CutOffMessage(const engine::GenerationEvent& final) {
  return "the worker is shutting down: the answer was cut off after " +
         std::to_string(final.completion_tokens) + " tokens";
}

bool Cancelled(const engine::GenerationEvent& final) {
  return final.reason == engine::FinishReason::kCancelled;
}

}  // namespace

GenerationStream::GenerationStream(AnswerMode mode, std::shared_ptr<net::Responder> responder,
                                   AnswerIdentity identity, uint64_t enclave_context,
                                   std::chrono::steady_clock::time_point arrived,
                                   StreamEnvironment environment, std::function<void()> on_done)
    : mode_(mode),
      responder_(std::move(responder)),
      identity_(std::move(identity)),
      enclave_context_(enclave_context),
      arrived_(arrived),
      environment_(std::move(environment)),
      on_done_(std::move(on_done)) {}

engine::Engine::EventCallback GenerationStream::Callback() {
  return
      [self = shared_from_this()](const engine::GenerationEvent& event) { self->OnEvent(event); };
}

void GenerationStream::OnEvent(const engine::GenerationEvent& event) {
  if (!first_token_seen_ && event.token != engine::kNoToken) {
    first_token_seen_ = true;
    environment_.metrics->ObserveFirstToken(std::chrono::steady_clock::now() - arrived_);
  }
  std::lock_guard lock(mutex_);
  pending_.push_back(event);
  ScheduleLocked();
}

void GenerationStream::Begin(std::function<void()> cancel) {
  {
    std::lock_guard lock(mutex_);
    cancel_ = cancel;
    write_in_flight_ = false;
    ScheduleLocked();
  }
  // Runs at once when the client is already gone; the engine then ends the request with a
  // cancelled event, which lets the stream finish.
  responder_->OnClose(std::move(cancel));
}

void GenerationStream::ScheduleLocked() {
  if (scheduled_) return;
  scheduled_ = true;
  environment_.tasks->Post([self = shared_from_this()] { self->Pump(); });
}

void GenerationStream::Pump() {
  for (;;) {
    std::vector<engine::GenerationEvent> events;
    bool writable;
    {
      std::lock_guard lock(mutex_);
      events.swap(pending_);
      writable = !write_in_flight_;
      if (events.empty() && !(writable && OutputWaiting())) {
        scheduled_ = false;
        return;
      }
    }
    for (engine::GenerationEvent& event : events) {
      if (done_ || final_) continue;
      gathered_ += event.text;
      if (event.finished) final_ = std::move(event);
    }
    if (done_) continue;
    if (!abandoned_ && responder_->Closed()) Abandon("");
    if (abandoned_) {
      if (final_) FinishRequest();
      continue;
    }
    if (writable) Emit();
  }
}

bool GenerationStream::OutputWaiting() const {
  if (done_ || abandoned_) return false;
  return final_.has_value() || (mode_ != AnswerMode::kOpenAiWhole && !gathered_.empty());
}

void GenerationStream::StartStreamOnce() {
  if (head_sent_) return;
  head_sent_ = true;
  net::Headers headers;
  headers.Set("Content-Type", "text/event-stream");
  headers.Set("Cache-Control", "no-cache");
  headers.Set("X-Supercluster-Served-By", environment_.served_by);
  responder_->StartStream(200, std::move(headers));
}

void GenerationStream::RefuseCancelled() {
  head_sent_ = true;
  // Turned away before it ran, as a drain's refusal is; one cut off later had run.
  if (final_->completion_tokens == 0) environment_.metrics->CountRejected("draining");
  net::HttpResponse response = net::HttpResponse::JsonError(
      503, "the worker is shutting down and cancelled this request before answering it",
      "unavailable");
  response.headers.Set("X-Supercluster-Served-By", environment_.served_by);
  response.headers.Set("Retry-After", std::to_string(environment_.retry_after.count()));
  responder_->Send(std::move(response));
  FinishRequest();
}

void GenerationStream::Emit() {
  // Nothing of the answer has gone out (a non-streamed answer never has before its end):
  // the client may as well have been refused, and a router tries another worker.
  if (final_ && Cancelled(*final_) && !head_sent_) return RefuseCancelled();
  switch (mode_) {
    case AnswerMode::kSealed:
      EmitSealed();
      return;
    case AnswerMode::kOpenAiStream:
      EmitOpenAi();
      return;
    case AnswerMode::kOpenAiWhole:
      if (!final_) return;
      if (final_->reason == engine::FinishReason::kError) {
        net::HttpResponse response =
            net::HttpResponse::JsonError(500, final_->error.message(), "engine_error");
        response.headers.Set("X-Supercluster-Served-By", environment_.served_by);
        responder_->Send(std::move(response));
      } else {
        net::HttpResponse response = net::HttpResponse::Json(
            200, CompletionJson(identity_, gathered_, engine::FinishReasonName(final_->reason),
                                UsageOf(*final_)));
        response.headers.Set("X-Supercluster-Served-By", environment_.served_by);
        responder_->Send(std::move(response));
      }
      FinishRequest();
      return;
  }
}

void GenerationStream::EmitSealed() {
  std::string chunk;
  bool final = final_.has_value();
  if (final) {
    // Cut off by the worker, the answer ends as on an engine failure (a client that left
    // is never answered, so a cancellation reaching here is the worker's).
    std::string error;
    if (final_->reason == engine::FinishReason::kError) error = final_->error.message();
    if (Cancelled(*final_)) error = CutOffMessage(*final_);
    const char* reason = error.empty() ? engine::FinishReasonName(final_->reason) : "error";
    chunk = SealedFinalChunkJson(gathered_, reason, UsageOf(*final_), error);
  } else if (!gathered_.empty()) {
    chunk = SealedChunkJson(gathered_);
  } else {
    return;
  }
  gathered_.clear();
  auto sealed = environment_.enclave->Seal(enclave_context_, crypto::AsBytes(chunk), final);
  if (!sealed.ok()) {
    context_open_ = false;  // the enclave drops a context whose seal failed
    spdlog::warn("sealing an answer chunk failed: {}", sealed.status().message());
    Abandon("sealing the answer failed: " + sealed.status().message());
    if (final_) FinishRequest();
    return;
  }
  std::string event = net::FormatSseEvent(
      {"sealed", base::Base64Encode(crypto::ToString(*sealed)), ""});
  StartStreamOnce();
  if (final) {
    context_open_ = false;  // the final seal ended the context
    responder_->Write(std::move(event));
    responder_->Finish();
    FinishRequest();
  } else {
    WriteAndWait(std::move(event));
  }
}

void GenerationStream::EmitOpenAi() {
  std::string bytes;
  if (!gathered_.empty()) {
    bytes += DataEvent(
        CompletionChunkJson(identity_, gathered_, first_chunk_, std::nullopt));
    first_chunk_ = false;
    gathered_.clear();
  }
  if (!final_) {
    if (bytes.empty()) return;
    StartStreamOnce();
    WriteAndWait(std::move(bytes));
    return;
  }
  StartStreamOnce();
  if (final_->reason == engine::FinishReason::kError) {
    bytes += ErrorEvent(final_->error.message(), "engine_error");
  } else if (Cancelled(*final_)) {
    bytes += ErrorEvent(CutOffMessage(*final_), "unavailable");
  } else {
    bytes += DataEvent(CompletionChunkJson(
        identity_, "", first_chunk_, std::string_view(engine::FinishReasonName(final_->reason))));
    if (identity_.stream_usage) bytes += DataEvent(UsageChunkJson(identity_, UsageOf(*final_)));
    bytes += DataEvent("[DONE]");
  }
  responder_->Write(std::move(bytes));
  responder_->Finish();
  FinishRequest();
}

void GenerationStream::WriteAndWait(std::string bytes) {
  {
    std::lock_guard lock(mutex_);
    write_in_flight_ = true;
  }
  responder_->Write(std::move(bytes), [self = shared_from_this()](base::Status) {
    // On an error the responder is closed; the next Pump sees that and abandons.
    std::lock_guard lock(self->mutex_);
    self->write_in_flight_ = false;
    self->ScheduleLocked();
  });
}

void GenerationStream::Abandon(const std::string& why) {
  abandoned_ = true;
  if (!why.empty() && !responder_->Closed()) {
    if (!head_sent_) {
      head_sent_ = true;
      net::HttpResponse response = net::HttpResponse::JsonError(500, why, "worker_error");
      response.headers.Set("X-Supercluster-Served-By", environment_.served_by);
      responder_->Send(std::move(response));
    } else {
      responder_->Write(ErrorEvent(why, "worker_error"));
      responder_->Finish();
    }
  }
  std::function<void()> cancel;
  {
    std::lock_guard lock(mutex_);
    cancel = cancel_;
  }
  if (cancel) cancel();
}

void GenerationStream::FinishRequest() {
  if (done_) return;
  done_ = true;
  if (mode_ == AnswerMode::kSealed && context_open_) {
    context_open_ = false;
    if (base::Status closed = environment_.enclave->Close(enclave_context_); !closed.ok()) {
      spdlog::debug("closing an enclave response context: {}", closed.message());
    }
  }
  environment_.metrics->ObserveFinished(std::chrono::steady_clock::now() - arrived_);
  on_done_();
}

}  // namespace supercluster::worker
