#include "worker/completion_request.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <random>

namespace supercluster::worker {
namespace {

using nlohmann::json;

base::Status Bad(const std::string& message) { return base::InvalidArgument(message); }

// Reads an optional number field into `*out`; absent or null leaves it.
base::Status ReadNumber(const json& body, const char* field, double low, double high,
                        const char* range_text, float* out) {
  auto found = body.find(field);
  if (found == body.end() || found->is_null()) return base::Status::Ok();
  if (!found->is_number()) return Bad(std::string(field) + " must be a number");
  double value = found->get<double>();
  if (!std::isfinite(value) || value < low || value > high) {
    return Bad(std::string(field) + " must be " + range_text);
  }
  *out = static_cast<float>(value);
  return base::Status::Ok();
}

// Whether `field` is present and not null (null means "the default", as OpenAI takes it).
bool IsGiven(const json& body, const char* field) {
  auto found = body.find(field);
  return found != body.end() && !found->is_null();
}

base::Status ReadInteger(const json& body, const char* field, int64_t low, int64_t high,
                         int64_t* out) {
  auto found = body.find(field);
  if (found == body.end() || found->is_null()) return base::Status::Ok();
  std::string range = std::to_string(low) + " to " + std::to_string(high);
  if (!found->is_number_integer()) {
    return Bad(std::string(field) + " must be an integer from " + range);
  }
  if (found->is_number_unsigned() && found->get<uint64_t>() > static_cast<uint64_t>(high)) {
    return Bad(std::string(field) + " must be an integer from " + range);
  }
  int64_t value = found->get<int64_t>();
  if (value < low || value > high) {
    return Bad(std::string(field) + " must be an integer from " + range);
  }
  *out = value;
  return base::Status::Ok();
}

base::Status ReadStops(const json& body, const CompletionLimits& limits,
                       std::vector<std::string>* stops) {
  auto found = body.find("stop");
  if (found == body.end() || found->is_null()) return base::Status::Ok();
  std::vector<const json*> items;
  if (found->is_string()) {
    items.push_back(&*found);
  } else if (found->is_array()) {
    for (const json& item : *found) items.push_back(&item);
  } else {
    return Bad("stop must be a string or a list of strings");
  }
  if (items.size() > limits.max_stop_strings) {
    return Bad("stop holds " + std::to_string(items.size()) + " strings; at most " +
               std::to_string(limits.max_stop_strings) + " are allowed");
  }
  for (const json* item : items) {
    if (!item->is_string()) return Bad("stop must be a string or a list of strings");
    const std::string& text = item->get_ref<const std::string&>();
    if (text.empty()) return Bad("stop strings must not be empty");
    if (text.size() > limits.max_stop_bytes) {
      return Bad("a stop string is longer than " + std::to_string(limits.max_stop_bytes) +
                 " bytes");
    }
    stops->push_back(text);
  }
  return base::Status::Ok();
}

base::Status ReadMessages(const json& messages, const CompletionLimits& limits,
                          CompletionRequest* request) {
  if (!messages.is_array() || messages.empty()) {
    return Bad("messages must be a non-empty list of {\"role\", \"content\"} objects");
  }
  size_t total = 0;
  for (size_t i = 0; i < messages.size(); ++i) {
    const json& message = messages[i];
    std::string where = "messages[" + std::to_string(i) + "]";
    if (!message.is_object()) return Bad(where + " must be an object");
    auto role = message.find("role");
    if (role == message.end() || !role->is_string()) return Bad(where + ".role must be a string");
    auto content = message.find("content");
    std::string text;
    if (content == message.end() || content->is_null()) {
      text = "";
    } else if (content->is_string()) {
      text = content->get<std::string>();
    } else if (content->is_array()) {
      // OpenAI's content parts: only text parts can be served by a text model.
      for (const json& part : *content) {
        auto type = part.is_object() ? part.find("type") : part.end();
        auto part_text = part.is_object() ? part.find("text") : part.end();
        if (type == part.end() || *type != "text" || part_text == part.end() ||
            !part_text->is_string()) {
          return Bad(where + ".content parts must be {\"type\":\"text\",\"text\":...}");
        }
        text += part_text->get<std::string>();
      }
    } else {
      return Bad(where + ".content must be a string");
    }
    total += text.size();
    if (total > limits.max_prompt_bytes) {
      return Bad("messages are longer than " + std::to_string(limits.max_prompt_bytes) +
                 " bytes in all");
    }
    request->messages.push_back({role->get<std::string>(), std::move(text)});
  }
  return base::Status::Ok();
}

base::Status ReadPrompt(const json& prompt, const CompletionLimits& limits,
                        CompletionRequest* request) {
  const json* text = &prompt;
  // OpenAI also takes a list of prompts (one choice each); one is all this worker serves.
  if (prompt.is_array() && prompt.size() == 1) text = &prompt[0];
  if (!text->is_string()) return Bad("prompt must be a string");
  request->prompt = text->get<std::string>();
  if (request->prompt.empty()) return Bad("prompt must not be empty");
  if (request->prompt.size() > limits.max_prompt_bytes) {
    return Bad("prompt is longer than " + std::to_string(limits.max_prompt_bytes) + " bytes");
  }
  return base::Status::Ok();
}

// OpenAI fields that change the answer, which this worker cannot honour. Each is refused
// (400 naming it) rather than dropped while the client believes it applied, unless absent,
// null or set to the value that changes nothing (what a client may send by default).
struct UnsupportedField {
  const char* name;
  bool (*neutral)(const json& value);
  const char* neutral_text;  // for the message
};

bool IsFalse(const json& value) { return value.is_boolean() && !value.get<bool>(); }
bool IsZero(const json& value) { return value.is_number() && value.get<double>() == 0; }
bool IsOne(const json& value) { return value.is_number_integer() && value.get<int64_t>() == 1; }
bool IsEmpty(const json& value) {
  if (value.is_string()) return value.get_ref<const std::string&>().empty();
  return (value.is_object() || value.is_array()) && value.empty();
}
bool IsNone(const json& value) { return value.is_string() && value.get<std::string>() == "none"; }
bool IsTextFormat(const json& value) {
  auto type = value.is_object() ? value.find("type") : value.end();
  return value.is_object() && type != value.end() && *type == "text";
}

constexpr UnsupportedField kUnsupportedFields[] = {
    {"logprobs", IsFalse, "false"},
    {"top_logprobs", IsZero, "0"},
    {"echo", IsFalse, "false"},
    {"suffix", IsEmpty, "\"\""},
    {"best_of", IsOne, "1"},
    {"logit_bias", IsEmpty, "{}"},
    {"presence_penalty", IsZero, "0"},
    {"frequency_penalty", IsZero, "0"},
    {"response_format", IsTextFormat, "{\"type\":\"text\"}"},
    {"tools", IsEmpty, "[]"},
    {"tool_choice", IsNone, "\"none\""},
    {"functions", IsEmpty, "[]"},
    {"function_call", IsNone, "\"none\""},
};

base::Status RefuseUnsupportedFields(const json& body) {
  for (const UnsupportedField& field : kUnsupportedFields) {
    auto found = body.find(field.name);
    if (found == body.end() || found->is_null() || field.neutral(*found)) continue;
    return Bad(std::string(field.name) + " is not supported by this worker (leave it out, or " +
               "send null or " + field.neutral_text + ")");
  }
  return base::Status::Ok();
}

// The refusal of a prompt that leaves the model no room to generate even one token.
std::string PromptTooLong(int64_t prompt_tokens, int64_t context_length) {
  std::string prompt = "the prompt (" + std::to_string(prompt_tokens) + " tokens) ";
  std::string context = "the model's " + std::to_string(context_length) + "-token context";
  std::string most = "; it may have at most " + std::to_string(context_length - 1) +
                     " tokens, to leave room for an answer";
  if (prompt_tokens > context_length) return prompt + "alone exceeds " + context + most;
  return prompt + "fills " + context + most;
}

// stream_options: {"include_usage": bool}; OpenAI sends a streamed answer's usage only when
// asked, in a chunk of its own. Its other fields are ignored, as unknown fields are.
base::Status ReadStreamOptions(const json& body, CompletionRequest* request) {
  auto options = body.find("stream_options");
  if (options == body.end() || options->is_null()) return base::Status::Ok();
  if (!options->is_object()) return Bad("stream_options must be an object");
  auto include_usage = options->find("include_usage");
  if (include_usage == options->end() || include_usage->is_null()) return base::Status::Ok();
  if (!include_usage->is_boolean()) {
    return Bad("stream_options.include_usage must be true or false");
  }
  request->include_usage = include_usage->get<bool>();
  return base::Status::Ok();
}

uint64_t RandomSeed() {
  static thread_local std::mt19937_64 generator{std::random_device{}()};
  return generator();
}

}  // namespace

base::Result<CompletionRequest> ParseCompletionRequest(std::string_view body, CompletionApi api,
                                                       const CompletionLimits& limits) {
  json parsed = json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) return Bad("the request body is not valid JSON");
  if (!parsed.is_object()) return Bad("the request body must be a JSON object");

