// The AWS Nitro Enclaves attestation document: the payload of the COSE_Sign1 that the
// Nitro Secure Module returns (aws-nitro-enclaves-nsm-api, docs/attestation_process.md,
// sections 2.2 and 3.2.2), decoded and encoded with every rule of that specification.
//
// Used by the verifier (verifier.h) and the dev attestor, which produces documents in
// exactly this format. Decode rules (each failure is kInvalidArgument naming the field):
//   - the payload is a map with text keys only; unknown keys are refused;
//   - required: module_id (non-empty text), digest (text, exactly "SHA384"), timestamp
//     (unsigned integer > 0, ms since the UNIX epoch), pcrs (map of 1..32 entries, keys
//     unsigned 0..31, values byte strings of 32, 48 or 64 bytes), certificate (byte string
//     of 1..1024 bytes), cabundle (non-empty array of byte strings of 1..1024 bytes);
//   - optional: public_key (0..1024 bytes: the CDDL's `user_data` type; section 3.2.2.2
//     says 1..1024, but a real NSM document (nitro/doc-4.cbor) carries an empty one),
//     user_data (0..512 bytes), nonce (0..512 bytes); CBOR null in an optional field
//     means absent (real documents carry it); null anywhere else is refused.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "attest/bytes.h"
#include "base/status.h"

namespace supercluster::attest {

inline constexpr size_t kMaxPcrCount = 32;
inline constexpr size_t kMaxCertificateBytes = 1024;
inline constexpr size_t kMaxPublicKeyBytes = 1024;
inline constexpr size_t kMaxUserDataBytes = 512;
inline constexpr size_t kMaxNonceBytes = 512;
inline constexpr size_t kMaxAttestationPayloadBytes = 16384;

struct AttestationDocument {
  std::string module_id;
  std::string digest = "SHA384";
  uint64_t timestamp_ms = 0;
  std::map<uint32_t, Bytes> pcrs;  // index -> register value
  Bytes certificate;               // the leaf (signing) certificate, DER
  std::vector<Bytes> cabundle;     // root first, then intermediates, DER
  std::optional<Bytes> public_key;
  std::optional<Bytes> user_data;
  std::optional<Bytes> nonce;

  friend bool operator==(const AttestationDocument&, const AttestationDocument&) = default;
};

// Checks the size and value rules above on an in-memory document.
base::Status ValidateAttestationDocument(const AttestationDocument& document);

// Decodes a COSE_Sign1 payload into a document, applying every rule above.
base::Result<AttestationDocument> DecodeAttestationDocument(ByteView payload);

// Encodes a valid document in AWS's key order (module_id, digest, timestamp, pcrs,
// certificate, cabundle, then the optional fields that are set). Fails on an invalid one.
base::Result<Bytes> EncodeAttestationDocument(const AttestationDocument& document);

}  // namespace supercluster::attest
