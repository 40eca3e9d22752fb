// UTF-8 and Unicode character classes for the tokenizers: decoding code points without
// throwing on bad bytes, and the \p{L} / \p{N} / \s questions the pre-tokenizer regexes ask.
// Called by the BPE tokenizers, the detokenizer and their tests.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "engine/unicode_tables.h"

namespace supercluster::engine {

// One decoded character of a UTF-8 string.
struct DecodedChar {
  uint32_t code_point;  // U+FFFD when the bytes are not valid UTF-8
  int length;           // bytes consumed, 1..4; 1 for an invalid byte
  bool valid;
};

// Decodes the character starting at text[offset]. Precondition: offset < text.size().
// Invalid input (stray continuation byte, overlong form, surrogate, truncated sequence)
// yields valid=false and the length of the maximal invalid subpart (1..3 bytes: a lead byte
// and the continuation bytes that could still have followed it), so a caller always makes
// progress and replaces a broken character with one U+FFFD.
DecodedChar DecodeUtf8(std::string_view text, size_t offset);

// Appends the UTF-8 form of code_point (which must be <= 0x10FFFF) to out.
void AppendUtf8(uint32_t code_point, std::string* out);

// The length of a UTF-8 sequence announced by its lead byte: 1..4, or 0 for a byte that
// cannot start one (continuation bytes, 0xC0, 0xC1, 0xF5..0xFF).
int Utf8SequenceLength(uint8_t lead_byte);

// Replaces each maximal invalid subpart of bytes with one U+FFFD.
std::string ToValidUtf8(std::string_view bytes);

CharClass GetCharClass(uint32_t code_point);
bool IsLetter(uint32_t code_point);       // \p{L}
bool IsNumber(uint32_t code_point);       // \p{N}
bool IsWhiteSpace(uint32_t code_point);   // \s: the Unicode White_Space property

// The Unicode version of the class tables.
const char* UnicodeVersion();

}  // namespace supercluster::engine
