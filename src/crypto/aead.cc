// AEAD seal/open on OpenSSL's EVP_CIPHER interface. Every failure path fails closed: no
// partially decrypted bytes are returned, and the output buffer is wiped.
#include "crypto/aead.h"

#include <openssl/err.h>
#include <openssl/evp.h>

#include <climits>
#include <memory>
#include <string>

#include "crypto/secret.h"

namespace supercluster::crypto {
namespace {

constexpr size_t kTagSize = 16;

struct CipherContextDeleter {
  void operator()(EVP_CIPHER_CTX* context) const { EVP_CIPHER_CTX_free(context); }
};
using CipherContext = std::unique_ptr<EVP_CIPHER_CTX, CipherContextDeleter>;

const char* AeadName(HpkeAead aead) {
  switch (aead) {
    case HpkeAead::kAes128Gcm: return "AES-128-GCM";
    case HpkeAead::kAes256Gcm: return "AES-256-GCM";
    case HpkeAead::kChaCha20Poly1305: return "ChaCha20-Poly1305";
    case HpkeAead::kExportOnly: return "export-only";
  }
  return "unknown AEAD";
}

// The ciphers are fetched once per process: a fetch is a provider lookup that would
// otherwise happen on every seal.
const EVP_CIPHER* Cipher(HpkeAead aead) {
  static EVP_CIPHER* const aes128 = EVP_CIPHER_fetch(nullptr, "AES-128-GCM", nullptr);
  static EVP_CIPHER* const aes256 = EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr);
  static EVP_CIPHER* const chacha = EVP_CIPHER_fetch(nullptr, "ChaCha20-Poly1305", nullptr);
  switch (aead) {
    case HpkeAead::kAes128Gcm: return aes128;
    case HpkeAead::kAes256Gcm: return aes256;
    case HpkeAead::kChaCha20Poly1305: return chacha;
    case HpkeAead::kExportOnly: return nullptr;
  }
  return nullptr;
}

base::Status CheckArguments(HpkeAead aead, ByteView key, ByteView nonce, ByteView aad,
                            size_t text_size) {
  if (aead == HpkeAead::kExportOnly || HpkeAeadKeySize(aead) == 0) {
    return base::InvalidArgument(std::string("AEAD ") + AeadName(aead) +
                                 " cannot encrypt (export-only contexts have no AEAD key)");
  }
  if (key.size() != HpkeAeadKeySize(aead)) {
    return base::InvalidArgument(std::string(AeadName(aead)) + " key must be " +
                                 std::to_string(HpkeAeadKeySize(aead)) + " bytes, got " +
                                 std::to_string(key.size()));
  }
  if (nonce.size() != HpkeAeadNonceSize(aead)) {
    return base::InvalidArgument(std::string(AeadName(aead)) + " nonce must be " +
                                 std::to_string(HpkeAeadNonceSize(aead)) + " bytes, got " +
                                 std::to_string(nonce.size()));
  }
  // EVP lengths are ints.
  if (aad.size() > INT_MAX || text_size > INT_MAX - kTagSize) {
    return base::InvalidArgument(std::string(AeadName(aead)) +
                                 ": message or associated data larger than 2 GiB");
  }
  return base::Status::Ok();
}

base::Status EvpFailure(HpkeAead aead, const char* step) {
  ERR_clear_error();
  return base::Internal(std::string(AeadName(aead)) + " failed in OpenSSL (" + step + ")");
}

// A context initialized for `aead` with key and nonce (both already length-checked; the
// ciphers' default IV length is the 12 bytes HPKE uses).
base::Result<CipherContext> NewCipherContext(HpkeAead aead, ByteView key, ByteView nonce,
                                             bool encrypt) {
  const EVP_CIPHER* cipher = Cipher(aead);
  if (cipher == nullptr) return EvpFailure(aead, "fetching the cipher");
  CipherContext context(EVP_CIPHER_CTX_new());
  if (!context) return EvpFailure(aead, "EVP_CIPHER_CTX_new");
  int ok = encrypt ? EVP_EncryptInit_ex2(context.get(), cipher, key.data(), nonce.data(), nullptr)
                   : EVP_DecryptInit_ex2(context.get(), cipher, key.data(), nonce.data(), nullptr);
  if (ok != 1) return EvpFailure(aead, "init");
  return context;
}

}  // namespace

