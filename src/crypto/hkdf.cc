// HKDF (RFC 5869) written on OpenSSL's HMAC (EVP_MAC), so that empty salts and keys have
// exactly the RFC's meaning and inputs can be streamed in pieces (see hkdf_parts.h).
#include "crypto/hkdf.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <algorithm>
#include <memory>
#include <string>

#include "crypto/hkdf_parts.h"

namespace supercluster::crypto {
namespace {

const char* DigestName(HpkeKdf kdf) {
  switch (kdf) {
    case HpkeKdf::kHkdfSha256: return "SHA256";
    case HpkeKdf::kHkdfSha384: return "SHA384";
    case HpkeKdf::kHkdfSha512: return "SHA512";
  }
  return nullptr;
}

// Fetched once per process: fetching is a provider lookup that costs more than an HMAC.
EVP_MAC* HmacAlgorithm() {
  static EVP_MAC* const hmac = EVP_MAC_fetch(nullptr, OSSL_MAC_NAME_HMAC, nullptr);
  return hmac;
}

struct MacContextDeleter {
  void operator()(EVP_MAC_CTX* context) const { EVP_MAC_CTX_free(context); }
};
using MacContext = std::unique_ptr<EVP_MAC_CTX, MacContextDeleter>;

base::Status HmacFailure(const char* step) {
  ERR_clear_error();
  return base::Internal(std::string("HMAC failed in OpenSSL (") + step + ")");
}

// An HMAC context keyed with `key`. HMAC pads a key with zeros to the block size, so an
// empty key is the same as Nh zero bytes; the latter is passed because OpenSSL treats a
// null key as "keep the previous key".
base::Result<MacContext> NewKeyedHmac(HpkeKdf kdf, ByteView key) {
  const char* digest = DigestName(kdf);
  if (digest == nullptr) {
    return base::InvalidArgument("unsupported HKDF id " +
                                 std::to_string(static_cast<unsigned>(kdf)));
  }
  if (HmacAlgorithm() == nullptr) return HmacFailure("fetching HMAC");
  MacContext context(EVP_MAC_CTX_new(HmacAlgorithm()));
  if (!context) return HmacFailure("EVP_MAC_CTX_new");
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, const_cast<char*>(digest), 0),
      OSSL_PARAM_construct_end(),
  };
  static const uint8_t kZeroKey[64] = {};
  ByteView effective_key = key.empty() ? ByteView(kZeroKey, HkdfHashSize(kdf)) : key;
  if (EVP_MAC_init(context.get(), effective_key.data(), effective_key.size(), params) != 1) {
    return HmacFailure("EVP_MAC_init");
  }
  return context;
}

base::Status HmacUpdate(EVP_MAC_CTX* context, ByteView data) {
  if (data.empty()) return base::Status::Ok();
  if (EVP_MAC_update(context, data.data(), data.size()) != 1) {
    return HmacFailure("EVP_MAC_update");
  }
  return base::Status::Ok();
}

base::Status HmacFinal(EVP_MAC_CTX* context, uint8_t* out, size_t size) {
  size_t written = 0;
  if (EVP_MAC_final(context, out, &written, size) != 1 || written != size) {
    return HmacFailure("EVP_MAC_final");
  }
  return base::Status::Ok();
}

}  // namespace

size_t HkdfHashSize(HpkeKdf kdf) {
  switch (kdf) {
    case HpkeKdf::kHkdfSha256: return 32;
    case HpkeKdf::kHkdfSha384: return 48;
    case HpkeKdf::kHkdfSha512: return 64;
  }
  return 0;
}

namespace internal {

base::Result<SecretBytes> HkdfExtractParts(HpkeKdf kdf, ByteView salt,
                                           std::initializer_list<ByteView> ikm_parts) {
  // PRK = HMAC-Hash(salt, IKM); a missing salt is HashLen zeros, which NewKeyedHmac
  // already does for an empty key.
  SC_ASSIGN_OR_RETURN(MacContext context, NewKeyedHmac(kdf, salt));
  for (ByteView part : ikm_parts) SC_RETURN_IF_ERROR(HmacUpdate(context.get(), part));
  SecretBytes prk(HkdfHashSize(kdf));
  SC_RETURN_IF_ERROR(HmacFinal(context.get(), prk.data(), prk.size()));
  return prk;
}

base::Result<SecretBytes> HkdfExpandParts(HpkeKdf kdf, ByteView prk,
                                          std::initializer_list<ByteView> info_parts,
                                          size_t length) {
  size_t hash_size = HkdfHashSize(kdf);
  if (hash_size == 0) {
    return base::InvalidArgument("unsupported HKDF id " +
                                 std::to_string(static_cast<unsigned>(kdf)));
  }
  if (length > 255 * hash_size) {
    return base::InvalidArgument("HKDF-Expand length " + std::to_string(length) +
                                 " is above the limit 255 * " + std::to_string(hash_size));
  }
  SC_ASSIGN_OR_RETURN(MacContext context, NewKeyedHmac(kdf, prk));
  SecretBytes okm(length);
  SecretBytes block(hash_size);  // T(i)
  size_t produced = 0;
  for (uint8_t counter = 1; produced < length; ++counter) {
    // T(i) = HMAC-Hash(PRK, T(i-1) || info || i), with T(0) empty.
    if (counter > 1) {
      // A null key re-initializes with the key already set.
      if (EVP_MAC_init(context.get(), nullptr, 0, nullptr) != 1) {
        return HmacFailure("EVP_MAC_init (next block)");
      }
      SC_RETURN_IF_ERROR(HmacUpdate(context.get(), block.view()));
    }
    for (ByteView part : info_parts) SC_RETURN_IF_ERROR(HmacUpdate(context.get(), part));
    SC_RETURN_IF_ERROR(HmacUpdate(context.get(), ByteView(&counter, 1)));
    SC_RETURN_IF_ERROR(HmacFinal(context.get(), block.data(), block.size()));
    size_t take = std::min(hash_size, length - produced);
    std::copy_n(block.data(), take, okm.data() + produced);
    produced += take;
  }
  return okm;
}

}  // namespace internal

base::Result<SecretBytes> HkdfExtract(HpkeKdf kdf, ByteView salt, ByteView ikm) {
  return internal::HkdfExtractParts(kdf, salt, {ikm});
}

base::Result<SecretBytes> HkdfExpand(HpkeKdf kdf, ByteView prk, ByteView info, size_t length) {
  return internal::HkdfExpandParts(kdf, prk, {info}, length);
}

}  // namespace supercluster::crypto
