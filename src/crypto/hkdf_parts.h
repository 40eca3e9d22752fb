// HKDF over inputs given in pieces: what hkdf.cc builds on and what HPKE's labeled
// functions call, so that a secret input (a DH result, a PSK) is fed to HMAC where it lies
// instead of being copied into a concatenation first. Private to the crypto module.
#pragma once

#include <initializer_list>

#include "base/status.h"
#include "crypto/bytes.h"
#include "crypto/hpke.h"
#include "crypto/secret.h"

namespace supercluster::crypto::internal {

// HKDF-Extract(salt, ikm_parts[0] || ikm_parts[1] || ...).
base::Result<SecretBytes> HkdfExtractParts(HpkeKdf kdf, ByteView salt,
                                           std::initializer_list<ByteView> ikm_parts);
// HKDF-Expand(prk, info_parts[0] || info_parts[1] || ..., length); length <= 255 * Nh.
base::Result<SecretBytes> HkdfExpandParts(HpkeKdf kdf, ByteView prk,
                                          std::initializer_list<ByteView> info_parts,
                                          size_t length);

}  // namespace supercluster::crypto::internal
