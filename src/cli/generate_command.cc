// `supercluster generate --model FILE --prompt TEXT`: runs one request through the engine
// and streams the text to the terminal as it is generated, then prints the speed (prompt
// and generated tokens per second) on stderr. With --chat the prompt is one user message in
// the model's chat format.
#include <chrono>
#include <condition_variable>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>

#include "base/flags.h"
#include "base/service_flags.h"
#include "cli/command.h"
#include "cli/commands.h"
#include "engine/chat_template.h"
#include "engine/load_engine.h"

namespace supercluster::cli {

int RunGenerate(const std::vector<std::string>& args) {
  base::ServiceFlags service;
  std::string model_path, prompt;
  int64_t max_tokens = 128, top_k = 0, seed = 0, threads = -1;
  double temperature = 0, top_p = 1, min_p = 0, repetition_penalty = 1;
  bool chat = false, json = false;
  std::vector<std::string> stops;
  base::FlagSet flags("supercluster generate --model FILE --prompt TEXT [flags]");
  service.Register(flags);
  flags.AddString("model", &model_path, "a GGUF file, or a safetensors file or directory");
  flags.AddString("prompt", &prompt, "the text to continue (or, with --chat, the user message)");
  flags.AddInt("max-tokens", &max_tokens, "generate at most this many tokens");
  flags.AddDouble("temperature", &temperature, "0 is greedy; higher is more random");
  flags.AddInt("top-k", &top_k, "sample among the k most likely tokens (0: all)");
  flags.AddDouble("top-p", &top_p, "sample among the most likely tokens holding this mass");
  flags.AddDouble("min-p", &min_p, "drop tokens less likely than this times the best one");
  flags.AddDouble("repetition-penalty", &repetition_penalty, "> 1 discourages repeats");
  flags.AddInt("seed", &seed, "the sampling seed (same seed, same output)");
  flags.AddRepeated("stop", &stops, "stop before this text (repeat for several)");
  flags.AddInt("threads", &threads, "CPU threads (default: engine.threads)");
  flags.AddBool("chat", &chat, "wrap the prompt in the model's chat format");
  flags.AddBool("json", &json, "print one JSON object with the text and the counts");
  if (base::Status parsed = flags.Parse(args); !parsed.ok()) {
    std::cerr << "supercluster generate: " << parsed.message() << "\n";
    return kExitUsage;
  }
  if (flags.help_requested()) {
    std::cout << flags.Help();
    return kExitOk;
  }
  if (model_path.empty() || prompt.empty() || max_tokens < 1 || top_k < 0 || seed < 0) {
    std::cerr << "supercluster generate: need --model and --prompt, and --max-tokens >= 1\n";
    return kExitUsage;
  }
  auto config = service.LoadConfig("generate");
  if (!config.ok()) {
    std::cerr << "supercluster generate: " << config.status().message() << "\n";
    return kExitFailure;
  }
  engine::EngineLoadOptions options = engine::EngineLoadOptions::FromConfig(*config, model_path);
  if (threads >= 0) options.backend.threads = static_cast<int>(threads);
  options.engine.max_running = 1;

  auto started = std::chrono::steady_clock::now();
  auto engine = engine::LoadEngine(options);
  if (!engine.ok()) {
    std::cerr << "supercluster generate: " << engine.status().message() << "\n";
    return kExitFailure;
  }
  double load_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  const engine::Tokenizer& tokenizer = (*engine)->tokenizer();

  engine::GenerationRequest request;
  if (chat) {
    auto encoded = engine::EncodeChat(tokenizer, {{"user", prompt}},
                                      /*add_generation_prompt=*/true);
    if (!encoded.ok()) {
      std::cerr << "supercluster generate: " << encoded.status().message() << "\n";
      return kExitFailure;
    }
    request.prompt = std::move(*encoded);
  } else {
    engine::EncodeOptions encode;
    encode.add_bos = tokenizer.vocab().add_bos;
    request.prompt = tokenizer.Encode(prompt, encode);
  }
  request.max_tokens = static_cast<int32_t>(max_tokens);
  request.sampling.temperature = static_cast<float>(temperature);
  request.sampling.top_k = static_cast<int32_t>(top_k);
  request.sampling.top_p = static_cast<float>(top_p);
  request.sampling.min_p = static_cast<float>(min_p);
  request.sampling.repetition_penalty = static_cast<float>(repetition_penalty);
  request.sampling.seed = static_cast<uint64_t>(seed);
  request.stop = stops;

  std::mutex mutex;
  std::condition_variable done;
  std::optional<engine::GenerationEvent> last;
  std::string text;
  std::chrono::steady_clock::time_point first_token;
  auto generation_start = std::chrono::steady_clock::now();
  auto submitted = (*engine)->Submit(std::move(request), [&](const engine::GenerationEvent& event) {
    std::lock_guard lock(mutex);
    if (event.completion_tokens == 1) first_token = std::chrono::steady_clock::now();
    if (!json) {
      std::cout << event.text << std::flush;
    } else {
      text += event.text;
    }
    if (event.finished) {
      last = event;
      done.notify_all();
    }
  });
  if (!submitted.ok()) {
    std::cerr << "supercluster generate: " << submitted.status().message() << "\n";
    return kExitFailure;
  }
  std::unique_lock lock(mutex);
  done.wait(lock, [&] { return last.has_value(); });
  auto finished = std::chrono::steady_clock::now();
  if (last->reason == engine::FinishReason::kError) {
    std::cerr << "\nsupercluster generate: " << last->error.message() << "\n";
    return kExitFailure;
  }
  double prefill_seconds = std::chrono::duration<double>(first_token - generation_start).count();
  double decode_seconds = std::chrono::duration<double>(finished - first_token).count();
  double decode_rate = last->completion_tokens > 1 && decode_seconds > 0
                           ? (last->completion_tokens - 1) / decode_seconds
                           : 0;
  double prefill_rate = prefill_seconds > 0 ? last->prompt_tokens / prefill_seconds : 0;
  if (json) {
    nlohmann::json output = {{"text", text},
                             {"prompt_tokens", last->prompt_tokens},
                             {"completion_tokens", last->completion_tokens},
                             {"finish_reason", engine::FinishReasonName(last->reason)},
                             {"prompt_tokens_per_second", prefill_rate},
                             {"tokens_per_second", decode_rate}};
    std::cout << output.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    return kExitOk;
  }
  std::cerr << "\n[" << last->prompt_tokens << " prompt tokens at " << static_cast<int>(prefill_rate)
            << " tokens/s, " << last->completion_tokens << " generated at "
            << static_cast<int>(decode_rate) << " tokens/s; finished: "
            << engine::FinishReasonName(last->reason) << "; model loaded in "
            << static_cast<int>(load_seconds * 1000) << " ms]\n";
  return kExitOk;
}

}  // namespace supercluster::cli
