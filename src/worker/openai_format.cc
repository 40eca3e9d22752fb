#include "worker/openai_format.h"

#include <nlohmann/json.hpp>

namespace supercluster::worker {
namespace {

using nlohmann::json;

std::string Dump(const json& value) {
  return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

json UsageObject(const Usage& usage) {
  return {{"prompt_tokens", usage.prompt_tokens},
          {"completion_tokens", usage.completion_tokens},
          {"total_tokens", usage.prompt_tokens + usage.completion_tokens}};
}

json Text(std::string_view text) { return json(std::string(text)); }

json Header(const AnswerIdentity& answer, const char* object) {
  return {
      {"id", answer.id}, {"object", object}, {"created", answer.created}, {"model", answer.model}};
}

json ChunkHeader(const AnswerIdentity& answer) {
  return Header(answer, answer.chat ? "chat.completion.chunk" : "text_completion");
}

}  // namespace

std::string CompletionJson(const AnswerIdentity& answer, std::string_view text,
                           std::string_view finish_reason, const Usage& usage) {
  json body = Header(answer, answer.chat ? "chat.completion" : "text_completion");
  json choice = {{"index", 0}, {"finish_reason", Text(finish_reason)}};
  if (answer.chat) {
    choice["message"] = {{"role", "assistant"}, {"content", Text(text)}};
  } else {
    choice["text"] = Text(text);
    choice["logprobs"] = nullptr;
  }
  body["choices"] = json::array({choice});
  body["usage"] = UsageObject(usage);
  return Dump(body);
}

std::string CompletionChunkJson(const AnswerIdentity& answer, std::string_view text, bool first,
                                std::optional<std::string_view> finish_reason) {
  json body = ChunkHeader(answer);
  json choice = {{"index", 0}};
  if (answer.chat) {
    json delta = json::object();
    if (first) delta["role"] = "assistant";
    if (!text.empty() || !finish_reason) delta["content"] = Text(text);
    choice["delta"] = delta;
  } else {
    choice["text"] = Text(text);
    choice["logprobs"] = nullptr;
  }
  choice["finish_reason"] = finish_reason ? Text(*finish_reason) : json(nullptr);
  body["choices"] = json::array({choice});
  if (answer.stream_usage) body["usage"] = nullptr;
  return Dump(body);
}

std::string UsageChunkJson(const AnswerIdentity& answer, const Usage& usage) {
  json body = ChunkHeader(answer);
  body["choices"] = json::array();
  body["usage"] = UsageObject(usage);
  return Dump(body);
}

std::string ModelListJson(std::string_view model, int64_t created) {
  json entry = {
      {"id", Text(model)}, {"object", "model"}, {"created", created}, {"owned_by", "supercluster"}};
  return Dump(json{{"object", "list"}, {"data", json::array({entry})}});
}


std::string SealedChunkJson(std::string_view text) { return Dump(json{{"text", Text(text)}}); }

std::string SealedFinalChunkJson(std::string_view text, std::string_view finish_reason,
                                 const Usage& usage, std::string_view error) {
  json body = {
      {"text", Text(text)},
      {"finish_reason", Text(finish_reason)},
      {"usage",
       {{"prompt_tokens", usage.prompt_tokens}, {"completion_tokens", usage.completion_tokens}}}};
  if (!error.empty()) body["error"] = Text(error);
  return Dump(body);
}

}  // namespace supercluster::worker
