#include "engine/tokenizer_vocab.h"

#include <cmath>
#include <cstdio>

#include "engine/tokenizer_vocab_check.h"

namespace supercluster::engine {

const char* TokenizerModelName(TokenizerModel model) {
  switch (model) {
    case TokenizerModel::kSentencePieceBpe: return "llama";
    case TokenizerModel::kByteLevelBpe: return "gpt2";
  }
  return "unknown";
}

std::optional<uint8_t> ParseByteToken(std::string_view piece) {
  if (piece.size() != 6 || piece.substr(0, 3) != "<0x" || piece[5] != '>') return std::nullopt;
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;  // SentencePiece and llama.cpp write upper case only
  };
  const int high = hex(piece[3]);
  const int low = hex(piece[4]);
  if (high < 0 || low < 0) return std::nullopt;
  return static_cast<uint8_t>(high * 16 + low);
}

std::string ByteTokenName(uint8_t byte) {
  char name[8];
  std::snprintf(name, sizeof(name), "<0x%02X>", byte);
  return name;
}

base::Status CheckVocabCommon(const TokenizerVocab& vocab) {
  const size_t count = vocab.tokens.size();
  if (count == 0) return base::InvalidArgument("tokenizer vocabulary: tokens is empty");
  if (count > 0x7FFFFFFF) return base::InvalidArgument("tokenizer vocabulary: too many tokens");
  if (!vocab.scores.empty() && vocab.scores.size() != count) {
    return base::InvalidArgument("tokenizer vocabulary: scores has " +
                                 std::to_string(vocab.scores.size()) + " entries but tokens has " +
                                 std::to_string(count));
  }
  if (!vocab.types.empty() && vocab.types.size() != count) {
    return base::InvalidArgument("tokenizer vocabulary: token_type has " +
                                 std::to_string(vocab.types.size()) +
                                 " entries but tokens has " + std::to_string(count));
  }
  for (size_t id = 0; id < vocab.scores.size(); ++id) {
    // The merge queue orders by score; a NaN would break its ordering.
    if (!std::isfinite(vocab.scores[id])) {
      return base::InvalidArgument("tokenizer vocabulary: scores[" + std::to_string(id) +
                                   "] is not a finite number");
    }
  }
  for (size_t id = 0; id < vocab.types.size(); ++id) {
    const auto value = static_cast<int32_t>(vocab.types[id]);
    if (value < static_cast<int32_t>(TokenType::kNormal) ||
        value > static_cast<int32_t>(TokenType::kByte)) {
      return base::InvalidArgument("tokenizer vocabulary: token_type[" + std::to_string(id) +
                                   "] is " + std::to_string(value) + ", not one of 1..6");
    }
  }
  for (size_t id = 0; id < count; ++id) {
    if (vocab.tokens[id].empty()) {
      return base::InvalidArgument("tokenizer vocabulary: token " + std::to_string(id) +
                                   " is the empty string");
    }
  }
  const struct {
    const char* name;
    TokenId id;
  } specials[] = {{"bos_token_id", vocab.bos_id},
                  {"eos_token_id", vocab.eos_id},
                  {"unknown_token_id", vocab.unknown_id},
                  {"padding_token_id", vocab.padding_id}};
  for (const auto& special : specials) {
    if (special.id != kNoToken && (special.id < 0 || static_cast<size_t>(special.id) >= count)) {
      return base::InvalidArgument("tokenizer vocabulary: " + std::string(special.name) + " " +
                                   std::to_string(special.id) + " is outside the " +
                                   std::to_string(count) + " tokens");
    }
  }
  if (vocab.add_bos && vocab.bos_id == kNoToken) {
    return base::InvalidArgument("tokenizer vocabulary: add_bos_token is set but there is no "
                                 "bos_token_id");
  }
  if (vocab.add_eos && vocab.eos_id == kNoToken) {
    return base::InvalidArgument("tokenizer vocabulary: add_eos_token is set but there is no "
                                 "eos_token_id");
  }
  return base::Status::Ok();
}

}  // namespace supercluster::engine
