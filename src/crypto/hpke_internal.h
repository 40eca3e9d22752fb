// The pieces of HPKE (RFC 9180) below the public API in hpke.h: labeled KDF calls, the
// DHKEM, the key schedule and nonce computation. Private to the crypto module; its tests
// include it to check intermediate values of the RFC's test vectors.
#pragma once

#include <cstdint>
#include <string_view>

#include "base/status.h"
#include "crypto/bytes.h"
#include "crypto/hpke.h"
#include "crypto/secret.h"

namespace supercluster::crypto {
namespace internal {

// suite_id of the KEM's own KDF calls: "KEM" || I2OSP(kem_id, 2) (section 4.1).
Bytes KemSuiteId(HpkeKem kem);
// suite_id of the key schedule: "HPKE" || I2OSP(kem_id, 2) || I2OSP(kdf_id, 2) ||
// I2OSP(aead_id, 2) (section 5.1).
Bytes HpkeSuiteId(const HpkeSuite& suite);

// LabeledExtract(salt, label, ikm) = Extract(salt, "HPKE-v1" || suite_id || label || ikm).
base::Result<SecretBytes> LabeledExtract(HpkeKdf kdf, ByteView suite_id, ByteView salt,
                                         std::string_view label, ByteView ikm);
// LabeledExpand(prk, label, info, L) =
//   Expand(prk, I2OSP(L, 2) || "HPKE-v1" || suite_id || label || info, L); L <= 255 * Nh.
base::Result<SecretBytes> LabeledExpand(HpkeKdf kdf, ByteView suite_id, ByteView prk,
                                        std::string_view label, ByteView info, size_t length);

// DHKEM(X25519, HKDF-SHA256) (section 4.1). Encap is AuthEncap when `sender` is set;
// `ephemeral_ikm`, when not empty, derives the ephemeral key deterministically, and
// `ephemeral_key`, when set, is used as it is (both for tests only).
struct Encapsulation {
  SecretBytes shared_secret;
  Bytes enc;
};
base::Result<Encapsulation> Encap(HpkeKem kem, ByteView recipient_public_key,
                                  const HpkeKeyPair* sender, ByteView ephemeral_ikm,
                                  const HpkeKeyPair* ephemeral_key = nullptr);
// Decap, or AuthDecap when `sender_public_key` is not empty. A malformed enc or sender key
// is kInvalidArgument; a small-order one (all-zero DH) is kPermissionDenied.
base::Result<SecretBytes> Decap(HpkeKem kem, ByteView enc, const HpkeKeyPair& recipient,
                                ByteView sender_public_key);

// VerifyPSKInputs (section 5.1): psk and psk_id both or neither, and present exactly in the
// psk modes. Failing is kInvalidArgument.
base::Status VerifyPskInputs(HpkeMode mode, ByteView psk, ByteView psk_id);

// The nonce of message `sequence`: base_nonce XOR I2OSP(sequence, Nn) (section 5.2).
// Precondition: base_nonce.size() >= 8.
Bytes ComputeNonce(ByteView base_nonce, uint64_t sequence);

// The largest sequence number a context keeps: a context whose next sequence number is
// this refuses to seal or open (the RFC's MessageLimitReachedError), so no nonce repeats.
inline constexpr uint64_t kMaxSequenceNumber = UINT64_MAX;

}  // namespace internal

// Builds HpkeContexts (the key schedule) and, for tests only, looks inside them.
class HpkeContextBuilder {
 public:
  // KeySchedule<ROLE>(mode, shared_secret, info, psk, psk_id) (section 5.1).
  static base::Result<HpkeContext> KeySchedule(const HpkeSuite& suite, HpkeMode mode,
                                               bool is_sender, ByteView shared_secret,
                                               ByteView info, ByteView psk, ByteView psk_id);

  // Tests only: the context's derived values and sequence number, and a way to move the
  // sequence number close to its limit to test the overflow check without 2^64 messages.
  static ByteView KeyForTesting(const HpkeContext& context);
  static ByteView BaseNonceForTesting(const HpkeContext& context);
  static ByteView ExporterSecretForTesting(const HpkeContext& context);
  static uint64_t SequenceNumberForTesting(const HpkeContext& context);
  static void SetSequenceNumberForTesting(HpkeContext& context, uint64_t sequence);
};

}  // namespace supercluster::crypto
