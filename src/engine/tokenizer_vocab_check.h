// Checks of a TokenizerVocab shared by Tokenizer::Build() and the two BPE implementations.
// Internal to the tokenizer files.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "base/status.h"
#include "engine/tokenizer_vocab.h"

namespace supercluster::engine {

// The checks that do not depend on the model kind: sizes of scores/types match tokens,
// special ids in range, no empty pieces.
base::Status CheckVocabCommon(const TokenizerVocab& vocab);

// "<0x0A>" -> 0x0A; anything else -> nullopt.
std::optional<uint8_t> ParseByteToken(std::string_view piece);

// "<0x0A>" for 0x0A.
std::string ByteTokenName(uint8_t byte);

inline TokenType TypeOf(const TokenizerVocab& vocab, TokenId id) {
  return vocab.types.empty() ? TokenType::kNormal : vocab.types[id];
}

}  // namespace supercluster::engine
