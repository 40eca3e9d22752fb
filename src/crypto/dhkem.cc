// DHKEM(X25519, HKDF-SHA256) of RFC 9180 section 4.1, and the HpkeKeyPair that holds its keys.
#include <algorithm>
#include <string>

#include "crypto/hpke.h"
#include "crypto/hpke_internal.h"
#include "crypto/x25519.h"

namespace supercluster::crypto {
namespace {

// The KEM's own KDF; fixed by the KEM, whatever KDF the suite's key schedule uses.
constexpr HpkeKdf kKemKdf = HpkeKdf::kHkdfSha256;
constexpr size_t kSharedSecretSize = 32;  // Nsecret

base::Status CheckKem(HpkeKem kem) {
  if (kem != HpkeKem::kX25519Sha256) {
    return base::InvalidArgument("unsupported HPKE KEM id " +
                                 std::to_string(static_cast<unsigned>(kem)) +
                                 " (supported: 0x0020 DHKEM(X25519, HKDF-SHA256))");
  }
  return base::Status::Ok();
}

// ExtractAndExpand(dh, kem_context) (section 4.1).
base::Result<SecretBytes> ExtractAndExpand(HpkeKem kem, ByteView dh, ByteView kem_context) {
  Bytes suite_id = internal::KemSuiteId(kem);
  SC_ASSIGN_OR_RETURN(SecretBytes eae_prk,
                      internal::LabeledExtract(kKemKdf, suite_id, {}, "eae_prk", dh));
  return internal::LabeledExpand(kKemKdf, suite_id, eae_prk.view(), "shared_secret",
                                 kem_context, kSharedSecretSize);
}

// dh1 || dh2 as one secret buffer (the auth modes' two DH results).
SecretBytes JoinSecrets(const SecretBytes& first, const SecretBytes& second) {
  SecretBytes joined(first.size() + second.size());
  std::copy_n(first.data(), first.size(), joined.data());
  std::copy_n(second.data(), second.size(), joined.data() + first.size());
  return joined;
}

}  // namespace

HpkeKeyPair::HpkeKeyPair(HpkeKem kem, SecretBytes private_key, Bytes public_key,
                         std::shared_ptr<evp_pkey_st> openssl_key)
    : kem_(kem),
      private_key_(std::move(private_key)),
      public_key_(std::move(public_key)),
      openssl_key_(std::move(openssl_key)) {}

namespace {

// A key pair around an OpenSSL key, with its raw private and public bytes.
base::Result<HpkeKeyPair> KeyPairFrom(HpkeKem kem, internal::EvpPkey key) {
  SC_ASSIGN_OR_RETURN(SecretBytes private_key, internal::X25519PrivateKeyBytes(key.get()));
  SC_ASSIGN_OR_RETURN(Bytes public_key, internal::X25519PublicKeyBytes(key.get()));
  return internal::HpkeKeyPairAccess::Make(
      kem, std::move(private_key), std::move(public_key),
      std::shared_ptr<evp_pkey_st>(key.release(), internal::EvpPkeyDeleter()));
}

}  // namespace

base::Result<HpkeKeyPair> HpkeKeyPair::Generate(HpkeKem kem) {
  SC_RETURN_IF_ERROR(CheckKem(kem));
  SC_ASSIGN_OR_RETURN(internal::EvpPkey key, internal::X25519GenerateKey());
  return KeyPairFrom(kem, std::move(key));
}

base::Result<HpkeKeyPair> HpkeKeyPair::Derive(HpkeKem kem, ByteView ikm) {
  SC_RETURN_IF_ERROR(CheckKem(kem));
  // DeriveKeyPair for X25519 (section 7.1.3): any 32 bytes are a valid private key.
  Bytes suite_id = internal::KemSuiteId(kem);
  SC_ASSIGN_OR_RETURN(SecretBytes dkp_prk,
                      internal::LabeledExtract(kKemKdf, suite_id, {}, "dkp_prk", ikm));
  SC_ASSIGN_OR_RETURN(SecretBytes private_key,
                      internal::LabeledExpand(kKemKdf, suite_id, dkp_prk.view(), "sk", {},
                                              internal::kX25519KeySize));
  return FromPrivateKey(kem, private_key.view());
}

base::Result<HpkeKeyPair> HpkeKeyPair::FromPrivateKey(HpkeKem kem, ByteView private_key) {
  SC_RETURN_IF_ERROR(CheckKem(kem));
  if (private_key.size() != internal::kX25519KeySize) {
    return base::InvalidArgument("HPKE X25519 private key must be 32 bytes, got " +
                                 std::to_string(private_key.size()));
  }
  SC_ASSIGN_OR_RETURN(internal::EvpPkey key, internal::X25519PrivateKey(private_key));
  return KeyPairFrom(kem, std::move(key));
}

namespace internal {

base::Result<Encapsulation> Encap(HpkeKem kem, ByteView recipient_public_key,
                                  const HpkeKeyPair* sender, ByteView ephemeral_ikm,
                                  const HpkeKeyPair* ephemeral_key) {
  SC_RETURN_IF_ERROR(CheckKem(kem));
  if (sender != nullptr && sender->kem() != kem) {
    return base::InvalidArgument("HPKE sender key is for another KEM than the suite's");
  }
  if (sender != nullptr && HpkeKeyPairAccess::OpenSslKey(*sender) == nullptr) {
    return base::FailedPrecondition("HPKE sender key pair was moved from");
  }
  SC_ASSIGN_OR_RETURN(EvpPkey recipient, X25519PublicKey(recipient_public_key));

  // The ephemeral key stays an OpenSSL key: its raw private bytes are never needed.
  EvpPkey ephemeral;
  if (ephemeral_key != nullptr) {
    SC_ASSIGN_OR_RETURN(ephemeral, X25519PrivateKey(ephemeral_key->private_key().view()));
  } else if (ephemeral_ikm.empty()) {
    SC_ASSIGN_OR_RETURN(ephemeral, X25519GenerateKey());
  } else {
    SC_ASSIGN_OR_RETURN(HpkeKeyPair derived, HpkeKeyPair::Derive(kem, ephemeral_ikm));
    EVP_PKEY* derived_key = HpkeKeyPairAccess::OpenSslKey(derived);
    if (EVP_PKEY_up_ref(derived_key) != 1) {
      return base::Internal("X25519 failed in OpenSSL (EVP_PKEY_up_ref)");
    }
    ephemeral.reset(derived_key);
  }
  SC_ASSIGN_OR_RETURN(Bytes enc, X25519PublicKeyBytes(ephemeral.get()));
  SC_ASSIGN_OR_RETURN(SecretBytes dh, X25519SharedSecret(ephemeral.get(), recipient.get()));

  Encapsulation result;
  if (sender == nullptr) {
    Bytes kem_context = Concat({enc, recipient_public_key});
    SC_ASSIGN_OR_RETURN(result.shared_secret, ExtractAndExpand(kem, dh.view(), kem_context));
  } else {
    SC_ASSIGN_OR_RETURN(SecretBytes dh_static,
                        X25519SharedSecret(HpkeKeyPairAccess::OpenSslKey(*sender),
                                           recipient.get()));
    SecretBytes both = JoinSecrets(dh, dh_static);
    Bytes kem_context = Concat({enc, recipient_public_key, sender->public_key()});
    SC_ASSIGN_OR_RETURN(result.shared_secret, ExtractAndExpand(kem, both.view(), kem_context));
  }
  result.enc = std::move(enc);
  return result;
}

base::Result<SecretBytes> Decap(HpkeKem kem, ByteView enc, const HpkeKeyPair& recipient,
                                ByteView sender_public_key) {
  SC_RETURN_IF_ERROR(CheckKem(kem));
  if (recipient.kem() != kem) {
    return base::InvalidArgument("HPKE recipient key is for another KEM than the suite's");
  }
  if (enc.size() != HpkeEncSize(kem)) {
    return base::InvalidArgument("HPKE enc (encapsulated key) must be " +
                                 std::to_string(HpkeEncSize(kem)) + " bytes, got " +
                                 std::to_string(enc.size()));
  }
  SC_ASSIGN_OR_RETURN(EvpPkey ephemeral, X25519PublicKey(enc));
  EVP_PKEY* recipient_private = HpkeKeyPairAccess::OpenSslKey(recipient);
  if (recipient_private == nullptr) {
    return base::FailedPrecondition("HPKE recipient key pair was moved from");
  }
  SC_ASSIGN_OR_RETURN(SecretBytes dh, X25519SharedSecret(recipient_private, ephemeral.get()));
  if (sender_public_key.empty()) {
    Bytes kem_context = Concat({enc, recipient.public_key()});
    return ExtractAndExpand(kem, dh.view(), kem_context);
  }
  if (sender_public_key.size() != HpkePublicKeySize(kem)) {
    return base::InvalidArgument("HPKE sender public key must be " +
                                 std::to_string(HpkePublicKeySize(kem)) + " bytes, got " +
                                 std::to_string(sender_public_key.size()));
  }
  SC_ASSIGN_OR_RETURN(EvpPkey sender, X25519PublicKey(sender_public_key));
  SC_ASSIGN_OR_RETURN(SecretBytes dh_static,
                      X25519SharedSecret(recipient_private, sender.get()));
  SecretBytes both = JoinSecrets(dh, dh_static);
  Bytes kem_context = Concat({enc, recipient.public_key(), sender_public_key});
  return ExtractAndExpand(kem, both.view(), kem_context);
}

}  // namespace internal
}  // namespace supercluster::crypto