  CompletionRequest request;
  auto model = parsed.find("model");
  if (model == parsed.end() || !model->is_string() ||
      model->get_ref<const std::string&>().empty()) {
    return Bad("model must be a non-empty string");
  }
  request.model = model->get<std::string>();

  auto prompt = parsed.find("prompt");
  auto messages = parsed.find("messages");
  bool has_prompt = prompt != parsed.end() && !prompt->is_null();
  bool has_messages = messages != parsed.end() && !messages->is_null();
  switch (api) {
    case CompletionApi::kCompletions:
      if (!has_prompt) return Bad("prompt is required");
      break;
    case CompletionApi::kChat:
      if (!has_messages) return Bad("messages is required");
      break;
    case CompletionApi::kEither:
      if (has_prompt == has_messages) return Bad("give exactly one of prompt and messages");
      break;
  }
  request.chat = api == CompletionApi::kChat || (api == CompletionApi::kEither && has_messages);
  if (request.chat) {
    SC_RETURN_IF_ERROR(ReadMessages(*messages, limits, &request));
  } else {
    SC_RETURN_IF_ERROR(ReadPrompt(*prompt, limits, &request));
  }

  // max_completion_tokens is OpenAI's newer name for max_tokens: it wins when both are given.
  int64_t max_tokens = limits.default_max_tokens;
  SC_RETURN_IF_ERROR(ReadInteger(parsed, "max_tokens", 1, limits.max_tokens, &max_tokens));
  SC_RETURN_IF_ERROR(
      ReadInteger(parsed, "max_completion_tokens", 1, limits.max_tokens, &max_tokens));
  request.max_tokens = static_cast<int32_t>(std::min<int64_t>(max_tokens, limits.max_tokens));
  request.max_tokens_given = IsGiven(parsed, "max_tokens") ||
                             IsGiven(parsed, "max_completion_tokens");

