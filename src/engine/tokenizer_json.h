// Reads a Hugging Face tokenizer.json (byte-level BPE: GPT-2, Llama 3, Qwen2) into a
// TokenizerVocab for Tokenizer::Build(). Called by the model loader for safetensors models.
//
// Read: model.type ("BPE"), model.vocab, model.merges (either "a b" strings or ["a", "b"]
// pairs), added_tokens (special -> control, otherwise user-defined), and the pre-tokenizer
// kind, recognised from the Split regex in pre_tokenizer (Llama 3's \p{N}{1,3}, Qwen2's
// single \p{N}) or a ByteLevel pre-tokenizer with its own regex (GPT-2).
// Not read: bos/eos ids and add_bos (they live in tokenizer_config.json; the caller sets
// them), normalizers, and SentencePiece-style files (model.byte_fallback), which are refused.
#pragma once

#include <string>
#include <string_view>

#include "base/status.h"
#include "engine/tokenizer_vocab.h"

namespace supercluster::engine {

// `source` names the file in error messages.
base::Result<TokenizerVocab> ParseTokenizerJson(std::string_view json_text,
                                                const std::string& source = "tokenizer.json");

base::Result<TokenizerVocab> LoadTokenizerJsonFile(const std::string& path);

}  // namespace supercluster::engine
