#include "crypto/wire.h"

namespace supercluster::crypto {

bool WireReader::ReadU8(uint8_t* value) {
  if (size() < 1) return false;
  *value = input_[offset_++];
  return true;
}

bool WireReader::ReadU16(uint16_t* value) {
  if (size() < 2) return false;
  *value = static_cast<uint16_t>(input_[offset_] << 8 | input_[offset_ + 1]);
  offset_ += 2;
  return true;
}

bool WireReader::ReadBytes(size_t count, ByteView* bytes) {
  if (size() < count) return false;
  *bytes = input_.subspan(offset_, count);
  offset_ += count;
  return true;
}

bool WireReader::ReadQuicVarint(uint64_t* value) {
  if (size() < 1) return false;
  // The top two bits of the first byte give the length: 1, 2, 4 or 8 bytes.
  size_t length = size_t{1} << (input_[offset_] >> 6);
  if (size() < length) return false;
  uint64_t result = input_[offset_] & 0x3F;
  for (size_t i = 1; i < length; ++i) result = result << 8 | input_[offset_ + i];
  offset_ += length;
  *value = result;
  return true;
}

ByteView WireReader::Rest() {
  ByteView rest = input_.subspan(offset_);
  offset_ = input_.size();
  return rest;
}

void WireWriter::U16(uint16_t value) {
  bytes_.push_back(static_cast<uint8_t>(value >> 8));
  bytes_.push_back(static_cast<uint8_t>(value));
}

// Out of line on purpose: inlined into callers, GCC 12 at -O3 warns (falsely) that the
// insert into an empty vector overflows it (-Wstringop-overflow).
void WireWriter::Append(ByteView bytes) { bytes_.insert(bytes_.end(), bytes.begin(), bytes.end()); }

void WireWriter::QuicVarint(uint64_t value) {
  int length_bits;
  size_t length;
  if (value < (1u << 6)) {
    length_bits = 0, length = 1;
  } else if (value < (1u << 14)) {
    length_bits = 1, length = 2;
  } else if (value < (uint64_t{1} << 30)) {
    length_bits = 2, length = 4;
  } else {
    length_bits = 3, length = 8;
  }
  for (size_t i = 0; i < length; ++i) {
    uint8_t byte = static_cast<uint8_t>(value >> (8 * (length - 1 - i)));
    if (i == 0) byte = static_cast<uint8_t>((byte & 0x3F) | length_bits << 6);
    bytes_.push_back(byte);
  }
}

}  // namespace supercluster::crypto
