#include "engine/detokenizer.h"

#include "engine/unicode.h"

namespace supercluster::engine {
namespace {

// The length of the tail of bytes that is a proper prefix of a valid UTF-8 sequence (a
// character still waiting for its continuation bytes), 0 if none.
size_t IncompleteTailLength(const std::string& bytes) {
  // A sequence is at most 4 bytes, so an incomplete one's lead byte is among the last 3.
  for (size_t back = 1; back <= 3 && back <= bytes.size(); ++back) {
    const size_t start = bytes.size() - back;
    if ((static_cast<uint8_t>(bytes[start]) & 0xC0) == 0x80) continue;  // not the lead yet
    // DecodeUtf8 reports a truncated sequence as invalid with every byte so far accepted.
    const DecodedChar decoded = DecodeUtf8(bytes, start);
    const bool truncated = !decoded.valid && static_cast<size_t>(decoded.length) == back &&
                           Utf8SequenceLength(static_cast<uint8_t>(bytes[start])) >
                               static_cast<int>(back);
    return truncated ? back : 0;
  }
  return 0;
}

}  // namespace

std::string Detokenizer::Add(TokenId id) {
  if (id < 0 || id >= tokenizer_.vocab_size()) return "";
  const std::string bytes = tokenizer_.TokenBytes(id, /*at_start=*/!seen_text_token_);
  if (tokenizer_.Type(id) != TokenType::kControl) seen_text_token_ = true;
  if (bytes.empty()) return "";
  pending_ += bytes;
  const size_t held = IncompleteTailLength(pending_);
  std::string ready = ToValidUtf8(std::string_view(pending_).substr(0, pending_.size() - held));
  pending_.erase(0, pending_.size() - held);
  return ready;
}

void Detokenizer::ContinueAfter(const std::vector<TokenId>& prompt) {
  for (TokenId id : prompt) {
    if (id >= 0 && id < tokenizer_.vocab_size() && tokenizer_.Type(id) != TokenType::kControl) {
      seen_text_token_ = true;
      return;
    }
  }
}

std::string Detokenizer::Flush() {
  std::string rest = ToValidUtf8(pending_);
  pending_.clear();
  seen_text_token_ = false;
  return rest;
}

}  // namespace supercluster::engine
