// Secret bytes: key material that is wiped from memory when it is no longer needed.
//
// SecretBytes is move-only (a copy must be asked for with Copy()), zeroizes its buffer on
// destruction and on Wipe(), and is never printed. ConstantTimeEquals compares secrets (MACs,
// tags, tokens) without leaking where they differ through timing.
#pragma once

#include <cstddef>
#include <cstdint>

#include "crypto/bytes.h"

namespace supercluster::crypto {

// Overwrites `size` bytes at `data` with zeros in a way the compiler may not elide.
void Zeroize(void* data, size_t size);

// True if a and b have the same length and contents; the time taken depends only on the
// lengths.
bool ConstantTimeEquals(ByteView a, ByteView b);

class SecretBytes {
 public:
  SecretBytes() = default;
  explicit SecretBytes(size_t size);  // zero-filled
  explicit SecretBytes(ByteView bytes);
  ~SecretBytes();
  SecretBytes(SecretBytes&& other) noexcept;
  SecretBytes& operator=(SecretBytes&& other) noexcept;
  SecretBytes(const SecretBytes&) = delete;
  SecretBytes& operator=(const SecretBytes&) = delete;

  SecretBytes Copy() const { return SecretBytes(view()); }
  uint8_t* data() { return bytes_.data(); }
  const uint8_t* data() const { return bytes_.data(); }
  size_t size() const { return bytes_.size(); }
  bool empty() const { return bytes_.empty(); }
  ByteView view() const { return bytes_; }
  // Zeroizes and empties.
  void Wipe();

 private:
  Bytes bytes_;
};

}  // namespace supercluster::crypto