base::Result<Bytes> AeadSeal(HpkeAead aead, ByteView key, ByteView nonce, ByteView aad,
                             ByteView plaintext) {
  SC_RETURN_IF_ERROR(CheckArguments(aead, key, nonce, aad, plaintext.size()));
  SC_ASSIGN_OR_RETURN(CipherContext context, NewCipherContext(aead, key, nonce, true));
  int written = 0;
  if (!aad.empty() &&
      EVP_EncryptUpdate(context.get(), nullptr, &written, aad.data(),
                        static_cast<int>(aad.size())) != 1) {
    return EvpFailure(aead, "associated data");
  }
  Bytes ciphertext(plaintext.size() + kTagSize);
  size_t total = 0;
  if (!plaintext.empty()) {
    if (EVP_EncryptUpdate(context.get(), ciphertext.data(), &written, plaintext.data(),
                          static_cast<int>(plaintext.size())) != 1) {
      return EvpFailure(aead, "encrypt");
    }
    total = static_cast<size_t>(written);
  }
  if (EVP_EncryptFinal_ex(context.get(), ciphertext.data() + total, &written) != 1) {
    return EvpFailure(aead, "final");
  }
  total += static_cast<size_t>(written);
  if (total != plaintext.size()) return EvpFailure(aead, "unexpected output length");
  if (EVP_CIPHER_CTX_ctrl(context.get(), EVP_CTRL_AEAD_GET_TAG, kTagSize,
                          ciphertext.data() + total) != 1) {
    return EvpFailure(aead, "get tag");
  }
  return ciphertext;
}

base::Result<Bytes> AeadOpen(HpkeAead aead, ByteView key, ByteView nonce, ByteView aad,
                             ByteView ciphertext) {
  SC_RETURN_IF_ERROR(CheckArguments(aead, key, nonce, aad, ciphertext.size()));
  // Too short to hold a tag cannot be authentic; it gets the same answer as a bad tag.
  if (ciphertext.size() < kTagSize) return base::PermissionDenied("decryption failed");
  SC_ASSIGN_OR_RETURN(CipherContext context, NewCipherContext(aead, key, nonce, false));
  size_t body_size = ciphertext.size() - kTagSize;
  int written = 0;
  if (!aad.empty() &&
      EVP_DecryptUpdate(context.get(), nullptr, &written, aad.data(),
                        static_cast<int>(aad.size())) != 1) {
    return EvpFailure(aead, "associated data");
  }
  Bytes plaintext(body_size);
  size_t total = 0;
  if (body_size > 0) {
    if (EVP_DecryptUpdate(context.get(), plaintext.data(), &written, ciphertext.data(),
                          static_cast<int>(body_size)) != 1) {
      Zeroize(plaintext.data(), plaintext.size());
      return EvpFailure(aead, "decrypt");
    }
    total = static_cast<size_t>(written);
  }
  // OpenSSL copies the tag in; the const_cast is for its non-const ctrl signature.
  if (EVP_CIPHER_CTX_ctrl(context.get(), EVP_CTRL_AEAD_SET_TAG, kTagSize,
                          const_cast<uint8_t*>(ciphertext.data() + body_size)) != 1) {
    Zeroize(plaintext.data(), plaintext.size());
    return EvpFailure(aead, "set tag");
  }
  if (EVP_DecryptFinal_ex(context.get(), plaintext.data() + total, &written) != 1) {
    // The plaintext was produced before the tag was checked: wipe it, return nothing.
    Zeroize(plaintext.data(), plaintext.size());
    ERR_clear_error();
    return base::PermissionDenied("decryption failed");
  }
  total += static_cast<size_t>(written);
  if (total != body_size) {
    Zeroize(plaintext.data(), plaintext.size());
    return EvpFailure(aead, "unexpected output length");
  }
  return plaintext;
}

}  // namespace supercluster::crypto
