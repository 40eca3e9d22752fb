// The completion request of the worker's APIs (docs/data-plane.md): the OpenAI-shaped JSON
// body of POST /v1/completions and /v1/chat/completions, and the plaintext inside a sealed
// request. The worker service parses every request body with ParseCompletionRequest, then
// turns it into the engine's GenerationRequest with ToGenerationRequest.
//
// Defaults follow OpenAI's API: temperature 1, top_p 1, no top_k / min_p / penalty, a
// random seed when none is given (so two identical requests may differ; give a seed, or
// temperature 0, for a repeatable answer). Unknown fields are ignored, as OpenAI clients
// send fields this worker has no use for (user, metadata, ...); a known field with a value
// this worker cannot honour (n > 1, a wrong type, out of range) is an error naming it, and
// so is an OpenAI field that would change the answer and is not implemented (logprobs,
// echo, suffix, best_of, logit_bias, presence_penalty, frequency_penalty, response_format,
// tools, ...) unless it is null or the value that changes nothing.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "engine/chat_template.h"
#include "engine/engine.h"
#include "engine/tokenizer.h"

namespace supercluster::worker {

// Which body shape an endpoint takes.
enum class CompletionApi {
  kCompletions,  // POST /v1/completions: "prompt"
  kChat,         // POST /v1/chat/completions: "messages"
  kEither,       // the sealed API: exactly one of "prompt" and "messages"
};

// Limits on one request (the worker.* configuration keys).
struct CompletionLimits {
  size_t max_prompt_bytes = 256 * 1024;  // prompt, or the sum of message contents
  int32_t max_tokens = 4096;             // the largest max_tokens a request may ask for
  int32_t default_max_tokens = 256;      // when the request gives none
  size_t max_stop_strings = 4;
  size_t max_stop_bytes = 256;
};

struct CompletionRequest {
  std::string model;
  bool chat = false;                          // messages (true) or prompt (false)
  std::string prompt;                         // when !chat
  std::vector<engine::ChatMessage> messages;  // when chat
  int32_t max_tokens = 0;
  bool max_tokens_given = false;  // false: max_tokens is the default (limits.default_max_tokens)
  engine::SamplingParams sampling;
  std::vector<std::string> stop;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage: a streamed answer's usage
};

// Parses and validates `body`. Every error is kInvalidArgument with a message naming the
// field ("max_tokens must be an integer from 1 to 4096"), fit to send back as a 400.
// Never throws, whatever the bytes.
base::Result<CompletionRequest> ParseCompletionRequest(std::string_view body, CompletionApi api,
                                                       const CompletionLimits& limits);

// The engine request: the prompt encoded (chat messages rendered in the model's chat format
// first), the sampling settings and stops. kInvalidArgument for messages the chat format
// cannot render (an unknown role, a Llama 2 conversation out of order) or a prompt that
// encodes to no tokens.
// A request that did not set max_tokens generates at most what `context_length` (the
// model's) leaves after the prompt, up to its default; one whose prompt leaves no room at
// all is refused here, naming the prompt (the engine refuses a given max_tokens that does
// not fit).
base::Result<engine::GenerationRequest> ToGenerationRequest(const CompletionRequest& request,
                                                            const engine::Tokenizer& tokenizer,
                                                            int64_t context_length);

}  // namespace supercluster::worker
