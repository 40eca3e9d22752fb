#include "engine/bpe_byte_level.h"

#include <array>
#include <unordered_map>

#include "engine/bpe_merge.h"
#include "engine/bpe_pretokenizer.h"
#include "engine/tokenizer_vocab_check.h"
#include "engine/unicode.h"

namespace supercluster::engine {
namespace {

// GPT-2 keeps the printable Latin-1 bytes ('!'..'~', '¡'..'¬', '®'..'ÿ') as themselves and
// maps the other 68 bytes, in order, to U+0100 onwards, so that no byte is whitespace or a
// control character in the vocabulary file.
struct ByteMap {
  std::array<uint32_t, 256> code_point{};
  std::array<std::string, 256> utf8;
  std::unordered_map<uint32_t, uint8_t> byte_of;

  ByteMap() {
    auto printable = [](int b) {
      return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    };
    uint32_t next_extra = 0x100;
    for (int b = 0; b < 256; ++b) code_point[b] = printable(b) ? b : next_extra++;
    for (int b = 0; b < 256; ++b) {
      AppendUtf8(code_point[b], &utf8[b]);
      byte_of[code_point[b]] = static_cast<uint8_t>(b);
    }
  }
};

const ByteMap& GetByteMap() {
  static const ByteMap* map = new ByteMap();
  return *map;
}

uint64_t PairKey(TokenId left, TokenId right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
}

struct Merge {
  int rank;
  TokenId merged_id;
};

class ByteLevelBpe final : public Tokenizer {
 public:
  ByteLevelBpe(TokenizerVocab vocab, PreTokenizer pre_tokenizer,
               const std::array<TokenId, 256>& byte_ids,
               std::unordered_map<uint64_t, Merge> merges)
      : Tokenizer(std::move(vocab)),
        pre_tokenizer_(pre_tokenizer),
        byte_ids_(byte_ids),
        merges_(std::move(merges)),
        ignore_merges_(pre_tokenizer == PreTokenizer::kLlama3) {}

  std::string TokenBytes(TokenId id, bool /*at_start*/) const override {
    const TokenType type = TypeOf(vocab_, id);
    if (type == TokenType::kControl) return "";
    const std::string& piece = vocab_.tokens[id];
    // Added tokens are stored as their text, not in the byte alphabet.
    if (type == TokenType::kUserDefined) return piece;
    const ByteMap& map = GetByteMap();
    std::string bytes;
    bytes.reserve(piece.size());
    for (size_t offset = 0; offset < piece.size();) {
      const DecodedChar decoded = DecodeUtf8(piece, offset);
      auto found = decoded.valid ? map.byte_of.find(decoded.code_point) : map.byte_of.end();
      if (found != map.byte_of.end()) {
        bytes.push_back(static_cast<char>(found->second));
      } else {
        bytes.append(piece, offset, decoded.length);  // not in the byte alphabet: keep as is
      }
      offset += decoded.length;
    }
    return bytes;
  }

 protected:
  void EncodeFragment(std::string_view text, std::vector<TokenId>* ids) const override {
    std::vector<BpeSymbol> symbols;
    auto pair_candidate = [this](const BpeSymbol& left,
                                 const BpeSymbol& right) -> std::optional<BpeMergeCandidate> {
      auto found = merges_.find(PairKey(left.id, right.id));
      if (found == merges_.end()) return std::nullopt;
      return BpeMergeCandidate{-static_cast<double>(found->second.rank),
                               found->second.merged_id};
    };
    for (std::string_view word : PreTokenize(pre_tokenizer_, text)) {
      if (word.empty()) continue;  // PreTokenize never returns one; the loop below needs a byte
      // Llama 3's tokenizer.json sets ignore_merges: a word that is itself a token is taken
      // whole, even where the merges would not reach it.
      if (ignore_merges_) {
        std::string mapped;
        for (char c : word) mapped += ByteLevelCharacter(static_cast<uint8_t>(c));
        auto found = piece_to_id_.find(mapped);
        if (found != piece_to_id_.end()) {
          ids->push_back(found->second);
          continue;
        }
      }
      symbols.clear();
      for (size_t i = 0; i < word.size(); ++i) {
        const int index = static_cast<int>(i);
        symbols.push_back({i, 1, byte_ids_[static_cast<uint8_t>(word[i])], index - 1, index + 1});
      }
      symbols.back().next = -1;
      for (const BpeSymbol& symbol : MergeBpeSymbols(symbols, pair_candidate)) {
        ids->push_back(symbol.id);
      }
    }
  }

 private:
  PreTokenizer pre_tokenizer_;
  std::array<TokenId, 256> byte_ids_;
  std::unordered_map<uint64_t, Merge> merges_;
  bool ignore_merges_;
};

}  // namespace

const std::string& ByteLevelCharacter(uint8_t byte) { return GetByteMap().utf8[byte]; }

base::Result<std::unique_ptr<Tokenizer>> BuildByteLevelBpe(TokenizerVocab vocab) {
  SC_ASSIGN_OR_RETURN(PreTokenizer pre_tokenizer, ParsePreTokenizer(vocab.pre_tokenizer));
  std::unordered_map<std::string_view, TokenId> id_of;
  id_of.reserve(vocab.tokens.size());
  for (size_t id = 0; id < vocab.tokens.size(); ++id) {
    id_of.emplace(vocab.tokens[id], static_cast<TokenId>(id));
  }
  std::array<TokenId, 256> byte_ids;
  for (int byte = 0; byte < 256; ++byte) {
    auto found = id_of.find(ByteLevelCharacter(static_cast<uint8_t>(byte)));
    if (found == id_of.end()) {
      return base::InvalidArgument(
          "tokenizer vocabulary (gpt2): no token for byte " + ByteTokenName(static_cast<uint8_t>(byte)) +
          " (its byte-level character '" + ByteLevelCharacter(static_cast<uint8_t>(byte)) +
          "'); a byte-level vocabulary needs all 256");
    }
    byte_ids[byte] = found->second;
  }
  std::unordered_map<uint64_t, Merge> merges;
  merges.reserve(vocab.merges.size());
  for (size_t rank = 0; rank < vocab.merges.size(); ++rank) {
    const std::string& merge = vocab.merges[rank];
    const std::string where = "tokenizer vocabulary (gpt2): merges[" + std::to_string(rank) +
                              "] '" + merge + "'";
    const size_t space = merge.find(' ');
    if (space == std::string::npos || space == 0 || space + 1 == merge.size() ||
        merge.find(' ', space + 1) != std::string::npos) {
      return base::InvalidArgument(where + " is not two tokens separated by one space");
    }
    const std::string_view left(merge.data(), space);
    const std::string_view right(merge.data() + space + 1, merge.size() - space - 1);
    const std::string joined = std::string(left) + std::string(right);
    for (std::string_view part : {left, right, std::string_view(joined)}) {
      if (!id_of.contains(part)) {
        return base::InvalidArgument(where + " names '" + std::string(part) +
                                     "', which is not a token");
      }
    }
    // Should a vocabulary repeat a pair, its best rank counts.
    merges.emplace(PairKey(id_of[left], id_of[right]),
                   Merge{static_cast<int>(rank), id_of[joined]});
  }
  return std::unique_ptr<Tokenizer>(
      new ByteLevelBpe(std::move(vocab), pre_tokenizer, byte_ids, std::move(merges)));
}

}  // namespace supercluster::engine
