#include "engine/chat_template.h"

#include <algorithm>

namespace supercluster::engine {
namespace {

bool KnownRole(const std::string& role) {
  return role == "system" || role == "user" || role == "assistant";
}

// Jinja's |trim, which the Llama 2 and Llama 3 templates apply to every message.
std::string Trim(std::string_view text) {
  const char* kSpace = " \t\n\r\f\v";
  const size_t first = text.find_first_not_of(kSpace);
  if (first == std::string_view::npos) return "";
  const size_t last = text.find_last_not_of(kSpace);
  return std::string(text.substr(first, last - first + 1));
}

// A rendering under way: the format's own text and the messages' content kept apart.
class Pieces {
 public:
  Pieces& Markup(std::string_view text) { return Add(text, /*from_template=*/true); }
  Pieces& Content(std::string_view text) { return Add(text, /*from_template=*/false); }
  std::vector<ChatPiece> Take() { return std::move(pieces_); }

 private:
  Pieces& Add(std::string_view text, bool from_template) {
    if (text.empty()) return *this;
    if (!pieces_.empty() && pieces_.back().from_template == from_template) {
      pieces_.back().text += text;  // one piece per run of the same kind
    } else {
      pieces_.push_back({std::string(text), from_template});
    }
    return *this;
  }
  std::vector<ChatPiece> pieces_;
};

// Meta's Llama 2 chat format (the model card and the Hugging Face chat_template): the system
// prompt is folded into the first user turn; each exchange is its own <s>...</s> sentence.
base::Result<std::vector<ChatPiece>> RenderLlama2(const std::vector<ChatMessage>& messages,
                                                  std::string_view bos, std::string_view eos) {
  size_t first = 0;
  const ChatMessage* system = nullptr;
  if (!messages.empty() && messages[0].role == "system") {
    system = &messages[0];
    first = 1;
  }
  // The system prompt lives inside the first user turn: alone, it would render to nothing.
  if (first == messages.size()) {
    return base::InvalidArgument("chat template llama2: a user message is required (" +
                                 std::string(first == 1 ? "a system message alone"
                                                        : "no messages") +
                                 " cannot be rendered)");
  }
  Pieces out;
  for (size_t i = first; i < messages.size(); ++i) {
    const ChatMessage& message = messages[i];
    const bool expect_user = (i - first) % 2 == 0;
    if (message.role == "system") {
      return base::InvalidArgument("chat template llama2: message " + std::to_string(i) +
                                   " is a system message; only the first message may be one");
    }
    if ((message.role == "user") != expect_user) {
      return base::InvalidArgument("chat template llama2: message " + std::to_string(i) +
                                   " has role '" + message.role + "' but turns must alternate "
                                   "user/assistant starting with user");
    }
    if (expect_user) {
      out.Markup(bos).Markup("[INST] ");
      if (i == first && system != nullptr) {
        out.Markup("<<SYS>>\n").Content(Trim(system->content)).Markup("\n<</SYS>>\n\n");
      }
      out.Content(Trim(message.content)).Markup(" [/INST]");
    } else {
      out.Markup(" ").Content(Trim(message.content)).Markup(" ").Markup(eos);
    }
  }
  return out.Take();
}

std::vector<ChatPiece> RenderLlama3(const std::vector<ChatMessage>& messages,
                                    bool add_generation_prompt, std::string_view bos) {
  Pieces out;
  out.Markup(bos);
  for (const ChatMessage& message : messages) {
    out.Markup("<|start_header_id|>" + message.role + "<|end_header_id|>\n\n")
        .Content(Trim(message.content))
        .Markup("<|eot_id|>");
  }
  if (add_generation_prompt) out.Markup("<|start_header_id|>assistant<|end_header_id|>\n\n");
  return out.Take();
}

std::vector<ChatPiece> RenderChatMl(const std::vector<ChatMessage>& messages,
                                    bool add_generation_prompt) {
  Pieces out;
  for (const ChatMessage& message : messages) {
    out.Markup("<|im_start|>" + message.role + "\n").Content(message.content).Markup("<|im_end|>\n");
  }
  if (add_generation_prompt) out.Markup("<|im_start|>assistant\n");
  return out.Take();
}

std::vector<ChatPiece> RenderPlain(const std::vector<ChatMessage>& messages,
                                   bool add_generation_prompt) {
  Pieces out;
  for (const ChatMessage& message : messages) {
    out.Markup(message.role + ": ").Content(message.content).Markup("\n");
  }
  if (add_generation_prompt) out.Markup("assistant:");
  return out.Take();
}

bool VocabHas(const TokenizerVocab& vocab, std::string_view piece) {
  return std::find(vocab.tokens.begin(), vocab.tokens.end(), piece) != vocab.tokens.end();
}

std::string PieceOrEmpty(const TokenizerVocab& vocab, TokenId id) {
  return id >= 0 && static_cast<size_t>(id) < vocab.tokens.size() ? vocab.tokens[id] : "";
}

}  // namespace

base::Result<ChatFormat> ParseChatFormat(std::string_view name) {
  if (name == "llama2") return ChatFormat::kLlama2;
  if (name == "llama3") return ChatFormat::kLlama3;
  if (name == "chatml") return ChatFormat::kChatMl;
  if (name == "plain") return ChatFormat::kPlain;
  return base::InvalidArgument("chat template '" + std::string(name) +
                               "' is not known (known: llama2, llama3, chatml, plain)");
}

const char* ChatFormatName(ChatFormat format) {
  switch (format) {
    case ChatFormat::kLlama2: return "llama2";
    case ChatFormat::kLlama3: return "llama3";
    case ChatFormat::kChatMl: return "chatml";
    case ChatFormat::kPlain: return "plain";
  }
  return "plain";
}

ChatFormat DetectChatFormat(const TokenizerVocab& vocab) {
  const std::string& jinja = vocab.chat_template;
  if (jinja.find("<|im_start|>") != std::string::npos) return ChatFormat::kChatMl;
  if (jinja.find("<|start_header_id|>") != std::string::npos) return ChatFormat::kLlama3;
  if (jinja.find("[INST]") != std::string::npos) return ChatFormat::kLlama2;
  if (VocabHas(vocab, "<|im_start|>")) return ChatFormat::kChatMl;
  if (vocab.model == TokenizerModel::kSentencePieceBpe) return ChatFormat::kLlama2;
  return ChatFormat::kPlain;
}

base::Result<std::vector<ChatPiece>> RenderChatPieces(ChatFormat format,
                                                      const std::vector<ChatMessage>& messages,
                                                      bool add_generation_prompt,
                                                      std::string_view bos_text,
                                                      std::string_view eos_text) {
  for (size_t i = 0; i < messages.size(); ++i) {
    if (!KnownRole(messages[i].role)) {
      return base::InvalidArgument("chat message " + std::to_string(i) + ": role '" +
                                   messages[i].role +
                                   "' is not one of system, user, assistant");
    }
  }
  switch (format) {
    case ChatFormat::kLlama2: return RenderLlama2(messages, bos_text, eos_text);
    case ChatFormat::kLlama3: return RenderLlama3(messages, add_generation_prompt, bos_text);
    case ChatFormat::kChatMl: return RenderChatMl(messages, add_generation_prompt);
    case ChatFormat::kPlain: return RenderPlain(messages, add_generation_prompt);
  }
  return base::Internal("chat template: unknown format");
}

base::Result<std::string> RenderChat(ChatFormat format, const std::vector<ChatMessage>& messages,
                                     bool add_generation_prompt, std::string_view bos_text,
                                     std::string_view eos_text) {
  SC_ASSIGN_OR_RETURN(auto pieces, RenderChatPieces(format, messages, add_generation_prompt,
                                                    bos_text, eos_text));
  std::string text;
  for (const ChatPiece& piece : pieces) text += piece.text;
  return text;
}

base::Result<std::vector<ChatPiece>> RenderChatPiecesForVocab(
    const TokenizerVocab& vocab, const std::vector<ChatMessage>& messages,
    bool add_generation_prompt, std::string_view override_name) {
  ChatFormat format = DetectChatFormat(vocab);
  if (!override_name.empty()) {
    SC_ASSIGN_OR_RETURN(format, ParseChatFormat(override_name));
  }
  return RenderChatPieces(format, messages, add_generation_prompt,
                          PieceOrEmpty(vocab, vocab.bos_id), PieceOrEmpty(vocab, vocab.eos_id));
}

base::Result<std::string> RenderChatForVocab(const TokenizerVocab& vocab,
                                             const std::vector<ChatMessage>& messages,
                                             bool add_generation_prompt,
                                             std::string_view override_name) {
  SC_ASSIGN_OR_RETURN(auto pieces, RenderChatPiecesForVocab(vocab, messages,
                                                            add_generation_prompt, override_name));
  std::string text;
  for (const ChatPiece& piece : pieces) text += piece.text;
  return text;
}

base::Result<std::vector<TokenId>> EncodeChat(const Tokenizer& tokenizer,
                                              const std::vector<ChatMessage>& messages,
                                              bool add_generation_prompt,
                                              std::string_view override_name) {
  SC_ASSIGN_OR_RETURN(auto pieces, RenderChatPiecesForVocab(tokenizer.vocab(), messages,
                                                            add_generation_prompt, override_name));
  std::vector<EncodePiece> encode;
  encode.reserve(pieces.size());
  for (const ChatPiece& piece : pieces) encode.push_back({piece.text, piece.from_template});
  // No add_bos: the format writes its BOS marker itself where it has one.
  return tokenizer.Encode(encode, EncodeOptions{});
}

}  // namespace supercluster::engine
