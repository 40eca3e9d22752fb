// The continuous-batching scheduler behind Engine (engine.h).
//
// One thread runs the loop: take cancellations, admit queued requests while there is a
// batch slot and KV memory, run one forward step over every running sequence (a prefill
// slice for a new one, a one-token decode slice for the others), sample a token for each,
// stream its text out, and retire the finished. Requests leave and join only between steps.
#include "engine/engine.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_set>

#include "engine/detokenizer.h"
#include "engine/stop_strings.h"

namespace supercluster::engine {
namespace {

using Clock = std::chrono::steady_clock;

// Tokens that end a generation: the vocabulary's end-of-sequence token and the end-of-turn
// markers of the chat formats (a chat model ends its answer with these, not with EOS).
std::unordered_set<TokenId> EndTokens(const Tokenizer& tokenizer) {
  std::unordered_set<TokenId> end;
  if (tokenizer.vocab().eos_id != kNoToken) end.insert(tokenizer.vocab().eos_id);
  for (const char* marker : {"<|eot_id|>", "<|im_end|>", "<|end_of_text|>", "<|endoftext|>"}) {
    TokenId id = tokenizer.FindPiece(marker);
    if (id != kNoToken) end.insert(id);
  }
  return end;
}

}  // namespace

const char* FinishReasonName(FinishReason reason) {
  switch (reason) {
    case FinishReason::kNone: return "none";
    case FinishReason::kStop: return "stop";
    case FinishReason::kLength: return "length";
    case FinishReason::kCancelled: return "cancelled";
    case FinishReason::kError: return "error";
  }
  return "unknown";
}

struct Sequence {
  Sequence(Engine::RequestId id_in, GenerationRequest request_in, Engine::EventCallback callback_in,
           const Tokenizer& tokenizer)
      : id(id_in),
        request(std::move(request_in)),
        callback(std::move(callback_in)),
        tokens(request.prompt),
        sampler(request.sampling),
        detokenizer(tokenizer),
        stops(request.stop) {
    detokenizer.ContinueAfter(request.prompt);
  }

  int32_t prompt_tokens() const { return static_cast<int32_t>(request.prompt.size()); }

  Engine::RequestId id;
  GenerationRequest request;
  Engine::EventCallback callback;
  std::vector<TokenId> tokens;  // prompt, then what was generated
  int32_t cached = 0;           // tokens in the KV cache
  int32_t generated = 0;
  Sampler sampler;
  Detokenizer detokenizer;
  StopStringMatcher stops;
  bool admitted = false;  // has a batch slot and KV reservation
  bool finished = false;
};

struct Engine::State {
  std::unique_ptr<ModelBackend> backend;
  std::shared_ptr<const Tokenizer> tokenizer;
  EngineOptions options;
  std::unordered_set<TokenId> end_tokens;

  mutable std::mutex mutex;
  std::condition_variable wake;
  std::deque<std::unique_ptr<Sequence>> queued;      // guarded by mutex
  std::unordered_set<RequestId> cancel_requests;     // guarded by mutex
  bool stopping = false;                              // guarded by mutex
  RequestId next_id = 1;                              // guarded by mutex
  std::atomic<int32_t> running_count{0};

  std::vector<std::unique_ptr<Sequence>> running;    // the scheduler thread's own

  std::atomic<uint64_t> requests_finished{0};
  std::atomic<uint64_t> prompt_tokens{0};
  std::atomic<uint64_t> generated_tokens{0};
  // The tokens of each step within the last rate_window, and their sum. The rate is taken
  // from them when read, so that it falls to 0 once the engine has been idle a window long.
  mutable std::mutex rate_mutex;
  mutable std::deque<std::pair<Clock::time_point, uint64_t>> rate_samples;  // rate_mutex
  mutable uint64_t rate_tokens = 0;                                          // rate_mutex

  std::thread thread;

