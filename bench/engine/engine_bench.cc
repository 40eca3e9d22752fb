// engine_bench: the inference engine's prefill and decode speed and its memory on one model
// file; bench/engine/run.sh runs it alternately with llama_anchor.mjs (llama.cpp on the same
// file, same threads) and prints the ratios. Both print the same JSON fields:
//   prefill_tokens_per_second        one sequence, the whole prompt in one forward step
//                                    (CpuBackend::Forward, logits of the last token)
//   decode_batch1_tokens_per_second  one request through the Engine, greedy, tokens/s over
//                                    the steps after its first token
//   decode_batchN_tokens_per_second  N requests submitted at once (each its own prompt);
//                                    generated tokens/s from the moment every request has
//                                    its first token until all are done (continuous batch)
//   backend_decode_batch1_tokens_per_second  the same decode as single-token
//                                    CpuBackend::Forward calls, without the Engine (engine
//                                    side only: a diagnostic)
//   memory                           VmHWM, RssAnon, RssFile of this process, sampled while
//                                    the N requests run, and the KV cache bytes written by
//                                    then: what the engine holds beyond the mapped weights
//                                    and the KV cache is RssAnon - KV.
//
// Usage: engine_bench --model FILE --threads N [--prompt-tokens 128] [--decode-tokens 64]
//                     [--batch 8]
#include <sys/stat.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/cpu_backend.h"
#include "engine/engine.h"
#include "engine/kernels/kernels.h"
#include "engine/model_file.h"
#include "engine/model_tokenizer.h"

namespace {

namespace engine = supercluster::engine;
using Clock = std::chrono::steady_clock;

struct Options {
  std::string model;
  int threads = 0;
  int prompt_tokens = 128;
  int decode_tokens = 64;
  int batch = 8;
};

[[noreturn]] void Fail(const std::string& message) {
  std::cerr << "engine_bench: " << message << "\n";
  std::exit(1);
}

Options ParseOptions(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; i += 2) {
    if (i + 1 >= argc) Fail(std::string(argv[i]) + " needs a value");
    std::string flag = argv[i];
    const char* value = argv[i + 1];
    if (flag == "--model") {
      options.model = value;
    } else if (flag == "--threads") {
      options.threads = std::atoi(value);
    } else if (flag == "--prompt-tokens") {
      options.prompt_tokens = std::atoi(value);
    } else if (flag == "--decode-tokens") {
      options.decode_tokens = std::atoi(value);
    } else if (flag == "--batch") {
      options.batch = std::atoi(value);
    } else {
      Fail("unknown argument " + flag +
           " (usage: engine_bench --model FILE --threads N [--prompt-tokens N] "
           "[--decode-tokens N] [--batch N])");
    }
  }
  if (options.model.empty()) Fail("--model is required");
  if (options.threads < 1) Fail("--threads must be >= 1");
  if (options.prompt_tokens < 2 || options.decode_tokens < 2 || options.batch < 1) {
    Fail("--prompt-tokens and --decode-tokens must be >= 2, --batch >= 1");
  }
  return options;
}

// Prompt `index` of `length` tokens: BOS (1), then ids spread over the vocabulary without
// special or byte tokens (ids >= 259). Must match promptTokens in llama_anchor.mjs.
std::vector<engine::TokenId> PromptTokens(int index, int length, int vocab_size) {
  std::vector<engine::TokenId> tokens{1};
  for (int i = 1; i < length; ++i) {
    int64_t id = 259 + (static_cast<int64_t>(i) * 7919 + static_cast<int64_t>(index) * 104729) %
                           (vocab_size - 259);
    tokens.push_back(static_cast<engine::TokenId>(id));
  }
  return tokens;
}

// A field of /proc/self/status ("VmHWM", "RssAnon", ...) in bytes; 0 if absent.
uint64_t StatusBytes(const char* name) {
  std::ifstream status("/proc/self/status");
  std::string line;
  const size_t name_length = std::strlen(name);
  while (std::getline(status, line)) {
    if (line.compare(0, name_length, name) == 0 && line.size() > name_length &&
        line[name_length] == ':') {
      return std::strtoull(line.c_str() + name_length + 1, nullptr, 10) * 1024;
    }
  }
  return 0;
}

