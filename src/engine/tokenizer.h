// Tokenizer: text <-> token ids for the engine. Build() checks a TokenizerVocab and returns
// the implementation its model kind asks for (SentencePiece BPE or byte-level BPE). The
// engine's request path calls Encode() on prompts and feeds generated ids to a Detokenizer
// (detokenizer.h); chat_template.h renders conversations into the text given to Encode().
//
// A built Tokenizer is immutable, so one instance may be shared by many threads.
#pragma once

#include <array>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "base/status.h"
#include "engine/tokenizer_vocab.h"

namespace supercluster::engine {

struct EncodeOptions {
  bool add_bos = false;        // prepend vocab.bos_id (callers usually pass vocab().add_bos)
  bool add_eos = false;        // append vocab.eos_id
  bool parse_special = false;  // match control tokens (<s>, <|im_start|>) written in the text
};

// One piece of a text encoded in pieces: whether control tokens written in it are matched.
// A rendered chat is such a text: the format's markers may be control tokens, what users
// wrote may not (chat_template.h).
struct EncodePiece {
  std::string_view text;
  bool parse_special = false;
};

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // Checks the vocabulary (ids in range, byte tokens, merges) and builds the tokenizer.
  // Errors name the field and the entry that is wrong.
  static base::Result<std::unique_ptr<Tokenizer>> Build(TokenizerVocab vocab);

  // Text (any bytes; invalid UTF-8 does not fail) -> ids. User-defined tokens, and control
  // tokens when parse_special is on, are cut out first; the text between them is encoded
  // run by run (SentencePiece: each run gets the dummy-prefix space, as in llama.cpp).
  std::vector<TokenId> Encode(std::string_view text, const EncodeOptions& options) const;
  // The pieces encoded as one text (BPE runs go on across pieces, as in the text they make
  // together), except that a control token is matched only where it lies wholly within a
  // piece whose parse_special is on; options.parse_special is not used.
  std::vector<TokenId> Encode(std::span<const EncodePiece> pieces,
                              const EncodeOptions& options) const;

  // Ids -> text. Control tokens produce nothing; bytes that do not form UTF-8 become
  // U+FFFD. Ids out of range are skipped.
  std::string Decode(std::span<const TokenId> ids) const;

  // The raw bytes token `id` adds to decoded text (maybe part of a character). at_start:
  // nothing has been decoded before it, so a SentencePiece dummy-prefix space is dropped.
  // Precondition: 0 <= id < vocab_size().
  virtual std::string TokenBytes(TokenId id, bool at_start) const = 0;

  const TokenizerVocab& vocab() const { return vocab_; }
  int vocab_size() const { return static_cast<int>(vocab_.tokens.size()); }
  // The stored piece (e.g. "▁the", "Ġthe", "<0x0A>"). Precondition: id in range.
  const std::string& Piece(TokenId id) const { return vocab_.tokens[id]; }
  TokenType Type(TokenId id) const;
  // The id of a piece, or kNoToken.
  TokenId FindPiece(std::string_view piece) const;

 protected:
  explicit Tokenizer(TokenizerVocab vocab);

  // Encodes a non-empty run of text that holds no special token (Encode() has split them
  // out). SentencePiece adds its dummy-prefix space to every such run, as llama.cpp does:
  // a run after a special token starts a new "sentence".
  virtual void EncodeFragment(std::string_view text, std::vector<TokenId>* ids) const = 0;

  TokenizerVocab vocab_;
  std::unordered_map<std::string, TokenId> piece_to_id_;

 private:
  // Encode's work: `control_ranges` are the [begin, end) spans of `text`, in order, where
  // control tokens may be matched.
  std::vector<TokenId> EncodeText(std::string_view text,
                                  std::span<const std::pair<size_t, size_t>> control_ranges,
                                  const EncodeOptions& options) const;

  // Control and user-defined tokens, longest first. Encode() always matches the
  // user-defined ones and the control ones only when parse_special is on.
  std::vector<TokenId> special_tokens_;
  // The first bytes of those tokens: most positions of a text start none of them.
  std::array<bool, 256> special_first_byte_{};
};

}  // namespace supercluster::engine
