// The client library: how a tenant's program talks to the cluster so that only attested
// enclaves can read its prompts. It
//   1. verifies candidate enclaves' attestation documents against a policy (VerifyCandidates),
//   2. seals a request to the accepted ones at once (SealRequest; the router picks one),
//   3. opens the streamed, sealed answer (OpenResponse).
// The response secrets can be saved to a file (mode 0600) and loaded by another process:
// that is what `supercluster seal --keep` and `supercluster open --keep` do.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "attest/verifier.h"
#include "base/status.h"
#include "crypto/chunked_response.h"
#include "crypto/multi_recipient.h"
#include "enclave/identity.h"

namespace supercluster::client {

struct AcceptedEnclave {
  attest::VerifiedAttestation attestation;
  enclave::EnclaveIdentity identity;  // from the document's public_key
};

struct CandidateVerdicts {
  std::vector<AcceptedEnclave> accepted;
  std::vector<std::string> rejections;  // "candidate 2: attestation rejected (...): ..."
};

// Verifies each document under `policy`; a document without an enclave identity in its
// public_key is rejected too. Never fails as a whole: read `accepted` and `rejections`.
CandidateVerdicts VerifyCandidates(const std::vector<crypto::Bytes>& documents,
                                   const attest::AttestationPolicy& policy);

struct SealedRequest {
  crypto::Bytes envelope;  // crypto/multi_recipient.h format; the router forwards it as is
  std::vector<crypto::RecipientResponseSecret> response_secrets;
};

// Seals `body` (with the created-at timestamp `now_ms` the enclave checks for freshness) to
// every accepted enclave. kFailedPrecondition if `recipients` is empty.
base::Result<SealedRequest> SealRequest(const std::vector<AcceptedEnclave>& recipients,
                                        crypto::ByteView body, int64_t now_ms);

// The opener of the answer to `request` (consumes its secrets).
crypto::ChunkedResponseOpener OpenResponse(SealedRequest&& request);

// Saves / loads response secrets (JSON, hex; the file is created 0600 and must not be
// shared: it opens the answer). Loading reads at most 1MiB (kOutOfRange past it) and
// refuses a directory (kFailedPrecondition).
base::Status SaveResponseSecrets(const std::vector<crypto::RecipientResponseSecret>& secrets,
                                 const std::filesystem::path& path);
base::Result<std::vector<crypto::RecipientResponseSecret>> LoadResponseSecrets(
    const std::filesystem::path& path);

// Current wall-clock time in ms since the Unix epoch.
int64_t NowMs();

}  // namespace supercluster::client