engine::TokenId Argmax(const std::vector<float>& logits) {
  size_t best = 0;
  for (size_t i = 1; i < logits.size(); ++i) {
    if (logits[i] > logits[best]) best = i;
  }
  return static_cast<engine::TokenId>(best);
}

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

struct MemorySample {
  uint64_t rss_anon = 0, rss_file = 0, rss = 0;
  uint64_t kv_written = 0;  // KV cache bytes holding positions written so far
};

struct DecodeResult {
  double seconds = 0;
  int64_t tokens = 0;
  MemorySample memory;
};

// Submits `requests` requests at once and waits for all. Times the stretch from the moment
// every request has its first token (all prefills done) to the last token, and counts the
// tokens generated in it. Samples memory once, at the first request's last token, when the
// KV caches are at their fullest.
DecodeResult DecodeTogether(engine::Engine& engine, const Options& options, int requests,
                            size_t kv_bytes_per_token) {
  std::mutex mutex;
  std::condition_variable done;
  std::vector<int> produced(static_cast<size_t>(requests), 0);
  int started = 0, finished = 0;
  int64_t produced_at_start = 0;
  Clock::time_point start, end;
  bool sampled = false;
  DecodeResult result;
  std::string error;

  for (int r = 0; r < requests; ++r) {
    engine::GenerationRequest request;
    request.prompt = PromptTokens(r, options.prompt_tokens, engine.shape().vocab_size);
    request.max_tokens = options.decode_tokens;
    request.stop_at_eos = false;
    request.sampling.temperature = 0;  // greedy
    auto callback = [&, r](const engine::GenerationEvent& event) {
      std::lock_guard lock(mutex);
      if (event.token != engine::kNoToken) {
        if (++produced[r] == 1 && ++started == requests) {
          start = Clock::now();
          for (int count : produced) produced_at_start += count;
        }
      }
      if (!event.finished) return;
      if (event.reason == engine::FinishReason::kError) error = event.error.ToString();
      if (!sampled) {
        sampled = true;
        result.memory.rss_anon = StatusBytes("RssAnon");
        result.memory.rss_file = StatusBytes("RssFile");
        result.memory.rss = StatusBytes("VmRSS");
        for (int count : produced) {
          result.memory.kv_written +=
              static_cast<uint64_t>(options.prompt_tokens + count) * kv_bytes_per_token;
        }
      }
      if (++finished == requests) {
        end = Clock::now();
        done.notify_all();
      }
    };
    auto submitted = engine.Submit(std::move(request), callback);
    if (!submitted.ok()) Fail("submit: " + submitted.status().ToString());
  }
  std::unique_lock lock(mutex);
  done.wait(lock, [&] { return finished == requests; });
  if (!error.empty()) Fail("generation failed: " + error);
  int64_t total = 0;
  for (int count : produced) total += count;
  result.tokens = total - produced_at_start;
  result.seconds = std::chrono::duration<double>(end - start).count();
  return result;
}

}  // namespace

