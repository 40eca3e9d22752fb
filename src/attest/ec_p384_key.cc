#include "attest/ec_p384_key.h"

#include <openssl/core_names.h>
#include <openssl/obj_mac.h>
#include <openssl/pem.h>

#include "attest/openssl_util.h"

namespace supercluster::attest {
namespace {

constexpr size_t kScalarSize = 48;

bool IsP384(EVP_PKEY* key) {
  if (EVP_PKEY_get_base_id(key) != EVP_PKEY_EC) return false;
  char group[64] = {};
  size_t length = 0;
  if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                     &length) != 1) {
    return false;
  }
  return std::string(group, length) == "secp384r1";
}

bool HasPrivatePart(EVP_PKEY* key) {
  BIGNUM* scalar = nullptr;
  if (EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_PRIV_KEY, &scalar) != 1) return false;
  BN_clear_free(scalar);
  return true;
}

}  // namespace

base::Result<EcP384Key> EcP384Key::FromOpenSsl(evp_pkey_st* raw_key) {
  openssl::KeyPtr key(raw_key);
  if (!key) return base::InvalidArgument("no key");
  if (!IsP384(key.get())) {
    return base::InvalidArgument("the key is not an ECDSA P-384 (secp384r1) key");
  }
  bool has_private = HasPrivatePart(key.get());
  return EcP384Key(std::shared_ptr<evp_pkey_st>(key.release(), EVP_PKEY_free), has_private);
}

base::Result<EcP384Key> EcP384Key::Generate() {
  EVP_PKEY* key = EVP_EC_gen("P-384");
  if (key == nullptr) {
    return base::Internal("generating a P-384 key: " + openssl::LastError());
  }
  return FromOpenSsl(key);
}

base::Result<EcP384Key> EcP384Key::FromPrivateKeyPem(std::string_view pem) {
  openssl::BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  EVP_PKEY* key = PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr);
  if (key == nullptr) {
    return base::InvalidArgument("not a PEM private key: " + openssl::LastError());
  }
  auto result = FromOpenSsl(key);
  if (result.ok() && !result->has_private_key()) {
    return base::InvalidArgument("the PEM key has no private part");
  }
  return result;
}

base::Result<EcP384Key> EcP384Key::FromPublicKeyPem(std::string_view pem) {
  openssl::BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  EVP_PKEY* key = PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr);
  if (key == nullptr) {
    return base::InvalidArgument("not a PEM public key: " + openssl::LastError());
  }
  return FromOpenSsl(key);
}

base::Result<EcP384Key> EcP384Key::FromPublicKeyDer(ByteView der) {
  const unsigned char* cursor = der.data();
  EVP_PKEY* key = d2i_PUBKEY(nullptr, &cursor, static_cast<long>(der.size()));
  if (key == nullptr) {
    return base::InvalidArgument("not a DER SubjectPublicKeyInfo: " + openssl::LastError());
  }
  if (cursor != der.data() + der.size()) {
    EVP_PKEY_free(key);
    return base::InvalidArgument("trailing bytes after the DER public key");
  }
  return FromOpenSsl(key);
}

base::Result<EcP384Key> EcP384Key::FromPublicPoint(ByteView point) {
  if (point.size() != kP384UncompressedPointSize || point[0] != 0x04) {
    return base::InvalidArgument("a P-384 public point is 97 bytes starting 0x04, got " +
                                 std::to_string(point.size()) + " bytes");
  }
  openssl::KeyContextPtr context(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME,
                                       const_cast<char*>("secp384r1"), 0),
      OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY,
                                        const_cast<uint8_t*>(point.data()), point.size()),
      OSSL_PARAM_construct_end()};
  EVP_PKEY* key = nullptr;
  if (!context || EVP_PKEY_fromdata_init(context.get()) != 1 ||
      EVP_PKEY_fromdata(context.get(), &key, EVP_PKEY_PUBLIC_KEY, params) != 1) {
    return base::InvalidArgument("not a point on P-384: " + openssl::LastError());
  }
  // fromdata does not check that the point lies on the curve; a check context does.
  openssl::KeyContextPtr check(EVP_PKEY_CTX_new_from_pkey(nullptr, key, nullptr));
  if (!check || EVP_PKEY_public_check(check.get()) != 1) {
    EVP_PKEY_free(key);
    return base::InvalidArgument("not a point on P-384: " + openssl::LastError());
  }
  return FromOpenSsl(key);
}

