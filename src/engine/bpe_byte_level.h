// Byte-level BPE (GGUF tokenizer.ggml.model "gpt2": GPT-2, Llama 3, Qwen2; and Hugging Face
// tokenizer.json files with a ByteLevel pre-tokenizer). Internal to the tokenizer: callers
// use Tokenizer::Build().
//
// Encoding: the text is cut by the pre-tokenizer pattern (bpe_pretokenizer.h); each piece's
// UTF-8 bytes are written as GPT-2's byte-to-unicode characters, one symbol per byte; adjacent
// symbols are merged by merge rank (lowest first, leftmost on a tie), which gives the same
// result as GPT-2's "merge every occurrence of the best pair" loop.
#pragma once

#include <memory>
#include <string>

#include "base/status.h"
#include "engine/tokenizer.h"

namespace supercluster::engine {

// Precondition: CheckVocabCommon(vocab) passed. Checks that all 256 byte characters are
// tokens and every merge names two tokens whose concatenation is a token.
base::Result<std::unique_ptr<Tokenizer>> BuildByteLevelBpe(TokenizerVocab vocab);

// GPT-2's bytes_to_unicode(): the printable character (as UTF-8) that stands for a byte.
const std::string& ByteLevelCharacter(uint8_t byte);

}  // namespace supercluster::engine
