// Big-endian reading and writing of the binary message formats in docs/protocol.md
// (OHTTP headers and key configs, chunk framing, multi-recipient envelopes).
//
// WireReader never reads past its input: every Read* returns false instead, leaving the
// output untouched. QUIC variable-length integers are RFC 9000 section 16.
#pragma once

#include <cstdint>

#include "crypto/bytes.h"

namespace supercluster::crypto {

class WireReader {
 public:
  explicit WireReader(ByteView input) : input_(input) {}

  size_t size() const { return input_.size() - offset_; }
  size_t offset() const { return offset_; }
  bool ReadU8(uint8_t* value);
  bool ReadU16(uint16_t* value);
  bool ReadBytes(size_t count, ByteView* bytes);
  // False if the input ends inside the integer.
  bool ReadQuicVarint(uint64_t* value);
  // Everything not read yet; the reader is then at the end.
  ByteView Rest();

 private:
  ByteView input_;
  size_t offset_ = 0;
};

class WireWriter {
 public:
  void U8(uint8_t value) { bytes_.push_back(value); }
  void U16(uint16_t value);
  void Append(ByteView bytes);
  // Precondition: value < 2^62.
  void QuicVarint(uint64_t value);
  Bytes Take() { return std::move(bytes_); }

 private:
  Bytes bytes_;
};

// The largest value a QUIC variable-length integer holds.
inline constexpr uint64_t kMaxQuicVarint = (uint64_t{1} << 62) - 1;

}  // namespace supercluster::crypto
