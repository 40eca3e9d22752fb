// Tests of eight bytes at a time, for the byte scans on every request's path: a field
// value for CR, LF and NUL, a request target for control characters, a JSON string for
// the bytes that end its plain runs (router/requested_model.cc). Each test says whether
// SOME byte of a word has a property; a word that passes is skipped whole, and only a
// word that fails needs looking at byte by byte (the tests are exact for "some", not for
// which byte).
//
// They are the classic bit tricks: (w - 0x0101..) & ~w & 0x8080.. is nonzero exactly when
// some byte of w is zero, because only a zero byte borrows into its own top bit from
// nothing; a borrow that runs on into the next byte starts at such a byte, so it can
// only add flags above a true one.
#pragma once

#include <cstdint>
#include <cstring>
#include <string_view>

namespace supercluster::net::internal {

inline constexpr uint64_t kEveryByteOne = 0x0101010101010101;
inline constexpr uint64_t kEveryByteTop = 0x8080808080808080;

// The eight bytes at `bytes` as a word (any alignment; byte order does not matter to the
// tests below).
inline uint64_t LoadWord(const char* bytes) {
  uint64_t word;
  std::memcpy(&word, bytes, sizeof word);
  return word;
}

inline bool SomeByteIsZero(uint64_t word) {
  return ((word - kEveryByteOne) & ~word & kEveryByteTop) != 0;
}

inline bool SomeByteIs(uint64_t word, unsigned char value) {
  return SomeByteIsZero(word ^ (kEveryByteOne * value));
}

// Precondition: limit <= 0x80.
inline bool SomeByteIsBelow(uint64_t word, unsigned char limit) {
  return ((word - kEveryByteOne * limit) & ~word & kEveryByteTop) != 0;
}

// Some byte is 0x80 or above (not ASCII).
inline bool SomeByteIsHigh(uint64_t word) { return (word & kEveryByteTop) != 0; }

// The position of the first CR, LF or NUL in `text` at or after `from`, or npos: the bytes
// a header value must not hold (they would end the line, or the string, early).
inline size_t FindLineBreakOrNul(std::string_view text, size_t from = 0) {
  size_t at = from;
  while (at + 8 <= text.size()) {
    const uint64_t word = LoadWord(text.data() + at);
    if (SomeByteIsZero(word) || SomeByteIs(word, '\r') || SomeByteIs(word, '\n')) break;
    at += 8;
  }
  for (; at < text.size(); ++at) {
    const char c = text[at];
    if (c == '\r' || c == '\n' || c == '\0') return at;
  }
  return std::string_view::npos;
}

}  // namespace supercluster::net::internal
