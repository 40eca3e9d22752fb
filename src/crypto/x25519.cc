#include "crypto/x25519.h"

#include <openssl/err.h>

#include <string>

namespace supercluster::crypto::internal {
namespace {

struct PkeyContextDeleter {
  void operator()(EVP_PKEY_CTX* context) const { EVP_PKEY_CTX_free(context); }
};
using PkeyContext = std::unique_ptr<EVP_PKEY_CTX, PkeyContextDeleter>;

base::Status X25519Failure(const char* step) {
  ERR_clear_error();
  return base::Internal(std::string("X25519 failed in OpenSSL (") + step + ")");
}

}  // namespace

base::Result<EvpPkey> X25519GenerateKey() {
  PkeyContext context(EVP_PKEY_CTX_new_id(EVP_PKEY_X25519, nullptr));
  if (!context) return X25519Failure("EVP_PKEY_CTX_new_id");
  if (EVP_PKEY_keygen_init(context.get()) != 1) return X25519Failure("EVP_PKEY_keygen_init");
  EVP_PKEY* key = nullptr;
  if (EVP_PKEY_keygen(context.get(), &key) != 1) return X25519Failure("EVP_PKEY_keygen");
  return EvpPkey(key);
}

base::Result<EvpPkey> X25519PrivateKey(ByteView private_key) {
  if (private_key.size() != kX25519KeySize) {
    return base::InvalidArgument("X25519 private key must be 32 bytes, got " +
                                 std::to_string(private_key.size()));
  }
  EvpPkey key(EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, nullptr, private_key.data(),
                                           private_key.size()));
  if (!key) return X25519Failure("EVP_PKEY_new_raw_private_key");
  return key;
}

base::Result<EvpPkey> X25519PublicKey(ByteView public_key) {
  if (public_key.size() != kX25519KeySize) {
    return base::InvalidArgument("X25519 public key must be 32 bytes, got " +
                                 std::to_string(public_key.size()));
  }
  EvpPkey key(EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, nullptr, public_key.data(),
                                          public_key.size()));
  if (!key) return X25519Failure("EVP_PKEY_new_raw_public_key");
  return key;
}

base::Result<Bytes> X25519PublicKeyBytes(EVP_PKEY* key) {
  Bytes public_key(kX25519KeySize);
  size_t size = public_key.size();
  if (EVP_PKEY_get_raw_public_key(key, public_key.data(), &size) != 1 ||
      size != kX25519KeySize) {
    return X25519Failure("EVP_PKEY_get_raw_public_key");
  }
  return public_key;
}

base::Result<SecretBytes> X25519PrivateKeyBytes(EVP_PKEY* key) {
  SecretBytes private_key(kX25519KeySize);
  size_t size = private_key.size();
  if (EVP_PKEY_get_raw_private_key(key, private_key.data(), &size) != 1 ||
      size != kX25519KeySize) {
    return X25519Failure("EVP_PKEY_get_raw_private_key");
  }
  return private_key;
}

base::Result<SecretBytes> X25519SharedSecret(EVP_PKEY* private_key, EVP_PKEY* peer_public_key) {
  PkeyContext context(EVP_PKEY_CTX_new(private_key, nullptr));
  if (!context) return X25519Failure("EVP_PKEY_CTX_new");
  if (EVP_PKEY_derive_init(context.get()) != 1) return X25519Failure("EVP_PKEY_derive_init");
  if (EVP_PKEY_derive_set_peer(context.get(), peer_public_key) != 1) {
    return X25519Failure("EVP_PKEY_derive_set_peer");
  }
  SecretBytes shared(kX25519KeySize);
  size_t size = shared.size();
  // OpenSSL itself fails the derivation when the result is all zeros (a small-order peer
  // key); that, not a bug, is the one way it fails once the context is set up.
  if (EVP_PKEY_derive(context.get(), shared.data(), &size) != 1 || size != kX25519KeySize) {
    ERR_clear_error();
    return base::PermissionDenied(
        "X25519 key agreement refused: the peer public key is a small-order point "
        "(all-zero shared secret)");
  }
  // Checked again here so the refusal does not rest on one OpenSSL version's behaviour.
  static const uint8_t kZeros[kX25519KeySize] = {};
  if (ConstantTimeEquals(shared.view(), ByteView(kZeros))) {
    return base::PermissionDenied(
        "X25519 key agreement refused: the peer public key is a small-order point "
        "(all-zero shared secret)");
  }
  return shared;
}

}  // namespace supercluster::crypto::internal