  int64_t n = 1;
  SC_RETURN_IF_ERROR(ReadInteger(parsed, "n", 1, 1, &n));
  SC_RETURN_IF_ERROR(RefuseUnsupportedFields(parsed));

  engine::SamplingParams& sampling = request.sampling;
  sampling.temperature = 1.0f;
  SC_RETURN_IF_ERROR(
      ReadNumber(parsed, "temperature", 0, 100, "a number from 0 to 100", &sampling.temperature));
  SC_RETURN_IF_ERROR(ReadNumber(parsed, "top_p", 0, 1, "a number in (0, 1]", &sampling.top_p));
  if (sampling.top_p <= 0) return Bad("top_p must be a number in (0, 1]");
  SC_RETURN_IF_ERROR(ReadNumber(parsed, "min_p", 0, 1, "a number in [0, 1)", &sampling.min_p));
  if (sampling.min_p >= 1) return Bad("min_p must be a number in [0, 1)");
  SC_RETURN_IF_ERROR(ReadNumber(parsed, "repetition_penalty", 0, 100, "a number in (0, 100]",
                                &sampling.repetition_penalty));
  if (sampling.repetition_penalty <= 0)
    return Bad("repetition_penalty must be a number in (0, 100]");
  int64_t top_k = 0;
  SC_RETURN_IF_ERROR(ReadInteger(parsed, "top_k", 0, 1 << 20, &top_k));
  sampling.top_k = static_cast<int32_t>(top_k);

  auto seed = parsed.find("seed");
  if (seed == parsed.end() || seed->is_null()) {
    sampling.seed = RandomSeed();
  } else if (seed->is_number_unsigned()) {
    sampling.seed = seed->get<uint64_t>();
  } else if (seed->is_number_integer()) {
    sampling.seed = static_cast<uint64_t>(seed->get<int64_t>());  // negative seeds wrap
  } else {
    return Bad("seed must be an integer");
  }
  if (base::Status valid = sampling.Validate(); !valid.ok()) return valid;

  SC_RETURN_IF_ERROR(ReadStops(parsed, limits, &request.stop));

  auto stream = parsed.find("stream");
  if (stream != parsed.end() && !stream->is_null()) {
    if (!stream->is_boolean()) return Bad("stream must be true or false");
    request.stream = stream->get<bool>();
  }
  SC_RETURN_IF_ERROR(ReadStreamOptions(parsed, &request));
  return request;
}

base::Result<engine::GenerationRequest> ToGenerationRequest(const CompletionRequest& request,
                                                            const engine::Tokenizer& tokenizer,
                                                            int64_t context_length) {
  engine::GenerationRequest generation;
  if (request.chat) {
    // The format's markers become special tokens; what the messages say stays text, as a
    // prompt's does below, so a message cannot forge another turn.
    auto encoded = engine::EncodeChat(tokenizer, request.messages,
                                      /*add_generation_prompt=*/true);
    if (!encoded.ok()) return Bad("messages: " + encoded.status().message());
    generation.prompt = std::move(*encoded);
  } else {
    // Special-token text in a user's prompt stays text: parse_special is off.
    engine::EncodeOptions encode;
    encode.add_bos = tokenizer.vocab().add_bos;
    generation.prompt = tokenizer.Encode(request.prompt, encode);
  }
  if (generation.prompt.empty()) return Bad("prompt encodes to no tokens");
  generation.max_tokens = request.max_tokens;
  if (!request.max_tokens_given) {
    // The default is a ceiling, not a demand: a request that sets no max_tokens generates
    // at most what the model's context leaves after its prompt (as OpenAI's chat API does),
    // where asking for more would refuse it outright. A prompt that leaves no room at all is
    // refused here, for what it is: the engine's refusal would name the default max_tokens,
    // which the client never sent.
    const int64_t prompt_tokens = static_cast<int64_t>(generation.prompt.size());
    const int64_t room = context_length - prompt_tokens;
    if (room < 1) return Bad(PromptTooLong(prompt_tokens, context_length));
    if (room < generation.max_tokens) generation.max_tokens = static_cast<int32_t>(room);
  }
  generation.sampling = request.sampling;
  generation.stop = request.stop;
  return generation;
}

}  // namespace supercluster::worker
