#include "crypto/bytes.h"

namespace supercluster::crypto {
namespace {

// The value of one hex digit, or -1 if `c` is not one (either case is accepted).
int HexDigitValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string ToHex(ByteView bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  // Sized once and written by index: a push_back per digit (a capacity check each) was
  // most of the 1.3k instructions a router spent per request hex-encoding an API key's
  // SHA-256 (callgrind).
  std::string hex(bytes.size() * 2, '\0');
  for (size_t i = 0; i < bytes.size(); ++i) {
    hex[2 * i] = kDigits[bytes[i] >> 4];
    hex[2 * i + 1] = kDigits[bytes[i] & 0x0f];
  }
  return hex;
}

bool FromHex(std::string_view hex, Bytes* out) {
  if (hex.size() % 2 != 0) return false;
  Bytes decoded;
  decoded.reserve(hex.size() / 2);
  for (size_t i = 0; i < hex.size(); i += 2) {
    int high = HexDigitValue(hex[i]);
    int low = HexDigitValue(hex[i + 1]);
    if (high < 0 || low < 0) return false;
    decoded.push_back(static_cast<uint8_t>((high << 4) | low));
  }
  // `out` is only touched on success, so a failed parse leaves the caller's value intact.
  *out = std::move(decoded);
  return true;
}

Bytes Concat(std::initializer_list<ByteView> parts) {
  size_t total = 0;
  for (ByteView part : parts) total += part.size();
  Bytes joined;
  joined.reserve(total);
  for (ByteView part : parts) joined.insert(joined.end(), part.begin(), part.end());
  return joined;
}

}  // namespace supercluster::crypto
