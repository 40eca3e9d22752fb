// X25519 (RFC 7748) through OpenSSL's EVP_PKEY: the Diffie-Hellman group under HPKE's
// DHKEM(X25519, HKDF-SHA256). Private to the crypto module (dhkem.cc uses it).
#pragma once

#include <openssl/evp.h>

#include <memory>
#include <utility>

#include "base/status.h"
#include "crypto/bytes.h"
#include "crypto/hpke.h"
#include "crypto/secret.h"

namespace supercluster::crypto::internal {

inline constexpr size_t kX25519KeySize = 32;

struct EvpPkeyDeleter {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
using EvpPkey = std::unique_ptr<EVP_PKEY, EvpPkeyDeleter>;

// A fresh key from the OS CSPRNG.
base::Result<EvpPkey> X25519GenerateKey();
// From the 32-byte raw private key; any 32 bytes are a valid (clamped) scalar.
base::Result<EvpPkey> X25519PrivateKey(ByteView private_key);
// From the 32-byte raw public key; a wrong length is kInvalidArgument.
base::Result<EvpPkey> X25519PublicKey(ByteView public_key);

base::Result<Bytes> X25519PublicKeyBytes(EVP_PKEY* key);
base::Result<SecretBytes> X25519PrivateKeyBytes(EVP_PKEY* key);

// DH(private, peer): the 32-byte shared secret. An all-zero result, which is what a
// small-order peer key gives, is refused with kPermissionDenied (RFC 9180 section 7.1.4).
base::Result<SecretBytes> X25519SharedSecret(EVP_PKEY* private_key, EVP_PKEY* peer_public_key);

// Builds HpkeKeyPairs and reads the OpenSSL key inside one (see HpkeKeyPair::openssl_key_);
// null for a moved-from pair.
struct HpkeKeyPairAccess {
  static HpkeKeyPair Make(HpkeKem kem, SecretBytes private_key, Bytes public_key,
                          std::shared_ptr<evp_pkey_st> openssl_key) {
    return HpkeKeyPair(kem, std::move(private_key), std::move(public_key),
                       std::move(openssl_key));
  }
  static EVP_PKEY* OpenSslKey(const HpkeKeyPair& pair) { return pair.openssl_key_.get(); }
};

}  // namespace supercluster::crypto::internal
