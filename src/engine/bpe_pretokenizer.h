// The regex pre-tokenizers of byte-level BPE vocabularies (GPT-2, Llama 3, Qwen2), written
// out by hand as matchers over Unicode classes so that no regex engine with its own Unicode
// tables is involved. Called by the byte-level tokenizer (bpe_byte_level.cc) and its tests.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace supercluster::engine {

enum class PreTokenizer {
  // 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
  kGpt2,
  // (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
  //   ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
  kLlama3,
  // Llama 3's pattern with \p{N} (one digit per piece) in place of \p{N}{1,3}.
  kQwen2,
};

// GGUF tokenizer.ggml.pre names: "default"/"gpt2" -> kGpt2, "llama-bpe"/"llama3" -> kLlama3,
// "qwen2" -> kQwen2. Anything else is an error naming the value.
base::Result<PreTokenizer> ParsePreTokenizer(std::string_view name);

// Splits text into the pieces the pattern matches, in order; the pieces concatenate to text.
// Bytes that are not UTF-8 count as one character of class "other" each.
std::vector<std::string_view> PreTokenize(PreTokenizer kind, std::string_view text);

}  // namespace supercluster::engine
