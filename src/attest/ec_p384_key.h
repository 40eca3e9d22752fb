// EcP384Key: an ECDSA P-384 key (public, or a private key with its public half) on
// OpenSSL 3, signing and verifying with SHA-384 the way COSE ES384 wants it: the signature
// is the raw 96 bytes r || s (each big-endian, left-padded to 48 bytes), not DER.
//
// Used by COSE_Sign1 (cose_sign1.h), the verifier (the leaf certificate's key), the dev
// attestor and CA (dev_attestor.h) and the enclave (wipe receipts). Copies share the same
// immutable OpenSSL key. OpenSSL types stay out of this header.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "attest/bytes.h"
#include "base/status.h"

struct evp_pkey_st;  // OpenSSL's EVP_PKEY

namespace supercluster::attest {

inline constexpr size_t kEs384SignatureSize = 96;       // r || s
inline constexpr size_t kP384UncompressedPointSize = 97;  // 0x04 || X || Y

class EcP384Key {
 public:
  // A fresh private key from OpenSSL's CSPRNG.
  static base::Result<EcP384Key> Generate();
  // PKCS#8 or SEC1 ("EC PRIVATE KEY") PEM; fails unless the curve is P-384.
  static base::Result<EcP384Key> FromPrivateKeyPem(std::string_view pem);
  // SubjectPublicKeyInfo PEM ("PUBLIC KEY") or DER.
  static base::Result<EcP384Key> FromPublicKeyPem(std::string_view pem);
  static base::Result<EcP384Key> FromPublicKeyDer(ByteView der);
  // X9.62 uncompressed point, 97 bytes starting 0x04.
  static base::Result<EcP384Key> FromPublicPoint(ByteView point);
  // Takes ownership of one reference to `key`; fails (and frees it) unless it is P-384.
  static base::Result<EcP384Key> FromOpenSsl(evp_pkey_st* key);

  bool has_private_key() const { return has_private_key_; }

  // PKCS#8 PEM. Precondition: has_private_key(). The caller must keep the text secret.
  base::Result<std::string> PrivateKeyPem() const;
  base::Result<std::string> PublicKeyPem() const;
  base::Result<Bytes> PublicKeyDer() const;    // SubjectPublicKeyInfo
  base::Result<Bytes> PublicKeyPoint() const;  // 97-byte uncompressed point

  // ECDSA over SHA-384(message); returns r || s. Precondition: has_private_key().
  base::Result<Bytes> Sign(ByteView message) const;
  // OK if `signature` (r || s, 96 bytes) is valid for SHA-384(message); otherwise
  // kPermissionDenied saying why.
  base::Status Verify(ByteView message, ByteView signature) const;

  // The OpenSSL key, for code in this module that builds certificates. Never null.
  evp_pkey_st* openssl_key() const { return key_.get(); }

 private:
  EcP384Key(std::shared_ptr<evp_pkey_st> key, bool has_private_key)
      : key_(std::move(key)), has_private_key_(has_private_key) {}

  std::shared_ptr<evp_pkey_st> key_;
  bool has_private_key_ = false;
};

}  // namespace supercluster::attest
