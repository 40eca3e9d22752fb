// The attestation verifier: decides whether an attestation document (AWS Nitro format,
// from the `nitro` or the `dev` attestor) proves that the expected code runs in an
// enclave, under a policy. Clients, the KMS and the controller call it before they send
// anything to an enclave or release a key to it.
//
// Verify() checks, in order: the COSE_Sign1 structure and the document's fields
// (kMalformed); the ES384 signature with the leaf certificate's key (kBadLeafKey when
// that key is not P-384, kBadSignature); that cabundle[0] is byte-for-byte the pinned root
// (kUntrustedRoot); the chain root -> cabundle[1..] -> leaf with OpenSSL at the policy's
// "now" (kCertificateExpired, kCertificateNotYetValid, kChainInvalid), and that the
// document's own timestamp lies inside every chain certificate's validity (so an old
// document fails once its short-lived leaf has expired, and a document cannot claim a
// time its certificates did not cover); the document's age against
// "now" (kFromTheFuture beyond max_clock_skew, kTooOld beyond max_age); the nonce
// (kNonceMismatch); debug mode, i.e. PCR0, PCR1 and PCR2 all zero or absent (kDebugMode
// unless allowed); the measurements (kPcrMismatch).
//
// A rejection is a kPermissionDenied Status whose message reads
// "attestation rejected (<reason name>): <detail>"; RejectionReasonOf() reads the reason
// back. The same verifier serves both attestors: only the pinned root differs, and
// VerifiedAttestation::dev says the document came from the dev attestor.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string_view>
#include <vector>

#include "attest/bytes.h"
#include "attest/ec_p384_key.h"
#include "attest/nitro_document.h"
#include "base/status.h"

namespace supercluster::attest {

enum class RejectionReason {
  kMalformed,               // not a COSE_Sign1 ES384 Nitro document obeying every field rule
  kBadLeafKey,              // the leaf certificate's key is unreadable or not P-384
  kBadSignature,            // the COSE signature does not verify with the leaf's key
  kUntrustedRoot,           // cabundle[0] is not the pinned root
  kChainInvalid,            // the chain from the root to the leaf does not verify
  kCertificateExpired,      // a certificate had expired at the time checked
  kCertificateNotYetValid,  // a certificate was not yet valid at the time checked
  kFromTheFuture,           // the document's timestamp is after now (+ allowed skew)
  kTooOld,                  // the document is older than max_age
  kNonceMismatch,           // expected_nonce was set and the document's differs or is absent
  kDebugMode,               // PCR0..2 are all zero (a debug enclave) and debug is not allowed
  kPcrMismatch,             // no allowed measurement set matches
};

// "malformed", "bad_signature", "untrusted_root", ... (what appears in the message).
const char* RejectionReasonName(RejectionReason reason);

// The reason carried by a Status that Verify() returned; nullopt for OK or any other status.
std::optional<RejectionReason> RejectionReasonOf(const base::Status& status);

// PCR index -> the exact value expected there.
using MeasurementSet = std::map<uint32_t, Bytes>;

struct AttestationPolicy {
  // DER of the one root to trust (AWS_NitroEnclaves_Root-G1, or a dev CA's root).
  Bytes root_certificate;
  // A document passes if, for at least one set, every PCR in the set is present with the
  // same value. Empty: any measurements pass.
  std::vector<MeasurementSet> allowed_measurements;
  // A debug enclave's PCR0..2 are zero: anyone can run any code in it.
  bool allow_debug = false;
  // If set, the document's nonce must be present and equal.
  std::optional<Bytes> expected_nonce;
  // Documents older than this (against now()) are rejected; zero: age is not checked.
  std::chrono::milliseconds max_age{0};
  // How far a document's timestamp may be ahead of now() (clocks differ).
  std::chrono::milliseconds max_clock_skew{std::chrono::minutes(5)};
  // The current time; empty: the system clock. Tests pin it to a document's timestamp.
  std::function<std::chrono::system_clock::time_point()> clock;

  // Sets root_certificate from PEM or DER (see CertificateDer()).
  base::Status SetRootCertificate(ByteView pem_or_der);
  // Pins clock to `unix_ms`.
  void SetFixedTime(uint64_t unix_ms);
};

struct VerifiedAttestation {
  AttestationDocument document;
  EcP384Key leaf_public_key;  // the key that signed the document
  bool dev = false;           // module_id starts "dev-": produced by the dev attestor
};

// Verifies `document` (an encoded COSE_Sign1) under `policy`; see the header comment.
base::Result<VerifiedAttestation> VerifyAttestation(ByteView document,
                                                    const AttestationPolicy& policy);

// True if PCR0, PCR1 and PCR2 are each absent or all zero bytes.
bool IsDebugMode(const AttestationDocument& document);

}  // namespace supercluster::attest
