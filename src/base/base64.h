// Base64 (RFC 4648 section 4: the standard alphabet with '=' padding), strict on input: what
// etcd's JSON gateway, attestation documents in store records and sealed stream events use.
#pragma once

#include <string>
#include <string_view>

#include "base/status.h"

namespace supercluster::base {

std::string Base64Encode(std::string_view bytes);

// kDataLoss for a length that is not a multiple of 4, a character outside the alphabet,
// padding anywhere but at the end, or non-zero bits under the padding (so that every byte
// string has exactly one encoding).
Result<std::string> Base64Decode(std::string_view text);

}  // namespace supercluster::base
