#include "attest/verifier.h"

#include <gtest/gtest.h>

#include <chrono>

#include "attest/cose_sign1.h"
#include "attest/dev_attestor.h"
#include "attest/test_util.h"
#include "base/shared_testdata.h"

namespace supercluster::attest {
namespace {

using supercluster::testing::SharedTestDataFile;
using supercluster::testing::SharedTestDataMissing;
using testing::ReadFileBytes;

// Real documents (see /work/shared/testdata/nitro/SOURCE.txt): name and timestamp in ms.
struct RealDocument {
  const char* name;
  uint64_t timestamp_ms;
};
constexpr RealDocument kRealDocuments[] = {
    {"nitro/doc-1.cbor", 1736179625472},
    {"nitro/doc-2.cbor", 1684358511808},
    {"nitro/doc-4.cbor", 1635440522077},
};
constexpr const char* kAwsRoot = "nitro/AWS_NitroEnclaves_Root-G1.pem";

class RealDocumentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* file : {kAwsRoot, "nitro/doc-1.cbor", "nitro/doc-2.cbor", "nitro/doc-4.cbor"}) {
      if (SharedTestDataFile(file).empty()) GTEST_SKIP() << SharedTestDataMissing(file);
    }
    ASSERT_TRUE(aws_policy_.SetRootCertificate(ReadFileBytes(SharedTestDataFile(kAwsRoot))).ok());
  }

  // The AWS-pinned policy as of `timestamp_ms`, debug allowed (real docs' PCRs vary).
  AttestationPolicy PolicyAt(uint64_t timestamp_ms) const {
    AttestationPolicy policy = aws_policy_;
    policy.SetFixedTime(timestamp_ms);
    policy.allow_debug = true;
    return policy;
  }

  static Bytes Load(const char* name) { return ReadFileBytes(SharedTestDataFile(name)); }

  AttestationPolicy aws_policy_;
};

std::optional<RejectionReason> ReasonOf(const base::Result<VerifiedAttestation>& result) {
  return result.ok() ? std::nullopt : RejectionReasonOf(result.status());
}

TEST_F(RealDocumentTest, EachVerifiesAgainstTheAwsRootAsOfItsOwnTimestamp) {
  for (const RealDocument& real : kRealDocuments) {
    SCOPED_TRACE(real.name);
    auto verified = VerifyAttestation(Load(real.name), PolicyAt(real.timestamp_ms));
    ASSERT_TRUE(verified.ok()) << verified.status().ToString();
    EXPECT_EQ(verified->document.timestamp_ms, real.timestamp_ms);
    EXPECT_FALSE(verified->dev);
    EXPECT_EQ(verified->document.cabundle.size(), 4u);
    EXPECT_EQ(verified->document.pcrs.size(), 16u);
    EXPECT_FALSE(verified->document.module_id.empty());
  }
}

TEST_F(RealDocumentTest, OptionalFieldsMatchTheirSource) {
  auto doc1 = VerifyAttestation(Load("nitro/doc-1.cbor"), PolicyAt(1736179625472));
  ASSERT_TRUE(doc1.ok()) << doc1.status().ToString();
  EXPECT_TRUE(doc1->document.public_key.has_value());
  EXPECT_FALSE(doc1->document.user_data.has_value());
  EXPECT_FALSE(doc1->document.nonce.has_value());
  auto doc4 = VerifyAttestation(Load("nitro/doc-4.cbor"), PolicyAt(1635440522077));
  ASSERT_TRUE(doc4.ok()) << doc4.status().ToString();
  EXPECT_TRUE(doc4->document.public_key && doc4->document.user_data && doc4->document.nonce);
}

TEST_F(RealDocumentTest, EachFailsAtTheCurrentTime) {
  for (const RealDocument& real : kRealDocuments) {
    SCOPED_TRACE(real.name);
    AttestationPolicy policy = aws_policy_;  // system clock
    policy.allow_debug = true;
    auto verified = VerifyAttestation(Load(real.name), policy);
    ASSERT_FALSE(verified.ok());
    EXPECT_EQ(ReasonOf(verified), RejectionReason::kCertificateExpired) << verified.status().message();
  }
}

