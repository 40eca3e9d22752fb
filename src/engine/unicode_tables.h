// The generated Unicode tables (src/engine/unicode_tables.cc, written by
// tools/gen_unicode_tables.py). Only unicode.cc reads them; everyone else calls unicode.h.
#pragma once

#include <cstdint>

namespace supercluster::engine {

// The major class of a Unicode general category (L, M, N, P, S, Z, C).
enum class CharClass : uint8_t {
  kLetter,
  kMark,
  kNumber,
  kPunctuation,
  kSymbol,
  kSeparator,
  kOther,  // Cc, Cf, Cs, Co, Cn: controls, format, surrogates, private use, unassigned
};

struct CharClassRange {
  uint32_t first;
  uint32_t last;  // inclusive
  CharClass char_class;
};

struct CodePointRange {
  uint32_t first;
  uint32_t last;  // inclusive
};

// Sorted, non-overlapping, and together covering 0..0x10FFFF.
extern const CharClassRange kCharClassRanges[];
extern const int kCharClassRangeCount;
// Sorted White_Space ranges.
extern const CodePointRange kWhiteSpaceRanges[];
extern const int kWhiteSpaceRangeCount;
// The Unicode version the tables were generated from, e.g. "14.0.0".
extern const char kUnicodeVersion[];

}  // namespace supercluster::engine
