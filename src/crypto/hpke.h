// HPKE, Hybrid Public Key Encryption (RFC 9180), on OpenSSL 3 primitives.
//
// What the OHTTP layer, the enclave and the client use to seal a message to a public key.
// Supported: KEM DHKEM(X25519, HKDF-SHA256) (0x0020); KDFs HKDF-SHA256 (0x0001), HKDF-SHA384
// (0x0002) and HKDF-SHA512 (0x0003); AEADs AES-128-GCM (0x0001), AES-256-GCM (0x0002),
// ChaCha20-Poly1305 (0x0003) and export-only (0xFFFF); all four modes (base, psk, auth,
// auth_psk). Sequence numbers are checked for overflow; a context that can no longer seal
// says so instead of reusing a nonce.
//
// A context is not thread-safe: one sender or one recipient, one thread at a time.
#pragma once

#include <cstdint>
#include <memory>

#include "base/status.h"
#include "crypto/bytes.h"
#include "crypto/secret.h"

// OpenSSL's EVP_PKEY, named here so that this header does not include OpenSSL.
struct evp_pkey_st;

namespace supercluster::crypto {
namespace internal {
struct HpkeKeyPairAccess;
}  // namespace internal

enum class HpkeMode : uint8_t { kBase = 0, kPsk = 1, kAuth = 2, kAuthPsk = 3 };
enum class HpkeKem : uint16_t { kX25519Sha256 = 0x0020 };
enum class HpkeKdf : uint16_t { kHkdfSha256 = 0x0001, kHkdfSha384 = 0x0002, kHkdfSha512 = 0x0003 };
enum class HpkeAead : uint16_t {
  kAes128Gcm = 0x0001,
  kAes256Gcm = 0x0002,
  kChaCha20Poly1305 = 0x0003,
  kExportOnly = 0xFFFF,
};

struct HpkeSuite {
  HpkeKem kem = HpkeKem::kX25519Sha256;
  HpkeKdf kdf = HpkeKdf::kHkdfSha256;
  HpkeAead aead = HpkeAead::kAes128Gcm;

  // Builds a suite from wire identifiers; an unsupported id is kInvalidArgument naming it.
  static base::Result<HpkeSuite> FromIds(uint16_t kem, uint16_t kdf, uint16_t aead);
  friend bool operator==(const HpkeSuite&, const HpkeSuite&) = default;
};

// Sizes the suite's algorithms define (RFC 9180 section 7): Nenc, Npk, Nsk, Nk, Nn, Nh.
size_t HpkeEncSize(HpkeKem kem);
size_t HpkePublicKeySize(HpkeKem kem);
size_t HpkeAeadKeySize(HpkeAead aead);    // 0 for export-only
size_t HpkeAeadNonceSize(HpkeAead aead);  // 0 for export-only
size_t HpkeAeadTagSize(HpkeAead aead);    // 0 for export-only

// A KEM key pair. The private key never leaves this object except through private_key(),
// which the enclave uses only to hold it; it is zeroized on destruction.
class HpkeKeyPair {
 public:
  // A fresh key pair from the OS CSPRNG.
  static base::Result<HpkeKeyPair> Generate(HpkeKem kem);
  // DeriveKeyPair(ikm) of RFC 9180 section 7.1.3 (deterministic; for tests and vectors).
  static base::Result<HpkeKeyPair> Derive(HpkeKem kem, ByteView ikm);
  // From a serialized private key (SerializePrivateKey format); checks its length.
  static base::Result<HpkeKeyPair> FromPrivateKey(HpkeKem kem, ByteView private_key);

  HpkeKem kem() const { return kem_; }
  const Bytes& public_key() const { return public_key_; }
  const SecretBytes& private_key() const { return private_key_; }

