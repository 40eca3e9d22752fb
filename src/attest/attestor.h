// Attestor: what produces an attestation document for this enclave. Two implementations:
// `nitro` (nsm_attestor.h: the Nitro Secure Module, /dev/nsm, inside a real enclave) and
// `dev` (dev_attestor.h: a software attestor signed by a local development root, clearly
// insecure). The enclave service calls Attest() to bind its public key (HPKE or signing
// key) and a verifier's nonce into a document; verifiers treat both the same way
// (verifier.h), only the pinned root differs.
#pragma once

#include <optional>
#include <string_view>

#include "attest/bytes.h"
#include "base/status.h"

namespace supercluster::attest {

class Attestor {
 public:
  virtual ~Attestor() = default;

  // Returns an encoded COSE_Sign1 attestation document (AWS Nitro format) carrying the
  // given optional fields. Limits (from the AWS specification): user_data 0..512 bytes,
  // nonce 0..512 bytes, public_key 1..1024 bytes; kInvalidArgument beyond them.
  virtual base::Result<Bytes> Attest(const std::optional<Bytes>& user_data,
                                     const std::optional<Bytes>& nonce,
                                     const std::optional<Bytes>& public_key) = 0;

  // "nitro" or "dev".
  virtual std::string_view Kind() const = 0;
};

// Checks the optional fields against the limits above.
base::Status CheckAttestationRequest(const std::optional<Bytes>& user_data,
                                     const std::optional<Bytes>& nonce,
                                     const std::optional<Bytes>& public_key);

}  // namespace supercluster::attest