  void Run();
  // Takes the stop flag, cancellations and admissions under the lock. Returns false when
  // the engine is stopping. Fills `dropped` with queued requests to end outside the lock.
  bool TakeWork(std::vector<std::pair<std::unique_ptr<Sequence>, base::Status>>* dropped,
                std::unordered_set<RequestId>* cancelled_running);
  void Step();
  // Sends the final event and frees the sequence's cache.
  void Finish(Sequence& sequence, FinishReason reason, std::string text, TokenId token,
              base::Status error = base::Status::Ok());
  void EmitToken(Sequence& sequence, TokenId token);
  void RecordRate(uint64_t tokens);
  double TokensPerSecond() const;
  void DropOldRateSamples(Clock::time_point now) const;  // rate_mutex held
};

bool Engine::State::TakeWork(
    std::vector<std::pair<std::unique_ptr<Sequence>, base::Status>>* dropped,
    std::unordered_set<RequestId>* cancelled_running) {
  std::unique_lock lock(mutex);
  wake.wait(lock, [&] {
    return stopping || !running.empty() || !cancel_requests.empty() ||
           (!queued.empty() && static_cast<int32_t>(running.size()) < options.max_running);
  });
  if (stopping) {
    for (auto& sequence : queued) dropped->emplace_back(std::move(sequence), base::Status::Ok());
    queued.clear();
    for (auto& sequence : running) cancelled_running->insert(sequence->id);
    return false;
  }
  for (auto it = queued.begin(); it != queued.end();) {
    if (cancel_requests.erase((*it)->id) != 0) {
      dropped->emplace_back(std::move(*it), base::Status::Ok());
      it = queued.erase(it);
    } else {
      ++it;
    }
  }
  for (const auto& sequence : running) {
    if (cancel_requests.erase(sequence->id) != 0) cancelled_running->insert(sequence->id);
  }
  cancel_requests.clear();  // ids that finished meanwhile, or never existed
  while (!queued.empty() && static_cast<int32_t>(running.size()) < options.max_running) {
    Sequence& next = *queued.front();
    base::Status reserved =
        backend->AddSequence(next.id, next.prompt_tokens() + next.request.max_tokens);
    // Without memory now, wait for a running sequence to finish. With none running, the
    // memory will never come (Submit checked the whole budget, so this is a backend that
    // cannot allocate at all): fail the request rather than spin.
    if (reserved.code() == base::StatusCode::kResourceExhausted && !running.empty()) break;
    std::unique_ptr<Sequence> sequence = std::move(queued.front());
    queued.pop_front();
    if (!reserved.ok()) {
      dropped->emplace_back(std::move(sequence), reserved);
      continue;
    }
    sequence->admitted = true;
    ++running_count;
    running.push_back(std::move(sequence));
  }
  return true;
}

void Engine::State::Run() {
  while (true) {
    std::vector<std::pair<std::unique_ptr<Sequence>, base::Status>> dropped;
    std::unordered_set<RequestId> cancelled_running;
    bool keep_going = TakeWork(&dropped, &cancelled_running);
    for (auto& [sequence, error] : dropped) {
      Finish(*sequence, error.ok() ? FinishReason::kCancelled : FinishReason::kError, "",
             kNoToken, error);
    }
    if (!cancelled_running.empty()) {
      std::erase_if(running, [&](std::unique_ptr<Sequence>& sequence) {
        if (cancelled_running.count(sequence->id) == 0) return false;
        Finish(*sequence, FinishReason::kCancelled, "", kNoToken);
        return true;
      });
    }
    if (!keep_going) return;
    if (!running.empty()) Step();
  }
}

void Engine::State::Step() {
  std::vector<ForwardSlice> slices;
  slices.reserve(running.size());
  uint64_t prefilled = 0;
  for (const auto& sequence : running) {
    ForwardSlice slice;
    slice.sequence = sequence->id;
    slice.start_position = sequence->cached;
    slice.tokens = std::span<const TokenId>(sequence->tokens).subspan(
        static_cast<size_t>(sequence->cached));
    if (sequence->cached == 0) prefilled += slice.tokens.size();
    slices.push_back(slice);
  }
  std::vector<float> logits;
  base::Status status = backend->Forward(slices, &logits);
  if (!status.ok()) {
    for (auto& sequence : running) Finish(*sequence, FinishReason::kError, "", kNoToken, status);
    running.clear();
    return;
  }
  prompt_tokens += prefilled;
  size_t vocab = static_cast<size_t>(backend->shape().vocab_size);
  for (size_t i = 0; i < running.size(); ++i) {
    Sequence& sequence = *running[i];
    sequence.cached += static_cast<int32_t>(slices[i].tokens.size());
    std::span<const float> row(logits.data() + i * vocab, vocab);
    TokenId token = sequence.sampler.Sample(row, sequence.tokens);
    sequence.tokens.push_back(token);
    ++sequence.generated;
    ++generated_tokens;  // counted before the event, so a caller who saw it sees the count
    EmitToken(sequence, token);
  }
  RecordRate(running.size());
  std::erase_if(running, [](const std::unique_ptr<Sequence>& sequence) {
    return sequence->finished;
  });
}

void Engine::State::EmitToken(Sequence& sequence, TokenId token) {
  bool at_end = sequence.request.stop_at_eos && end_tokens.count(token) != 0;
  std::string text;
  bool stopped = false;
  if (!at_end) {
    StopStringMatcher::Output output = sequence.stops.Add(sequence.detokenizer.Add(token));
    text = std::move(output.text);
    stopped = output.stopped;
  }
  if (at_end || stopped) {
    if (!stopped) text += sequence.stops.Add(sequence.detokenizer.Flush()).text;
    Finish(sequence, FinishReason::kStop, std::move(text), token);
    return;
  }
  if (sequence.generated >= sequence.request.max_tokens) {
    StopStringMatcher::Output rest = sequence.stops.Add(sequence.detokenizer.Flush());
    text += rest.text;
    if (!rest.stopped) text += sequence.stops.Flush();
    Finish(sequence, rest.stopped ? FinishReason::kStop : FinishReason::kLength, std::move(text),
           token);
    return;
  }
  GenerationEvent event;
  event.text = std::move(text);
  event.token = token;
  event.prompt_tokens = sequence.prompt_tokens();
  event.completion_tokens = sequence.generated;
  sequence.callback(event);
}

void Engine::State::Finish(Sequence& sequence, FinishReason reason, std::string text,
                           TokenId token, base::Status error) {
  backend->RemoveSequence(sequence.id);
  if (sequence.admitted) --running_count;  // before the event, as above
  GenerationEvent event;
  event.text = std::move(text);
  event.token = token;
  event.finished = true;
  event.reason = reason;
  event.error = std::move(error);
  event.prompt_tokens = sequence.prompt_tokens();
  event.completion_tokens = sequence.generated;
  sequence.finished = true;
  ++requests_finished;
  sequence.callback(event);
}

void Engine::State::RecordRate(uint64_t tokens) {
  Clock::time_point now = Clock::now();
  std::lock_guard lock(rate_mutex);
  rate_samples.emplace_back(now, tokens);
  rate_tokens += tokens;
  DropOldRateSamples(now);
}

double Engine::State::TokensPerSecond() const {
  std::lock_guard lock(rate_mutex);
  DropOldRateSamples(Clock::now());
  return static_cast<double>(rate_tokens) /
         std::chrono::duration<double>(options.rate_window).count();
}

void Engine::State::DropOldRateSamples(Clock::time_point now) const {
  while (!rate_samples.empty() && now - rate_samples.front().first >= options.rate_window) {
    rate_tokens -= rate_samples.front().second;
    rate_samples.pop_front();
  }
}

Engine::Engine(std::unique_ptr<State> state) : state_(std::move(state)) {}

base::Result<std::unique_ptr<Engine>> Engine::Create(std::unique_ptr<ModelBackend> backend,
                                                     std::shared_ptr<const Tokenizer> tokenizer,
                                                     EngineOptions options) {
  if (options.max_running < 1 || options.max_queued < 0 || options.rate_window.count() <= 0) {
    return base::InvalidArgument(
        "engine: max_running must be >= 1, max_queued >= 0 and rate_window positive");
  }
  if (tokenizer->vocab_size() > backend->shape().vocab_size) {
    return base::InvalidArgument("engine: the tokenizer has " +
                                 std::to_string(tokenizer->vocab_size()) +
                                 " tokens but the model's output has only " +
                                 std::to_string(backend->shape().vocab_size));
  }
  auto state = std::make_unique<State>();
  state->backend = std::move(backend);
  state->tokenizer = std::move(tokenizer);
  state->options = options;
  state->end_tokens = EndTokens(*state->tokenizer);
  State* raw = state.get();
  state->thread = std::thread([raw] { raw->Run(); });
  return std::unique_ptr<Engine>(new Engine(std::move(state)));
}

Engine::~Engine() {
  {
    std::lock_guard lock(state_->mutex);
    state_->stopping = true;
  }
  state_->wake.notify_all();
  state_->thread.join();
}

base::Result<Engine::RequestId> Engine::Submit(GenerationRequest request, EventCallback callback) {
  const ModelShape& shape = state_->backend->shape();
  if (!callback) return base::InvalidArgument("a request needs a callback for its events");
  if (request.prompt.empty()) return base::InvalidArgument("the prompt has no tokens");
  if (request.max_tokens < 1) return base::InvalidArgument("max_tokens must be at least 1");
  SC_RETURN_IF_ERROR(request.sampling.Validate());
  for (TokenId token : request.prompt) {
    if (token < 0 || token >= shape.vocab_size) {
      return base::InvalidArgument("prompt token " + std::to_string(token) +
                                   " is outside the vocabulary (0.." +
                                   std::to_string(shape.vocab_size - 1) + ")");
    }
  }
  int64_t needed = static_cast<int64_t>(request.prompt.size()) + request.max_tokens;
  if (needed > shape.context_length) {
    return base::InvalidArgument("the prompt (" + std::to_string(request.prompt.size()) +
                                 " tokens) plus max_tokens (" +
                                 std::to_string(request.max_tokens) + ") exceeds the model's " +
                                 std::to_string(shape.context_length) + "-token context");
  }
  size_t kv_bytes = static_cast<size_t>(needed) * shape.kv_bytes_per_token;
  if (kv_bytes > state_->backend->kv_bytes_budget()) {
    return base::InvalidArgument(
        "the request needs " + std::to_string(kv_bytes >> 20) + " MiB of KV cache (" +
        std::to_string(needed) + " tokens), more than the whole budget of " +
        std::to_string(state_->backend->kv_bytes_budget() >> 20) +
        " MiB; lower max_tokens or raise the KV cache budget");
  }
  RequestId id;
  {
    std::lock_guard lock(state_->mutex);
    if (state_->stopping) return base::Unavailable("the engine is shutting down");
    // max_queued bounds the requests that must wait: one that a free batch slot takes at
    // once is never refused (with max_queued 0, max_running requests still run). Running
    // and waiting are counted together, under the lock that moves requests between them.
    const int32_t waiting = static_cast<int32_t>(state_->queued.size());
    const int32_t running = state_->running_count.load();
    const EngineOptions& options = state_->options;
    if (running + waiting >= options.max_running + options.max_queued) {
      return base::ResourceExhausted(
          "the engine is full (" + std::to_string(running) + " requests running, " +
          std::to_string(waiting) + " waiting; at most " + std::to_string(options.max_queued) +
          " may wait for a batch slot); try again shortly");
    }
    id = state_->next_id++;
    state_->queued.push_back(std::make_unique<Sequence>(id, std::move(request),
                                                        std::move(callback), *state_->tokenizer));
  }
  state_->wake.notify_all();
  return id;
}

void Engine::Cancel(RequestId id) { Cancel(std::span<const RequestId>(&id, 1)); }

void Engine::Cancel(std::span<const RequestId> ids) {
  {
    std::lock_guard lock(state_->mutex);
    state_->cancel_requests.insert(ids.begin(), ids.end());
  }
  state_->wake.notify_all();
}

EngineStats Engine::Stats() const {
  EngineStats stats;
  {
    std::lock_guard lock(state_->mutex);
    stats.queued = static_cast<int32_t>(state_->queued.size());
  }
  stats.running = state_->running_count.load();
  stats.kv_bytes_in_use = state_->backend->kv_bytes_in_use();
  stats.kv_bytes_budget = state_->backend->kv_bytes_budget();
  stats.requests_finished = state_->requests_finished.load();
  stats.prompt_tokens = state_->prompt_tokens.load();
  stats.generated_tokens = state_->generated_tokens.load();
  stats.tokens_per_second = state_->TokensPerSecond();
  return stats;
}

const Tokenizer& Engine::tokenizer() const { return *state_->tokenizer; }
const ModelShape& Engine::shape() const { return state_->backend->shape(); }

}  // namespace supercluster::engine
