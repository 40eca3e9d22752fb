// TokenizerVocab: everything a tokenizer is built from, in one plain struct. The GGUF reader
// fills it from the tokenizer.ggml.* metadata and the tokenizer.json loader from a Hugging
// Face file; Tokenizer::Build() checks it and makes the matching tokenizer.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace supercluster::engine {

using TokenId = int32_t;
inline constexpr TokenId kNoToken = -1;

// GGUF tokenizer.ggml.model.
enum class TokenizerModel {
  kSentencePieceBpe,  // "llama": SentencePiece BPE over U+2581-escaped text, scores, byte fallback
  kByteLevelBpe,      // "gpt2": GPT-2 byte-to-unicode map, regex pre-tokenizer, ranked merges
};

// GGUF tokenizer.ggml.token_type values (the numbers are the GGUF/llama.cpp ones).
enum class TokenType : int32_t {
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,       // <s>, </s>, <|eot_id|>: matched in text only when parse_special is on
  kUserDefined = 4,   // always matched in text before BPE
  kUnused = 5,
  kByte = 6,          // <0x00>..<0xFF>, the SentencePiece byte fallback
};

struct TokenizerVocab {
  TokenizerModel model = TokenizerModel::kSentencePieceBpe;
  // GGUF tokenizer.ggml.pre for byte-level vocabularies: "default" and "gpt2" select GPT-2's
  // pre-tokenizer pattern, "llama-bpe" (alias "llama3") Llama 3's, "qwen2" Qwen2's.
  std::string pre_tokenizer = "default";
  std::vector<std::string> tokens;   // id -> piece
  std::vector<float> scores;         // id -> score; empty means all 0 (byte-level ignores it)
  std::vector<TokenType> types;      // id -> type; empty means all kNormal
  std::vector<std::string> merges;   // byte-level: "left right", rank = position
  TokenId bos_id = kNoToken;
  TokenId eos_id = kNoToken;
  TokenId unknown_id = kNoToken;
  TokenId padding_id = kNoToken;
  bool add_bos = false;
  bool add_eos = false;
  // SentencePiece's add_dummy_prefix: text is encoded as if it started with a space.
  bool add_space_prefix = true;
  std::string chat_template;         // tokenizer.chat_template, possibly empty
};

// "llama" / "gpt2" -> model; anything else is an error naming the value.
const char* TokenizerModelName(TokenizerModel model);

}  // namespace supercluster::engine