 private:
  friend struct internal::HpkeKeyPairAccess;
  HpkeKeyPair(HpkeKem kem, SecretBytes private_key, Bytes public_key,
              std::shared_ptr<evp_pkey_st> openssl_key);
  HpkeKem kem_;
  SecretBytes private_key_;
  Bytes public_key_;
  // The private key as OpenSSL holds it (it wipes its copy when freed), parsed once: loading
  // a raw X25519 private key makes OpenSSL recompute the public key, a scalar multiplication
  // as costly as the key agreement itself, which would double the cost of every Open.
  std::shared_ptr<evp_pkey_st> openssl_key_;
};

// The optional inputs of the psk, auth and auth_psk modes. The mode follows from which are
// set: psk and psk_id together (both or neither, RFC 9180 section 5.1.1), and the sender's
// key pair (sender side) or the sender's public key (recipient side) for auth.
struct HpkeSenderOptions {
  ByteView psk;
  ByteView psk_id;
  const HpkeKeyPair* sender_key = nullptr;  // auth modes
  // Tests only: derive the ephemeral key from this instead of the CSPRNG (the vectors' ikmE).
  ByteView ephemeral_ikm;
  // Tests only: use this ephemeral key pair (RFC 9458 Appendix A gives its private key).
  const HpkeKeyPair* ephemeral_key = nullptr;
};
struct HpkeRecipientOptions {
  ByteView psk;
  ByteView psk_id;
  ByteView sender_public_key;  // auth modes
};

// An HPKE encryption context (RFC 9180 section 5.2). A sender context only seals, a
// recipient context only opens; both export.
class HpkeContext {
 public:
  HpkeContext(HpkeContext&&) noexcept;
  HpkeContext& operator=(HpkeContext&&) noexcept;
  ~HpkeContext();

  // Seal/Open with the next sequence number. Open failing (wrong key, tampering) is
  // kPermissionDenied "decryption failed" and does not advance the sequence number.
  base::Result<Bytes> Seal(ByteView aad, ByteView plaintext);
  base::Result<Bytes> Open(ByteView aad, ByteView ciphertext);
  // Secret export (RFC 9180 section 5.3); length at most 255 * Nh.
  base::Result<SecretBytes> Export(ByteView exporter_context, size_t length) const;

  HpkeMode mode() const;
  const HpkeSuite& suite() const;

 private:
  friend class HpkeContextBuilder;
  struct State;
  explicit HpkeContext(std::unique_ptr<State> state);
  // Why the next Seal (sealing) or Open cannot run: moved from, export-only, wrong role,
  // or the sequence number is at its limit. OK if it can.
  base::Status CheckCanProtect(bool sealing) const;
  std::unique_ptr<State> state_;
};

struct HpkeSenderSetup {
  Bytes enc;  // the encapsulated key, sent to the recipient
  HpkeContext context;
};

// SetupBaseS / SetupPSKS / SetupAuthS / SetupAuthPSKS in one call, chosen by `options`.
base::Result<HpkeSenderSetup> HpkeSetupSender(const HpkeSuite& suite,
                                              ByteView recipient_public_key, ByteView info,
                                              const HpkeSenderOptions& options = {});
// SetupBaseR and friends. A malformed `enc` is kInvalidArgument; an all-zero DH result
// (a small-order point) is kPermissionDenied.
base::Result<HpkeContext> HpkeSetupRecipient(const HpkeSuite& suite, ByteView enc,
                                             const HpkeKeyPair& recipient, ByteView info,
                                             const HpkeRecipientOptions& options = {});

// Single-shot APIs (RFC 9180 section 6.1): setup plus one Seal / Open.
struct HpkeSealed {
  Bytes enc;
  Bytes ciphertext;
};
base::Result<HpkeSealed> HpkeSeal(const HpkeSuite& suite, ByteView recipient_public_key,
                                  ByteView info, ByteView aad, ByteView plaintext,
                                  const HpkeSenderOptions& options = {});
base::Result<Bytes> HpkeOpen(const HpkeSuite& suite, ByteView enc, const HpkeKeyPair& recipient,
                             ByteView info, ByteView aad, ByteView ciphertext,
                             const HpkeRecipientOptions& options = {});

}  // namespace supercluster::crypto
