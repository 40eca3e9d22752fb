// Byte buffers as the crypto, attest and enclave modules pass them around.
//
// Bytes owns; ByteView borrows (it must not outlive what it points into). Binary data that
// arrives as std::string (an HTTP body, a file) is viewed with AsBytes() without a copy.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace supercluster::crypto {

using Bytes = std::vector<uint8_t>;
using ByteView = std::span<const uint8_t>;

inline ByteView AsBytes(std::string_view text) {
  return {reinterpret_cast<const uint8_t*>(text.data()), text.size()};
}
inline std::string_view AsText(ByteView bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}
inline Bytes ToBytes(std::string_view text) {
  ByteView view = AsBytes(text);
  return Bytes(view.begin(), view.end());
}
inline std::string ToString(ByteView bytes) { return std::string(AsText(bytes)); }

// Lower-case hex, and its inverse (which fails on odd length or a non-hex digit).
std::string ToHex(ByteView bytes);
bool FromHex(std::string_view hex, Bytes* out);

// a || b || ...
Bytes Concat(std::initializer_list<ByteView> parts);

}  // namespace supercluster::crypto
