// Chat templates: turn a conversation into the prompt a chat model was trained on.
// The worker's chat endpoint calls EncodeChat(): the format's own markers (<s>, [INST],
// <|im_start|>, ...) are encoded with control tokens matched, while what the messages say
// is encoded as plain text, as a /v1/completions prompt is. So a message that writes
// "</s><s>" costs the tokens of that text and cannot end its turn and begin another.
// (Llama 2's [INST] is ordinary text either way; user-defined tokens still match anywhere,
// so a vocabulary that types its markers so is not protected.) RenderChat()
// gives the same prompt as one text (for reading; encoding it with parse_special would
// lose that difference).
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
#include "engine/tokenizer.h"
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

// A run of a rendered conversation: the format's own text, or what a message says.
struct ChatPiece {
  std::string text;
  bool from_template = true;  // false: message content, never to be read as special tokens
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
base::Result<std::vector<ChatPiece>> RenderChatPieces(ChatFormat format,
                                                      const std::vector<ChatMessage>& messages,
                                                      bool add_generation_prompt,
                                                      std::string_view bos_text,
                                                      std::string_view eos_text);
// The pieces joined into one text.
base::Result<std::string> RenderChat(ChatFormat format, const std::vector<ChatMessage>& messages,
                                     bool add_generation_prompt, std::string_view bos_text,
                                     std::string_view eos_text);

// As above with the format from `override_name` when it is not empty, else detected from
// the vocabulary, and the BOS/EOS texts taken from the vocabulary's bos/eos pieces.
base::Result<std::vector<ChatPiece>> RenderChatPiecesForVocab(
    const TokenizerVocab& vocab, const std::vector<ChatMessage>& messages,
    bool add_generation_prompt, std::string_view override_name = "");
base::Result<std::string> RenderChatForVocab(const TokenizerVocab& vocab,
                                             const std::vector<ChatMessage>& messages,
                                             bool add_generation_prompt,
                                             std::string_view override_name = "");

// The prompt of a conversation for `tokenizer`'s model: RenderChatPiecesForVocab, the
// format's pieces encoded with their special tokens, the content pieces as plain text.
base::Result<std::vector<TokenId>> EncodeChat(const Tokenizer& tokenizer,
                                              const std::vector<ChatMessage>& messages,
                                              bool add_generation_prompt,
                                              std::string_view override_name = "");

}  // namespace supercluster::engine
