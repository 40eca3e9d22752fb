// Chat templates: turn a conversation into the prompt text a chat model was trained on.
// The engine's OpenAI-compatible chat endpoint calls RenderChat() and then encodes the text
// with EncodeOptions{.add_bos = false, .parse_special = true}: the rendered text already holds
// the BOS marker and the turn tokens where the format has them.
//
// Formats are recognised from markers in the model's tokenizer.chat_template (a Jinja text
// we do not run), falling back, when there is no template or no marker is known, to:
//   ChatML if the vocabulary has <|im_start|>, else Llama 2 for "llama" vocabularies,
//   else a plain "role: content" format.
// A name override ("llama2", "llama3", "chatml", "plain") skips the detection.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "engine/tokenizer_vocab.h"

namespace supercluster::engine {

enum class ChatFormat {
  // <s>[INST] <<SYS>>\n{system}\n<</SYS>>\n\n{user} [/INST] {assistant} </s><s>[INST] ...
  kLlama2,
  // <|begin_of_text|><|start_header_id|>{role}<|end_header_id|>\n\n{content}<|eot_id|>...
  kLlama3,
  // <|im_start|>{role}\n{content}<|im_end|>\n...
  kChatMl,
  // {role}: {content}\n ... assistant:
  kPlain,
};

struct ChatMessage {
  std::string role;     // "system", "user" or "assistant"
  std::string content;
};

// "llama2" | "llama3" | "chatml" | "plain" -> format; anything else is an error.
base::Result<ChatFormat> ParseChatFormat(std::string_view name);
const char* ChatFormatName(ChatFormat format);

// The format the vocabulary's chat_template asks for, with the fallback described above.
ChatFormat DetectChatFormat(const TokenizerVocab& vocab);

// Renders messages. add_generation_prompt ends the text with the opening of an assistant
// turn (Llama 2's prompt already ends where the answer starts, after [/INST]). bos_text and
// eos_text are Llama 2's and Llama 3's sentence markers ("<s>", "</s>"; "<|begin_of_text|>").
// Errors: an unknown role; for Llama 2, no user message, a system message that is not
// first, or turns that do not alternate user/assistant.
base::Result<std::string> RenderChat(ChatFormat format, const std::vector<ChatMessage>& messages,
                                     bool add_generation_prompt, std::string_view bos_text,
                                     std::string_view eos_text);

// RenderChat with the format from `override_name` when it is not empty, else detected from
// the vocabulary, and the BOS/EOS texts taken from the vocabulary's bos/eos pieces.
base::Result<std::string> RenderChatForVocab(const TokenizerVocab& vocab,
                                             const std::vector<ChatMessage>& messages,
                                             bool add_generation_prompt,
                                             std::string_view override_name = "");

}  // namespace supercluster::engine