TEST_F(RealDocumentTest, FailsADayBeforeOrAfter) {
  constexpr uint64_t kDayMs = 24 * 3600 * 1000ULL;
  Bytes doc2 = Load("nitro/doc-2.cbor");
  auto before = VerifyAttestation(doc2, PolicyAt(1684358511808 - kDayMs));
  EXPECT_EQ(ReasonOf(before), RejectionReason::kCertificateNotYetValid) << before.status().message();
  auto after = VerifyAttestation(doc2, PolicyAt(1684358511808 + kDayMs));
  EXPECT_EQ(ReasonOf(after), RejectionReason::kCertificateExpired) << after.status().message();
  // Within the leaf's life (the source's own test checks at 1684362463 s) it passes.
  EXPECT_TRUE(VerifyAttestation(doc2, PolicyAt(1684362463000)).ok());
}

TEST_F(RealDocumentTest, MaxAgeRejectsOldDocuments) {
  Bytes doc2 = Load("nitro/doc-2.cbor");
  AttestationPolicy policy = PolicyAt(1684358511808 + 60'000);
  policy.max_age = std::chrono::seconds(30);
  EXPECT_EQ(ReasonOf(VerifyAttestation(doc2, policy)), RejectionReason::kTooOld);
  policy.max_age = std::chrono::seconds(120);
  EXPECT_TRUE(VerifyAttestation(doc2, policy).ok());
}

TEST_F(RealDocumentTest, DocumentFromTheFutureIsRejected) {
  Bytes doc2 = Load("nitro/doc-2.cbor");
  AttestationPolicy policy = PolicyAt(1684358511808 - 10 * 60'000);
  policy.max_clock_skew = std::chrono::minutes(1);
  auto result = VerifyAttestation(doc2, policy);
  // Ten minutes before the document the leaf may not be valid yet either; either way no.
  ASSERT_FALSE(result.ok());
  EXPECT_TRUE(ReasonOf(result) == RejectionReason::kFromTheFuture ||
              ReasonOf(result) == RejectionReason::kCertificateNotYetValid)
      << result.status().message();
}

TEST_F(RealDocumentTest, WrongRootIsUntrusted) {
  auto dev_ca = DevCa::Generate();
  ASSERT_TRUE(dev_ca.ok()) << dev_ca.status().ToString();
  AttestationPolicy policy = PolicyAt(1684358511808);
  policy.root_certificate = dev_ca->root_certificate();
  auto result = VerifyAttestation(Load("nitro/doc-2.cbor"), policy);
  EXPECT_EQ(ReasonOf(result), RejectionReason::kUntrustedRoot) << result.status().message();
}

TEST_F(RealDocumentTest, PcrPolicy) {
  Bytes doc2 = Load("nitro/doc-2.cbor");
  AttestationPolicy policy = PolicyAt(1684358511808);
  auto verified = VerifyAttestation(doc2, policy);
  ASSERT_TRUE(verified.ok());
  const auto& pcrs = verified->document.pcrs;
  // The document's own PCR0..2 pass; one changed byte in any set entry fails.
  policy.allowed_measurements = {{{0, pcrs.at(0)}, {1, pcrs.at(1)}, {2, pcrs.at(2)}}};
  EXPECT_TRUE(VerifyAttestation(doc2, policy).ok());
  MeasurementSet wrong = policy.allowed_measurements[0];
  wrong[1][7] ^= 1;
  policy.allowed_measurements = {wrong};
  auto mismatch = VerifyAttestation(doc2, policy);
  EXPECT_EQ(ReasonOf(mismatch), RejectionReason::kPcrMismatch) << mismatch.status().message();
  // A PCR the document does not carry cannot match.
  policy.allowed_measurements = {{{20, Bytes(48, 0)}}};
  EXPECT_EQ(ReasonOf(VerifyAttestation(doc2, policy)), RejectionReason::kPcrMismatch);
  // Any one matching set is enough.
  policy.allowed_measurements = {wrong, {{0, pcrs.at(0)}}};
  EXPECT_TRUE(VerifyAttestation(doc2, policy).ok());
}

TEST_F(RealDocumentTest, NonceMustMatch) {
  Bytes doc4 = Load("nitro/doc-4.cbor");
  AttestationPolicy policy = PolicyAt(1635440522077);
  auto verified = VerifyAttestation(doc4, policy);
  ASSERT_TRUE(verified.ok()) << verified.status().ToString();
  ASSERT_TRUE(verified->document.nonce.has_value());
  policy.expected_nonce = verified->document.nonce;
  EXPECT_TRUE(VerifyAttestation(doc4, policy).ok());
  Bytes wrong = *verified->document.nonce;
  wrong.back() ^= 0x80;
  policy.expected_nonce = wrong;
  EXPECT_EQ(ReasonOf(VerifyAttestation(doc4, policy)), RejectionReason::kNonceMismatch);
  policy.expected_nonce = Bytes();
  EXPECT_EQ(ReasonOf(VerifyAttestation(doc4, policy)), RejectionReason::kNonceMismatch);
  // doc-2 has no nonce at all.
  AttestationPolicy doc2_policy = PolicyAt(1684358511808);
  doc2_policy.expected_nonce = Bytes{1, 2, 3};
  EXPECT_EQ(ReasonOf(VerifyAttestation(Load("nitro/doc-2.cbor"), doc2_policy)),
            RejectionReason::kNonceMismatch);
}

// Flips one bit in every byte position, one position at a time; every altered document
// must be rejected. Returns how many were rejected.
size_t FlipEveryByte(const Bytes& original, const AttestationPolicy& policy, size_t stride,
                     size_t* tried) {
  size_t rejected = 0;
  *tried = 0;
  Bytes altered = original;
  for (size_t position = 0; position < original.size(); position += stride) {
    altered[position] ^= 0x01;
    ++*tried;
    auto result = VerifyAttestation(altered, policy);
    if (!result.ok() && RejectionReasonOf(result.status()).has_value()) {
      ++rejected;
    } else {
      ADD_FAILURE() << "flipping byte " << position << " was "
                    << (result.ok() ? "accepted" : "rejected without a reason: " + result.status().ToString());
    }
    altered[position] = original[position];
  }
  return rejected;
}

TEST_F(RealDocumentTest, EveryFlippedByteIsRejected) {
  auto start = std::chrono::steady_clock::now();
  size_t total = 0;
  for (const RealDocument& real : kRealDocuments) {
    Bytes original = Load(real.name);
    // Every byte of every document: about 14,000 verifications, some 15 s in a release
    // build. (Should that grow past a minute, step through the others with a stride.)
    size_t stride = 1;
    size_t tried = 0;
    size_t rejected = FlipEveryByte(original, PolicyAt(real.timestamp_ms), stride, &tried);
    EXPECT_EQ(rejected, tried) << real.name;
    total += tried;
  }
  auto seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("flipped %zu byte positions of the real documents in %.1f s; all rejected\n", total,
              seconds);
}

TEST(VerifierTest, RejectionReasonRoundTripsThroughTheStatus) {
  for (RejectionReason reason :
       {RejectionReason::kMalformed, RejectionReason::kBadSignature, RejectionReason::kUntrustedRoot,
        RejectionReason::kChainInvalid, RejectionReason::kCertificateExpired,
        RejectionReason::kCertificateNotYetValid, RejectionReason::kBadLeafKey,
        RejectionReason::kPcrMismatch, RejectionReason::kDebugMode, RejectionReason::kNonceMismatch,
        RejectionReason::kTooOld, RejectionReason::kFromTheFuture}) {
    base::Status status = base::PermissionDenied(std::string("attestation rejected (") +
                                                 RejectionReasonName(reason) + "): detail");
    EXPECT_EQ(RejectionReasonOf(status), reason) << RejectionReasonName(reason);
  }
  EXPECT_FALSE(RejectionReasonOf(base::PermissionDenied("other")).has_value());
  EXPECT_FALSE(RejectionReasonOf(base::Status::Ok()).has_value());
}

TEST(VerifierTest, PolicyWithoutRootIsAnError) {
  AttestationPolicy policy;
  auto result = VerifyAttestation(Bytes{0x84}, policy);
  EXPECT_EQ(result.status().code(), base::StatusCode::kFailedPrecondition);
}

TEST(VerifierTest, GarbageIsMalformed) {
  auto ca = DevCa::Generate();
  ASSERT_TRUE(ca.ok());
  AttestationPolicy policy;
  policy.root_certificate = ca->root_certificate();
  for (const Bytes& garbage : {Bytes{}, Bytes{0x84}, Bytes{0x84, 0x40, 0xa0, 0x40, 0x40},
                               testing::Hex("d2 84 44 a10138 22 a0 41 00 5860") }) {
    auto result = VerifyAttestation(garbage, policy);
    EXPECT_EQ(RejectionReasonOf(result.status()), RejectionReason::kMalformed)
        << result.status().ToString();
  }
}

}  // namespace
}  // namespace supercluster::attest
