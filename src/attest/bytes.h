// Byte buffers as the attest module passes them around, and hex for messages and CLIs.
//
// The same types as crypto/bytes.h (std::vector<uint8_t> and std::span<const uint8_t>), so
// values pass between the two modules without conversion; attest keeps its own header so
// that it does not depend on the crypto module's implementation files.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace supercluster::attest {

using Bytes = std::vector<uint8_t>;
using ByteView = std::span<const uint8_t>;

inline ByteView AsByteView(std::string_view text) {
  return {reinterpret_cast<const uint8_t*>(text.data()), text.size()};
}
inline Bytes BytesOf(std::string_view text) {
  ByteView view = AsByteView(text);
  return Bytes(view.begin(), view.end());
}

// Lower-case hex of `bytes`, e.g. "00ff".
inline std::string HexOf(ByteView bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(bytes.size() * 2);
  for (uint8_t byte : bytes) {
    hex.push_back(kDigits[byte >> 4]);
    hex.push_back(kDigits[byte & 0xf]);
  }
  return hex;
}

// Inverse of HexOf (either case); false on odd length or a non-hex character.
inline bool BytesFromHex(std::string_view hex, Bytes* out) {
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  if (hex.size() % 2 != 0) return false;
  Bytes bytes;
  bytes.reserve(hex.size() / 2);
  for (size_t i = 0; i < hex.size(); i += 2) {
    int high = nibble(hex[i]);
    int low = nibble(hex[i + 1]);
    if (high < 0 || low < 0) return false;
    bytes.push_back(static_cast<uint8_t>(high << 4 | low));
  }
  *out = std::move(bytes);
  return true;
}

}  // namespace supercluster::attest
