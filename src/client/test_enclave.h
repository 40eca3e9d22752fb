// Test support for the enclave and client tests: a dev attestor measuring the test binary,
// the policy that accepts it, and verifying a document into an AcceptedEnclave. Test-only
// (the supercluster_client_test_support library).
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
