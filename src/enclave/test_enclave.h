// Test support for the enclave module: a dev CA in memory, an EnclaveCore attested by it,
// and the policy that accepts it. Used by enclave_core_test and enclave_process_test.
#pragma once

#include <memory>

#include "attest/dev_attestor.h"
#include "attest/verifier.h"
#include "client/sealed_client.h"
#include "enclave/enclave_core.h"

namespace supercluster::enclave::testing {

// A dev attestor measuring this test binary (PCR0 and PCR2) and "test config" (PCR1).
std::unique_ptr<attest::Attestor> MakeDevAttestor(const attest::DevCa& ca);

// A policy pinned to `ca`'s root, with the measurements MakeDevAttestor() reports.
attest::AttestationPolicy PolicyFor(const attest::DevCa& ca);

// Verifies `document` under `policy` and returns the accepted enclave; fails the test if
// it is rejected.
client::AcceptedEnclave Accept(const crypto::Bytes& document,
                               const attest::AttestationPolicy& policy);

}  // namespace supercluster::enclave::testing
