// Well-formed UTF-8 (RFC 3629, section 4): the one check that every module taking text
// from outside (config files, JSON bodies, error messages it echoes) shares.
#pragma once

#include <cstddef>
#include <string_view>

namespace supercluster::base {

// The length of the well-formed UTF-8 sequence that `text` starts with: 1 for a byte
// below 0x80, 2 to 4 for a multi-byte character, and 0 when `text` is empty or starts with
// anything else (a stray continuation byte, an overlong form, a UTF-16 surrogate, a code
// point above U+10FFFF, a sequence cut short).
size_t Utf8SequenceLength(std::string_view text);

}  // namespace supercluster::base
