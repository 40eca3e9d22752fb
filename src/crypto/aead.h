// AEAD encryption with an explicit key and nonce (AES-GCM and ChaCha20-Poly1305).
//
// HPKE contexts use it underneath; the OHTTP response layer uses it directly, with the key
// and nonce it derives from an HPKE export (RFC 9458 section 4.4).
#pragma once

#include "base/status.h"
#include "crypto/bytes.h"
#include "crypto/hpke.h"

namespace supercluster::crypto {

// Precondition: aead is not kExportOnly. A key or nonce of the wrong length is
// kInvalidArgument. The ciphertext is the encrypted bytes followed by the 16-byte tag.
base::Result<Bytes> AeadSeal(HpkeAead aead, ByteView key, ByteView nonce, ByteView aad,
                             ByteView plaintext);
// An authentication failure is kPermissionDenied "decryption failed".
base::Result<Bytes> AeadOpen(HpkeAead aead, ByteView key, ByteView nonce, ByteView aad,
                             ByteView ciphertext);

}  // namespace supercluster::crypto
