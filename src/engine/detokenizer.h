// Detokenizer: turns generated token ids into text one id at a time, for streaming answers.
// It returns only whole UTF-8 characters: bytes of a character split across tokens (byte
// fallback tokens, byte-level BPE pieces that end mid-character) are held back until the
// character is complete. Called by the engine's generation loop, one instance per request.
#pragma once

#include <string>
#include <vector>

#include "engine/tokenizer.h"

namespace supercluster::engine {

class Detokenizer {
 public:
  // tokenizer must outlive the Detokenizer.
  explicit Detokenizer(const Tokenizer& tokenizer) : tokenizer_(tokenizer) {}

  // Adds one id; returns the text that is now complete (maybe empty). Bytes that can never
  // become UTF-8 are returned as U+FFFD at once. Ids out of range are ignored.
  std::string Add(TokenId id);

  // Says that the text goes on from `prompt`: if the prompt holds text, the first generated
  // token is not at the start of the text and keeps its leading space, so that prompt and
  // answer join up ("And God said" + " unto him"), as llama.cpp streams it.
  void ContinueAfter(const std::vector<TokenId>& prompt);

  // Returns whatever is held back, an incomplete trailing sequence as U+FFFD, and resets
  // for a new text.
  std::string Flush();

 private:
  const Tokenizer& tokenizer_;
  std::string pending_;        // bytes of an incomplete character
  // Whether a non-control token has been added: SentencePiece drops the dummy-prefix space
  // of the first one only (see Tokenizer::Decode).
  bool seen_text_token_ = false;
};

}  // namespace supercluster::engine
