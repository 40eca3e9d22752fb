#include "engine/tokenizer.h"

#include <algorithm>

#include "engine/bpe_byte_level.h"
#include "engine/bpe_sentencepiece.h"
#include "engine/tokenizer_vocab_check.h"
#include "engine/unicode.h"

namespace supercluster::engine {

base::Result<std::unique_ptr<Tokenizer>> Tokenizer::Build(TokenizerVocab vocab) {
  SC_RETURN_IF_ERROR(CheckVocabCommon(vocab));
  switch (vocab.model) {
    case TokenizerModel::kSentencePieceBpe: return BuildSentencePieceBpe(std::move(vocab));
    case TokenizerModel::kByteLevelBpe: return BuildByteLevelBpe(std::move(vocab));
  }
  return base::InvalidArgument("tokenizer vocabulary: unknown model kind");
}

Tokenizer::Tokenizer(TokenizerVocab vocab) : vocab_(std::move(vocab)) {
  piece_to_id_.reserve(vocab_.tokens.size());
  for (size_t id = 0; id < vocab_.tokens.size(); ++id) {
    // A duplicated piece keeps its first id, as SentencePiece and llama.cpp do.
    piece_to_id_.emplace(vocab_.tokens[id], static_cast<TokenId>(id));
  }
  for (size_t id = 0; id < vocab_.tokens.size(); ++id) {
    const TokenType type = TypeOf(vocab_, static_cast<TokenId>(id));
    if (type == TokenType::kControl || type == TokenType::kUserDefined) {
      special_tokens_.push_back(static_cast<TokenId>(id));
      special_first_byte_[static_cast<uint8_t>(vocab_.tokens[id][0])] = true;
    }
  }
  // Longest first, so "<|im_start|>" wins over a shorter token that is its prefix.
  std::stable_sort(special_tokens_.begin(), special_tokens_.end(), [this](TokenId a, TokenId b) {
    return vocab_.tokens[a].size() > vocab_.tokens[b].size();
  });
}

TokenType Tokenizer::Type(TokenId id) const { return TypeOf(vocab_, id); }

TokenId Tokenizer::FindPiece(std::string_view piece) const {
  auto found = piece_to_id_.find(std::string(piece));
  return found == piece_to_id_.end() ? kNoToken : found->second;
}

std::vector<TokenId> Tokenizer::Encode(std::string_view text, const EncodeOptions& options) const {
  const std::pair<size_t, size_t> whole{0, text.size()};
  return EncodeText(text, std::span(&whole, options.parse_special ? 1 : 0), options);
}

std::vector<TokenId> Tokenizer::Encode(std::span<const EncodePiece> pieces,
                                       const EncodeOptions& options) const {
  std::string text;
  std::vector<std::pair<size_t, size_t>> control_ranges;
  for (const EncodePiece& piece : pieces) {
    const size_t begin = text.size();
    text += piece.text;
    if (!piece.parse_special) continue;
    // Consecutive pieces that allow control tokens make one range: a token may span them.
    if (!control_ranges.empty() && control_ranges.back().second == begin) {
      control_ranges.back().second = text.size();
    } else {
      control_ranges.emplace_back(begin, text.size());
    }
  }
  return EncodeText(text, control_ranges, options);
}

std::vector<TokenId> Tokenizer::EncodeText(
    std::string_view text, std::span<const std::pair<size_t, size_t>> control_ranges,
    const EncodeOptions& options) const {
  std::vector<TokenId> ids;
  if (options.add_bos && vocab_.bos_id != kNoToken) ids.push_back(vocab_.bos_id);

  // Split out special tokens; the text between them goes through BPE.
  size_t fragment_start = 0;
  size_t position = 0;
  size_t range = 0;  // the first control range that does not end before `position`
  while (position < text.size()) {
    TokenId matched = kNoToken;
    if (!special_first_byte_[static_cast<uint8_t>(text[position])]) {
      ++position;
      continue;
    }
    while (range < control_ranges.size() && control_ranges[range].second <= position) ++range;
    const bool in_range = range < control_ranges.size() && control_ranges[range].first <= position;
    for (TokenId id : special_tokens_) {
      const std::string& piece = vocab_.tokens[id];
      if (TypeOf(vocab_, id) == TokenType::kControl &&
          (!in_range || position + piece.size() > control_ranges[range].second)) {
        continue;
      }
      if (text.compare(position, piece.size(), piece) == 0) {
        matched = id;
        break;
      }
    }
    if (matched == kNoToken) {
      ++position;
      continue;
    }
    if (position > fragment_start) {
      EncodeFragment(text.substr(fragment_start, position - fragment_start), &ids);
    }
    ids.push_back(matched);
    position += vocab_.tokens[matched].size();
    fragment_start = position;
  }
  if (fragment_start < text.size()) EncodeFragment(text.substr(fragment_start), &ids);

  if (options.add_eos && vocab_.eos_id != kNoToken) ids.push_back(vocab_.eos_id);
  return ids;
}

std::string Tokenizer::Decode(std::span<const TokenId> ids) const {
  std::string bytes;
  bool at_start = true;
  for (TokenId id : ids) {
    if (id < 0 || id >= vocab_size()) continue;
    bytes += TokenBytes(id, at_start);
    // As in SentencePiece's decoder, the first token that is not a control token is the
    // start, even when it decodes to nothing (a lone dummy-prefix "▁").
    if (Type(id) != TokenType::kControl) at_start = false;
  }
  return ToValidUtf8(bytes);
}

}  // namespace supercluster::engine
