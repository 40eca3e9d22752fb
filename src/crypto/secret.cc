#include "crypto/secret.h"

#include <openssl/crypto.h>

#include <utility>

namespace supercluster::crypto {

void Zeroize(void* data, size_t size) {
  // memset(nullptr, 0, 0) is undefined behaviour, so an empty buffer is left alone.
  if (data == nullptr || size == 0) return;
  OPENSSL_cleanse(data, size);
}

bool ConstantTimeEquals(ByteView a, ByteView b) {
  // Lengths are public (they travel on the wire); only the contents must not leak.
  if (a.size() != b.size()) return false;
  if (a.empty()) return true;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

SecretBytes::SecretBytes(size_t size) : bytes_(size, 0) {}

SecretBytes::SecretBytes(ByteView bytes) : bytes_(bytes.begin(), bytes.end()) {}

SecretBytes::~SecretBytes() { Wipe(); }

SecretBytes::SecretBytes(SecretBytes&& other) noexcept : bytes_(std::move(other.bytes_)) {
  // A moved-from vector is empty in practice; clear() makes it a guarantee.
  other.bytes_.clear();
}

SecretBytes& SecretBytes::operator=(SecretBytes&& other) noexcept {
  if (this != &other) {
    Wipe();
    bytes_ = std::move(other.bytes_);
    other.bytes_.clear();
  }
  return *this;
}

void SecretBytes::Wipe() {
  Zeroize(bytes_.data(), bytes_.size());
  // The zeroed buffer stays allocated until destruction or the next move; SecretBytes
  // never grows, so no older copy of the contents can be left behind by a reallocation.
  bytes_.clear();
}

}  // namespace supercluster::crypto
