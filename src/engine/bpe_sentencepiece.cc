#include "engine/bpe_sentencepiece.h"

#include <array>
#include <string>
#include <unordered_map>

#include "engine/bpe_merge.h"
#include "engine/tokenizer_vocab_check.h"
#include "engine/unicode.h"

namespace supercluster::engine {
namespace {

constexpr std::string_view kSpaceSymbol = "\xE2\x96\x81";  // U+2581 LOWER ONE EIGHTH BLOCK

class SentencePieceBpe final : public Tokenizer {
 public:
  SentencePieceBpe(TokenizerVocab vocab, bool byte_fallback,
                   const std::array<TokenId, 256>& byte_ids)
      : Tokenizer(std::move(vocab)), byte_fallback_(byte_fallback), byte_ids_(byte_ids) {
    for (size_t id = 0; id < vocab_.tokens.size(); ++id) {
      const TokenType type = TypeOf(vocab_, static_cast<TokenId>(id));
      if (type == TokenType::kNormal || type == TokenType::kUserDefined ||
          type == TokenType::kUnused) {
        mergeable_.emplace(vocab_.tokens[id], static_cast<TokenId>(id));
      }
    }
  }

  std::string TokenBytes(TokenId id, bool at_start) const override {
    switch (TypeOf(vocab_, id)) {
      case TokenType::kControl:
        return "";
      case TokenType::kByte:
        return std::string(1, static_cast<char>(*ParseByteToken(vocab_.tokens[id])));
      case TokenType::kUnknown:
        return " \xE2\x81\x87 ";  // " ⁇ ", what SentencePiece's decoder writes for <unk>
      default:
        break;
    }
    std::string_view piece = vocab_.tokens[id];
    if (at_start && vocab_.add_space_prefix && piece.starts_with(kSpaceSymbol)) {
      piece.remove_prefix(kSpaceSymbol.size());
    }
    std::string text;
    text.reserve(piece.size());
    for (size_t i = 0; i < piece.size();) {
      if (piece.compare(i, kSpaceSymbol.size(), kSpaceSymbol) == 0) {
        text.push_back(' ');
        i += kSpaceSymbol.size();
      } else {
        text.push_back(piece[i++]);
      }
    }
    return text;
  }

 protected:
  void EncodeFragment(std::string_view text, std::vector<TokenId>* ids) const override {
    std::string normalized;
    normalized.reserve(text.size() + text.size() / 2 + 3);
    if (vocab_.add_space_prefix) normalized.append(kSpaceSymbol);
    for (char c : text) {
      if (c == ' ') {
        normalized.append(kSpaceSymbol);
      } else {
        normalized.push_back(c);
      }
    }

    std::vector<BpeSymbol> symbols;
    symbols.reserve(normalized.size());
    for (size_t offset = 0; offset < normalized.size();) {
      const int length = DecodeUtf8(normalized, offset).length;
      const int index = static_cast<int>(symbols.size());
      symbols.push_back({offset, static_cast<size_t>(length), kNoToken, index - 1, index + 1});
      offset += length;
    }
    if (symbols.empty()) return;
    symbols.back().next = -1;

    const std::string_view view = normalized;
    auto pair_candidate = [&](const BpeSymbol& left,
                              const BpeSymbol& right) -> std::optional<BpeMergeCandidate> {
      auto found = mergeable_.find(view.substr(left.begin, left.length + right.length));
      if (found == mergeable_.end()) return std::nullopt;
      const double score = vocab_.scores.empty() ? 0.0 : vocab_.scores[found->second];
      return BpeMergeCandidate{score, found->second};
    };
    bool previous_unknown = false;
    for (const BpeSymbol& symbol : MergeBpeSymbols(std::move(symbols), pair_candidate)) {
      const std::string_view piece = view.substr(symbol.begin, symbol.length);
      auto found = mergeable_.find(piece);
      if (found != mergeable_.end()) {
        ids->push_back(found->second);
        previous_unknown = false;
      } else if (byte_fallback_) {
        for (char c : piece) ids->push_back(byte_ids_[static_cast<uint8_t>(c)]);
        previous_unknown = false;
      } else {
        if (!previous_unknown) ids->push_back(vocab_.unknown_id);
        previous_unknown = true;
      }
    }
  }

 private:
  // Transparent lookup, so that a string_view finds a std::string key without a copy.
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
  };
  std::unordered_map<std::string, TokenId, Hash, std::equal_to<>> mergeable_;
  bool byte_fallback_;
  std::array<TokenId, 256> byte_ids_;
};

}  // namespace

base::Result<std::unique_ptr<Tokenizer>> BuildSentencePieceBpe(TokenizerVocab vocab) {
  std::array<TokenId, 256> byte_ids;
  byte_ids.fill(kNoToken);
  int byte_count = 0;
  for (size_t id = 0; id < vocab.tokens.size(); ++id) {
    const std::optional<uint8_t> byte = ParseByteToken(vocab.tokens[id]);
    const bool typed_byte = TypeOf(vocab, static_cast<TokenId>(id)) == TokenType::kByte;
    if (typed_byte && !byte) {
      return base::InvalidArgument("tokenizer vocabulary: token " + std::to_string(id) + " '" +
                                   vocab.tokens[id] +
                                   "' has type byte but is not named <0x00>..<0xFF>");
    }
    if (typed_byte && byte_ids[*byte] == kNoToken) {
      byte_ids[*byte] = static_cast<TokenId>(id);
      ++byte_count;
    }
  }
  if (byte_count > 0 && byte_count < 256) {
    for (int byte = 0; byte < 256; ++byte) {
      if (byte_ids[byte] == kNoToken) {
        return base::InvalidArgument(
            "tokenizer vocabulary (llama): byte fallback needs all 256 byte tokens but " +
            ByteTokenName(static_cast<uint8_t>(byte)) + " is missing (" +
            std::to_string(256 - byte_count) + " missing in all)");
      }
    }
  }
  const bool byte_fallback = byte_count == 256;
  if (!byte_fallback && vocab.unknown_id == kNoToken) {
    return base::InvalidArgument(
        "tokenizer vocabulary (llama): no byte tokens <0x00>..<0xFF> and no unknown_token_id, "
        "so characters outside the vocabulary could not be encoded");
  }
  return std::unique_ptr<Tokenizer>(
      new SentencePieceBpe(std::move(vocab), byte_fallback, byte_ids));
}

}  // namespace supercluster::engine
