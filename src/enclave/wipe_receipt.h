// Wipe receipts: the enclave's signed statement that it destroyed its key material and
// every response context, the proof a controller needs before an instance is reused
// ("no receipt, no reuse").
//
// A receipt is a COSE_Sign1 (ES384) whose payload is a JSON object (docs/protocol.md),
// signed by the receipt key whose public half is in the enclave's attestation document
// (identity.h). Verify it with that key, taken from a document the verifier accepted.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "attest/ec_p384_key.h"
#include "base/status.h"
#include "crypto/bytes.h"

namespace supercluster::enclave {

struct WipeReceipt {
  std::string hpke_public_key_hex;  // the key that was destroyed
  int64_t wiped_at_ms = 0;          // wall clock, ms since the Unix epoch
  uint64_t contexts_opened = 0;     // response contexts created since start
  uint64_t contexts_closed = 0;     // ... finished or closed before the wipe
  uint64_t contexts_destroyed = 0;  // ... still open at the wipe, destroyed by it
  uint64_t requests_refused = 0;    // open requests refused (replay, stale, bad)
  std::vector<std::string> destroyed;  // what was zeroized, by name
};

base::Result<crypto::Bytes> SignWipeReceipt(const WipeReceipt& receipt,
                                            const attest::EcP384Key& receipt_key);

// Checks the signature with `receipt_key_point` (from the enclave identity) and parses the
// payload. kPermissionDenied if the signature does not verify; kInvalidArgument if the
// receipt is malformed.
base::Result<WipeReceipt> VerifyWipeReceipt(crypto::ByteView receipt,
                                            crypto::ByteView receipt_key_point);

}  // namespace supercluster::enclave