int main(int argc, char** argv) {
  const Options options = ParseOptions(argc, argv);
  struct stat file_stat{};
  if (stat(options.model.c_str(), &file_stat) != 0) Fail("cannot stat " + options.model);

  auto model = engine::ModelFile::Open(options.model);
  if (!model.ok()) Fail(model.status().ToString());
  auto tokenizer = engine::LoadTokenizer(**model);
  if (!tokenizer.ok()) Fail(tokenizer.status().ToString());
  // Room for every request's prompt and answer, plus the warm-up and prefill sequences.
  const int32_t capacity = options.prompt_tokens + options.decode_tokens;
  engine::CpuBackendOptions backend_options;
  backend_options.threads = options.threads;
  // No budget to speak of: the benchmark's sequences are few and short, and KV memory is
  // only touched (and counted in RSS) where positions are written.
  backend_options.kv_cache_bytes = size_t{1} << 40;
  auto backend = engine::CpuBackend::Create(std::move(*model), backend_options);
  if (!backend.ok()) Fail(backend.status().ToString());
  engine::CpuBackend& cpu = **backend;
  const engine::ModelShape shape = cpu.shape();
  if (capacity > shape.context_length) Fail("prompt + decode tokens exceed the model's context");

  // Warm-up: page the weights in and size the per-step buffers for the prompt.
  std::vector<float> logits;
  {
    std::vector<engine::TokenId> prompt = PromptTokens(0, options.prompt_tokens, shape.vocab_size);
    auto status = cpu.AddSequence(1, capacity);
    if (!status.ok()) Fail(status.ToString());
    engine::ForwardSlice slice{1, std::span<const engine::TokenId>(prompt.data(), 16), 0, false};
    status = cpu.Forward(std::span<const engine::ForwardSlice>(&slice, 1), &logits);
    if (!status.ok()) Fail(status.ToString());
    cpu.RemoveSequence(1);
  }
  // Prefill: the whole prompt in one step, as llama.cpp evaluates it in one batch.
  double prefill_seconds = 0;
  double backend_decode_seconds = 0;
  {
    std::vector<engine::TokenId> prompt = PromptTokens(0, options.prompt_tokens, shape.vocab_size);
    auto status = cpu.AddSequence(2, capacity);
    if (!status.ok()) Fail(status.ToString());
    engine::ForwardSlice slice{2, prompt, 0, false};
    const Clock::time_point start = Clock::now();
    status = cpu.Forward(std::span<const engine::ForwardSlice>(&slice, 1), &logits);
    prefill_seconds = SecondsSince(start);
    if (!status.ok()) Fail(status.ToString());
    // The same decode straight on the backend (greedy by argmax): what the Engine's
    // scheduling, sampling and callbacks add shows as the difference from decode_batch1.
    engine::TokenId token = Argmax(logits);
    const Clock::time_point decode_start = Clock::now();
    for (int i = 1; i < options.decode_tokens; ++i) {
      engine::ForwardSlice step{2, std::span<const engine::TokenId>(&token, 1),
                                options.prompt_tokens + i - 1, false};
      status = cpu.Forward(std::span<const engine::ForwardSlice>(&step, 1), &logits);
      if (!status.ok()) Fail(status.ToString());
      token = Argmax(logits);
    }
    backend_decode_seconds = SecondsSince(decode_start);
    cpu.RemoveSequence(2);
  }

  engine::EngineOptions engine_options;
  engine_options.max_running = options.batch;
  auto engine = engine::Engine::Create(
      std::move(*backend), std::shared_ptr<const engine::Tokenizer>(std::move(*tokenizer)),
      engine_options);
  if (!engine.ok()) Fail(engine.status().ToString());
  DecodeResult single = DecodeTogether(**engine, options, 1, shape.kv_bytes_per_token);
  DecodeResult batched = DecodeTogether(**engine, options, options.batch, shape.kv_bytes_per_token);
  const uint64_t peak_rss = StatusBytes("VmHWM");

  const uint64_t overhead =
      batched.memory.rss_anon > batched.memory.kv_written
          ? batched.memory.rss_anon - batched.memory.kv_written
          : 0;
  nlohmann::json result = {
      {"implementation", "supercluster engine"},
      {"threads", options.threads},
      {"kernel_path", engine::kernels::KernelPathName(engine::kernels::DefaultKernels().path())},
      {"prompt_tokens", options.prompt_tokens},
      {"decode_tokens", options.decode_tokens},
      {"batch", options.batch},
      {"prefill_tokens_per_second", options.prompt_tokens / prefill_seconds},
      {"decode_batch1_tokens_per_second", static_cast<double>(single.tokens) / single.seconds},
      {"backend_decode_batch1_tokens_per_second",
       (options.decode_tokens - 1) / backend_decode_seconds},
      {"decode_batchN_tokens_per_second", static_cast<double>(batched.tokens) / batched.seconds},
      {"memory",
       {{"peak_rss_bytes", peak_rss},
        {"rss_bytes", batched.memory.rss},
        {"rss_anon_bytes", batched.memory.rss_anon},
        {"rss_file_bytes", batched.memory.rss_file},
        {"kv_cache_written_bytes", batched.memory.kv_written},
        {"overhead_bytes", overhead},
        {"model_file_bytes", static_cast<uint64_t>(file_stat.st_size)},
        {"overhead_fraction_of_model",
         static_cast<double>(overhead) / static_cast<double>(file_stat.st_size)}}},
  };
  std::cout << result.dump() << "\n";
  return 0;
}
