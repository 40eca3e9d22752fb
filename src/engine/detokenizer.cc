#include "engine/detokenizer.h"

#include "engine/unicode.h"

namespace supercluster::engine {
namespace {

// The length of the tail of bytes that is a proper prefix of a valid UTF-8 sequence (a
// character still waiting for its continuation bytes), 0 if none.
size_t IncompleteTailLength(const std::string& bytes) {
  // A sequence is at most 4 bytes, so its lead byte is among the last 3.
  for (size_t back = 1; back <= 3 && back <= bytes.size(); ++back) {
    const auto byte = static_cast<uint8_t>(bytes[bytes.size() - back]);
    if ((byte & 0xC0) == 0x80) continue;  // continuation byte: keep looking for the lead
    const int length = Utf8SequenceLength(byte);
    if (length <= static_cast<int>(back)) return 0;  // complete, or not a lead byte
    // Check that the bytes so far could still start a valid character (E0 needs A0..BF next,
    // ED excludes surrogates, F0 and F4 bound the range) by completing it with the smallest
    // continuation that DecodeUtf8 would accept.
    std::string trial = bytes.substr(bytes.size() - back);
    for (size_t i = back; i < static_cast<size_t>(length); ++i) trial.push_back('\x80');
    if (!DecodeUtf8(trial, 0).valid) {
      // E0/F0 need a larger second byte; try the largest one too before giving up.
      std::string high = bytes.substr(bytes.size() - back);
      for (size_t i = back; i < static_cast<size_t>(length); ++i) high.push_back('\xBF');
      if (!DecodeUtf8(high, 0).valid) return 0;
    }
    return back;
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

std::string Detokenizer::Flush() {
  std::string rest = ToValidUtf8(pending_);
  pending_.clear();
  seen_text_token_ = false;
  return rest;
}

}  // namespace supercluster::engine
