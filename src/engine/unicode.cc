#include "engine/unicode.h"

#include <algorithm>

namespace supercluster::engine {

int Utf8SequenceLength(uint8_t lead_byte) {
  if (lead_byte < 0x80) return 1;
  if (lead_byte < 0xC2) return 0;
  if (lead_byte < 0xE0) return 2;
  if (lead_byte < 0xF0) return 3;
  if (lead_byte < 0xF5) return 4;
  return 0;
}

DecodedChar DecodeUtf8(std::string_view text, size_t offset) {
  const auto lead = static_cast<uint8_t>(text[offset]);
  const int length = Utf8SequenceLength(lead);
  if (length == 1) return {lead, 1, true};
  if (length == 0) return {0xFFFD, 1, false};
  // The range of the second byte excludes overlong forms (E0, F0), surrogates (ED) and code
  // points past U+10FFFF (F4); later bytes are any continuation byte.
  uint8_t second_min = 0x80, second_max = 0xBF;
  if (lead == 0xE0) second_min = 0xA0;
  if (lead == 0xED) second_max = 0x9F;
  if (lead == 0xF0) second_min = 0x90;
  if (lead == 0xF4) second_max = 0x8F;
  uint32_t code_point = lead & (0x7F >> length);
  for (int i = 1; i < length; ++i) {
    if (offset + i >= text.size()) return {0xFFFD, i, false};
    const auto byte = static_cast<uint8_t>(text[offset + i]);
    const uint8_t low = i == 1 ? second_min : 0x80;
    const uint8_t high = i == 1 ? second_max : 0xBF;
    // A bad byte ends the "maximal subpart": the bytes before it are replaced as one unit
    // (Unicode's recommended practice, as Python and the WHATWG decoder do).
    if (byte < low || byte > high) return {0xFFFD, i, false};
    code_point = (code_point << 6) | (byte & 0x3F);
  }
  return {code_point, length, true};
}

void AppendUtf8(uint32_t code_point, std::string* out) {
  if (code_point < 0x80) {
    out->push_back(static_cast<char>(code_point));
  } else if (code_point < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (code_point >> 6)));
    out->push_back(static_cast<char>(0x80 | (code_point & 0x3F)));
  } else if (code_point < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (code_point >> 12)));
    out->push_back(static_cast<char>(0x80 | ((code_point >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (code_point & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (code_point >> 18)));
    out->push_back(static_cast<char>(0x80 | ((code_point >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((code_point >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (code_point & 0x3F)));
  }
}

std::string ToValidUtf8(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  for (size_t offset = 0; offset < bytes.size();) {
    const DecodedChar decoded = DecodeUtf8(bytes, offset);
    if (decoded.valid) {
      out.append(bytes.substr(offset, decoded.length));
    } else {
      AppendUtf8(0xFFFD, &out);
    }
    offset += decoded.length;
  }
  return out;
}

CharClass GetCharClass(uint32_t code_point) {
  const CharClassRange* begin = kCharClassRanges;
  const CharClassRange* end = kCharClassRanges + kCharClassRangeCount;
  // The first range whose last code point is >= code_point holds it (the ranges tile).
  const CharClassRange* found = std::lower_bound(
      begin, end, code_point,
      [](const CharClassRange& range, uint32_t value) { return range.last < value; });
  return found == end ? CharClass::kOther : found->char_class;
}

bool IsLetter(uint32_t code_point) { return GetCharClass(code_point) == CharClass::kLetter; }
bool IsNumber(uint32_t code_point) { return GetCharClass(code_point) == CharClass::kNumber; }

bool IsWhiteSpace(uint32_t code_point) {
  for (int i = 0; i < kWhiteSpaceRangeCount; ++i) {
    if (code_point < kWhiteSpaceRanges[i].first) return false;
    if (code_point <= kWhiteSpaceRanges[i].last) return true;
  }
  return false;
}

const char* UnicodeVersion() { return kUnicodeVersion; }

}  // namespace supercluster::engine
