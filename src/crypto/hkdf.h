// HKDF (RFC 5869), Extract and Expand separately, as HPKE and OHTTP need them.
#pragma once

#include "base/status.h"
#include "crypto/bytes.h"
#include "crypto/hpke.h"
#include "crypto/secret.h"

namespace supercluster::crypto {

// The hash's output length Nh: 32, 48 or 64.
size_t HkdfHashSize(HpkeKdf kdf);
// HKDF-Extract(salt, ikm) -> PRK of HkdfHashSize(kdf) bytes.
base::Result<SecretBytes> HkdfExtract(HpkeKdf kdf, ByteView salt, ByteView ikm);
// HKDF-Expand(prk, info, length); length at most 255 * Nh.
base::Result<SecretBytes> HkdfExpand(HpkeKdf kdf, ByteView prk, ByteView info, size_t length);

}  // namespace supercluster::crypto
