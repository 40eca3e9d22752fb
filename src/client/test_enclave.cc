#include "client/test_enclave.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

namespace supercluster::enclave::testing {
namespace {

attest::DevMeasurements TestMeasurements() {
  auto measured = attest::DevMeasurements::Measure("/proc/self/exe", crypto::AsBytes("test config"),
                                                   "/proc/self/exe");
  EXPECT_TRUE(measured.ok()) << measured.status().ToString();
  return *measured;
}

}  // namespace

std::unique_ptr<attest::Attestor> MakeDevAttestor(const attest::DevCa& ca) {
  return std::make_unique<attest::DevAttestor>(ca, TestMeasurements());
}

attest::AttestationPolicy PolicyFor(const attest::DevCa& ca) {
  attest::AttestationPolicy policy;
  policy.root_certificate = ca.root_certificate();
  attest::DevMeasurements measured = TestMeasurements();
  policy.allowed_measurements = {{{0, measured.pcr0}, {1, measured.pcr1}, {2, measured.pcr2}}};
  policy.max_age = std::chrono::minutes(5);
  return policy;
}

client::AcceptedEnclave Accept(const crypto::Bytes& document,
                               const attest::AttestationPolicy& policy) {
  client::CandidateVerdicts verdicts = client::VerifyCandidates({document}, policy);
  if (verdicts.accepted.size() != 1) {
    // gtest reports an exception escaping a test as that test's failure.
    throw std::runtime_error("attestation not accepted: " +
                             (verdicts.rejections.empty() ? std::string("?")
                                                          : verdicts.rejections.front()));
  }
  return std::move(verdicts.accepted.front());
}

}  // namespace supercluster::enclave::testing
