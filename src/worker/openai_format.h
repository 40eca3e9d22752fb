// The JSON the worker answers with: OpenAI's completion, chat.completion and their stream
// chunks (https://platform.openai.com/docs/api-reference), the model list, error bodies,
// and the plaintext chunks of a sealed answer (docs/data-plane.md). The worker service
// calls these; each returns one compact JSON text. Text that is not valid UTF-8 (a model
// may end a chunk mid-character) is written with U+FFFD in its place, never as an error.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace supercluster::worker {

struct Usage {
  int32_t prompt_tokens = 0;
  int32_t completion_tokens = 0;
};

// What one answer is, for every chunk of it.
struct AnswerIdentity {
  std::string id;       // "cmpl-..." or "chatcmpl-..."
  int64_t created = 0;  // Unix seconds
  std::string model;
  bool chat = false;
  // The request's stream_options.include_usage: every chunk carries "usage": null and the
  // usage comes in a chunk of its own at the end (UsageChunkJson), as OpenAI streams it.
  bool stream_usage = false;
};

// A whole (non-streamed) answer: "text_completion" or "chat.completion", with usage.
std::string CompletionJson(const AnswerIdentity& answer, std::string_view text,
                           std::string_view finish_reason, const Usage& usage);

// One streamed chunk ("text_completion" or "chat.completion.chunk"). `first` puts
// role "assistant" in a chat delta; finish_reason is null until the last chunk of text.
std::string CompletionChunkJson(const AnswerIdentity& answer, std::string_view text, bool first,
                                std::optional<std::string_view> finish_reason);
// The chunk after the last one when the client asked for usage: no choices, the usage.
std::string UsageChunkJson(const AnswerIdentity& answer, const Usage& usage);

// GET /v1/models: {"object":"list","data":[{"id":model,"object":"model",...}]}.
std::string ModelListJson(std::string_view model, int64_t created);

// Sealed answer plaintext: {"text":...} while generating; the final chunk adds
// finish_reason and usage, and "error" when finish_reason is "error".
std::string SealedChunkJson(std::string_view text);
std::string SealedFinalChunkJson(std::string_view text, std::string_view finish_reason,
                                 const Usage& usage, std::string_view error = "");

}  // namespace supercluster::worker
