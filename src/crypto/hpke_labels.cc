// HPKE's suite identifiers and labeled KDF calls (RFC 9180 section 4).
#include <string>

#include "crypto/hkdf_parts.h"
#include "crypto/hpke_internal.h"

namespace supercluster::crypto::internal {
namespace {

constexpr std::string_view kVersionLabel = "HPKE-v1";

void AppendUint16(Bytes& out, uint16_t value) {
  out.push_back(static_cast<uint8_t>(value >> 8));
  out.push_back(static_cast<uint8_t>(value & 0xff));
}

}  // namespace

Bytes KemSuiteId(HpkeKem kem) {
  Bytes suite_id = ToBytes("KEM");
  AppendUint16(suite_id, static_cast<uint16_t>(kem));
  return suite_id;
}

Bytes HpkeSuiteId(const HpkeSuite& suite) {
  Bytes suite_id = ToBytes("HPKE");
  AppendUint16(suite_id, static_cast<uint16_t>(suite.kem));
  AppendUint16(suite_id, static_cast<uint16_t>(suite.kdf));
  AppendUint16(suite_id, static_cast<uint16_t>(suite.aead));
  return suite_id;
}

base::Result<SecretBytes> LabeledExtract(HpkeKdf kdf, ByteView suite_id, ByteView salt,
                                         std::string_view label, ByteView ikm) {
  return HkdfExtractParts(kdf, salt, {AsBytes(kVersionLabel), suite_id, AsBytes(label), ikm});
}

base::Result<SecretBytes> LabeledExpand(HpkeKdf kdf, ByteView suite_id, ByteView prk,
                                        std::string_view label, ByteView info, size_t length) {
  // I2OSP(L, 2) cannot hold more; 255 * Nh (at most 16320) is checked by the HKDF below.
  if (length > 0xffff) {
    return base::InvalidArgument("HPKE LabeledExpand length " + std::to_string(length) +
                                 " does not fit in two bytes");
  }
  const uint8_t encoded_length[2] = {static_cast<uint8_t>(length >> 8),
                                     static_cast<uint8_t>(length & 0xff)};
  return HkdfExpandParts(kdf, prk,
                         {ByteView(encoded_length), AsBytes(kVersionLabel), suite_id,
                          AsBytes(label), info},
                         length);
}

}  // namespace supercluster::crypto::internal
