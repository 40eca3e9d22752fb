// libFuzzer target for the attestation parsers and the verifier (src/attest): arbitrary
// bytes go through the strict CBOR decoder, the COSE_Sign1 decoder, the Nitro document
// decoder (whose output must re-encode and decode to the same document), the NSM response
// decoder, and the full verifier pinned to a fixed dev root.
//
// Seeds (corpus/attestation/) are documents that the dev attestor signed with the root
// below at 1800000000000 ms (2027-01-15), so mutations start deep inside the verifier:
// the policy's clock is pinned to that time, inside the leaf certificates' lifetime.
#include <cstdint>
#include <cstdlib>

#include "attest/cbor.h"
#include "attest/cose_sign1.h"
#include "attest/nitro_document.h"
#include "attest/nsm_attestor.h"
#include "attest/verifier.h"

namespace {

using namespace supercluster::attest;

// The INSECURE dev root that signed the seed corpus (public certificate only).
constexpr const char kFuzzDevRootPem[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIICjDCCAhGgAwIBAgIQPG0LfjmEn/7wSjAvz2TrbTAKBggqhkjOPQQDAzB1MQsw\n"
    "CQYDVQQGEwJVUzEVMBMGA1UECgwMU3VwZXJjbHVzdGVyMR0wGwYDVQQLDBRJTlNF\n"
    "Q1VSRSBERVZFTE9QTUVOVDEwMC4GA1UEAwwnU3VwZXJjbHVzdGVyIElOU0VDVVJF\n"
    "IERFViBST09UIGEwZTJlMDU5MB4XDTI2MTEyNjIwNDM0NFoXDTM2MTEyMzIxNDM0\n"
    "NFowdTELMAkGA1UEBhMCVVMxFTATBgNVBAoMDFN1cGVyY2x1c3RlcjEdMBsGA1UE\n"
    "CwwUSU5TRUNVUkUgREVWRUxPUE1FTlQxMDAuBgNVBAMMJ1N1cGVyY2x1c3RlciBJ\n"
    "TlNFQ1VSRSBERVYgUk9PVCBhMGUyZTA1OTB2MBAGByqGSM49AgEGBSuBBAAiA2IA\n"
    "BINuOQOgxl4Bz7Cg3BEh15GtBZ9XiV9xWDep2dvOYuxmRi5QbLxlFezlZ5As/2Lb\n"
    "IuxeRuMf73eASVzQmvAQE6scE9jyIZH0TD7PLSBM8yZtg/AC3hKmtPBkzODvbJy4\n"
    "36NmMGQwEgYDVR0TAQH/BAgwBgEB/wIBADAOBgNVHQ8BAf8EBAMCAQYwHQYDVR0O\n"
    "BBYEFCvwIzqnZi7mFAd6z4269Ztwh6H7MB8GA1UdIwQYMBaAFCvwIzqnZi7mFAd6\n"
    "z4269Ztwh6H7MAoGCCqGSM49BAMDA2kAMGYCMQCQK390KdCPek2fZqHBbw4dPWEm\n"
    "PEnWtq0Yvmv/LBz82PwoyMNRasyM4uolLTvmiL0CMQCWptjzX2A2eOjIx3nidYr4\n"
    "aI3FKmcoJuUlpnzmyvo2x3ySzpEqpA3AV+s0tm5Wvqc=\n"
    "-----END CERTIFICATE-----\n";

constexpr uint64_t kSeedTimestampMs = 1800000000000;

const AttestationPolicy& Policy() {
  static const AttestationPolicy policy = [] {
    AttestationPolicy p;
    if (!p.SetRootCertificate(AsByteView(kFuzzDevRootPem)).ok()) std::abort();
    p.SetFixedTime(kSeedTimestampMs + 1000);
    p.max_age = std::chrono::hours(1);
    return p;
  }();
  return policy;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ByteView input(data, size);
  auto cbor = DecodeCbor(input);
  if (cbor.ok() && EncodeCbor(*cbor).size() > size + 64 * 1024) std::abort();  // sanity only

  (void)DecodeNsmAttestationResponse(input);

  auto cose = DecodeCoseSign1(input);
  if (cose.ok()) {
    auto document = DecodeAttestationDocument(cose->payload);
    if (document.ok()) {
      // What decodes must encode, and decode back to the same document.
      auto encoded = EncodeAttestationDocument(*document);
      if (!encoded.ok()) std::abort();
      auto again = DecodeAttestationDocument(*encoded);
      if (!again.ok() || !(*again == *document)) std::abort();
    }
  }

  auto verified = VerifyAttestation(input, Policy());
  if (verified.ok()) {
    // Anything accepted was signed by a chain from the pinned root.
    if (verified->document.cabundle.empty() ||
        verified->document.cabundle[0] != Policy().root_certificate) {
      std::abort();
    }
  } else if (!RejectionReasonOf(verified.status()).has_value()) {
    std::abort();  // every rejection carries a reason
  }
  return 0;
}