base::Result<std::string> EcP384Key::PrivateKeyPem() const {
  if (!has_private_key_) return base::FailedPrecondition("the key has no private part");
  openssl::BioPtr bio(BIO_new(BIO_s_mem()));
  if (PEM_write_bio_PrivateKey(bio.get(), key_.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return base::Internal("writing the private key: " + openssl::LastError());
  }
  Bytes pem = openssl::BioContents(bio.get());
  std::string text(pem.begin(), pem.end());
  OPENSSL_cleanse(pem.data(), pem.size());
  return text;
}

base::Result<std::string> EcP384Key::PublicKeyPem() const {
  openssl::BioPtr bio(BIO_new(BIO_s_mem()));
  if (PEM_write_bio_PUBKEY(bio.get(), key_.get()) != 1) {
    return base::Internal("writing the public key: " + openssl::LastError());
  }
  Bytes pem = openssl::BioContents(bio.get());
  return std::string(pem.begin(), pem.end());
}

base::Result<Bytes> EcP384Key::PublicKeyDer() const {
  unsigned char* der = nullptr;
  int length = i2d_PUBKEY(key_.get(), &der);
  if (length <= 0) return base::Internal("encoding the public key: " + openssl::LastError());
  Bytes bytes(der, der + length);
  OPENSSL_free(der);
  return bytes;
}

base::Result<Bytes> EcP384Key::PublicKeyPoint() const {
  Bytes point(kP384UncompressedPointSize);
  size_t length = 0;
  if (EVP_PKEY_get_octet_string_param(key_.get(), OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY,
                                      point.data(), point.size(), &length) != 1 ||
      length != kP384UncompressedPointSize) {
    return base::Internal("reading the public point: " + openssl::LastError());
  }
  return point;
}

base::Result<Bytes> EcP384Key::Sign(ByteView message) const {
  if (!has_private_key_) return base::FailedPrecondition("signing needs a private key");
  openssl::DigestContextPtr context(EVP_MD_CTX_new());
  size_t der_length = 0;
  if (!context ||
      EVP_DigestSignInit(context.get(), nullptr, EVP_sha384(), nullptr, key_.get()) != 1 ||
      EVP_DigestSign(context.get(), nullptr, &der_length, message.data(), message.size()) != 1) {
    return base::Internal("ECDSA sign: " + openssl::LastError());
  }
  Bytes der(der_length);
  if (EVP_DigestSign(context.get(), der.data(), &der_length, message.data(), message.size()) != 1) {
    return base::Internal("ECDSA sign: " + openssl::LastError());
  }
  const unsigned char* cursor = der.data();
  openssl::EcdsaSigPtr signature(d2i_ECDSA_SIG(nullptr, &cursor, static_cast<long>(der_length)));
  if (!signature) return base::Internal("ECDSA sign: unreadable DER signature");
  Bytes raw(kEs384SignatureSize);
  if (BN_bn2binpad(ECDSA_SIG_get0_r(signature.get()), raw.data(), kScalarSize) != kScalarSize ||
      BN_bn2binpad(ECDSA_SIG_get0_s(signature.get()), raw.data() + kScalarSize, kScalarSize) !=
          kScalarSize) {
    return base::Internal("ECDSA sign: r or s longer than 48 bytes");
  }
  return raw;
}

base::Status EcP384Key::Verify(ByteView message, ByteView signature) const {
  if (signature.size() != kEs384SignatureSize) {
    return base::PermissionDenied("an ES384 signature is 96 bytes, got " +
                                  std::to_string(signature.size()));
  }
  openssl::EcdsaSigPtr parsed(ECDSA_SIG_new());
  BIGNUM* r = BN_bin2bn(signature.data(), kScalarSize, nullptr);
  BIGNUM* s = BN_bin2bn(signature.data() + kScalarSize, kScalarSize, nullptr);
  if (!parsed || r == nullptr || s == nullptr || ECDSA_SIG_set0(parsed.get(), r, s) != 1) {
    BN_free(r);
    BN_free(s);
    return base::Internal("ECDSA verify: out of memory");
  }
  unsigned char* der = nullptr;
  int der_length = i2d_ECDSA_SIG(parsed.get(), &der);
  if (der_length <= 0) return base::Internal("ECDSA verify: encoding the signature");
  openssl::DigestContextPtr context(EVP_MD_CTX_new());
  int verified = 0;
  if (context &&
      EVP_DigestVerifyInit(context.get(), nullptr, EVP_sha384(), nullptr, key_.get()) == 1) {
    verified = EVP_DigestVerify(context.get(), der, static_cast<size_t>(der_length),
                                message.data(), message.size());
  }
  OPENSSL_free(der);
  ERR_clear_error();
  if (verified != 1) return base::PermissionDenied("the ES384 signature does not verify");
  return base::Status::Ok();
}

}  // namespace supercluster::attest
