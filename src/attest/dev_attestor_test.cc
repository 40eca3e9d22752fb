#include "attest/dev_attestor.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "attest/certificate.h"
#include "attest/cose_sign1.h"
#include "attest/nitro_document.h"
#include "attest/test_util.h"
#include "attest/verifier.h"
#include "base/shared_testdata.h"

namespace supercluster::attest {
namespace {

namespace fs = std::filesystem;
using testing::Hex;

class TempDir {
 public:
  TempDir() {
    path_ = fs::temp_directory_path() /
            ("attest-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++));
    fs::remove_all(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }

 private:
  static inline int counter_ = 0;
  fs::path path_;
};

void WriteText(const fs::path& path, const std::string& text) { std::ofstream(path) << text; }

Clock FixedClock(std::chrono::system_clock::time_point when) {
  return [when] { return when; };
}

// A fixed moment a day from now (plus 123 ms, to exercise sub-second timestamps): fresh
// dev roots are valid from an hour ago, so test times must follow the real clock.
uint64_t BaseMs() {
  static const uint64_t base = [] {
    auto now = std::chrono::system_clock::now() + std::chrono::hours(24);
    auto seconds = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
    return static_cast<uint64_t>(seconds) * 1000 + 123;
  }();
  return base;
}

std::chrono::system_clock::time_point AtMs(uint64_t unix_ms) {
  return std::chrono::system_clock::time_point(std::chrono::milliseconds(unix_ms));
}

// NIST FIPS 180-2 example: SHA-384("abc").
TEST(DevAttestorTest, Sha384KnownAnswer) {
  EXPECT_EQ(Sha384(BytesOf("abc")),
            Hex("cb00753f45a35e8bb5a03d699ac65007272c32ab0eded163"
                "1a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7"));
}

TEST(DevCaTest, InitWritesAPrivateKeyOnlyTheOwnerCanRead) {
  TempDir dir;
  auto ca = DevCa::Init(dir.path() / "dev-ca");
  ASSERT_TRUE(ca.ok()) << ca.status().ToString();
  struct stat key_stat;
  ASSERT_EQ(::stat((dir.path() / "dev-ca" / "root.key").c_str(), &key_stat), 0);
  EXPECT_EQ(key_stat.st_mode & 0777, 0600u);
  EXPECT_TRUE(fs::exists(dir.path() / "dev-ca" / "root.pem"));
  EXPECT_EQ(ca->RootFingerprint().size(), 32u * 3 - 1);
  auto subject = CertificateSubject(ca->root_certificate());
  ASSERT_TRUE(subject.ok());
  EXPECT_NE(subject->find("INSECURE DEV ROOT"), std::string::npos) << *subject;

  auto loaded = DevCa::Load(dir.path() / "dev-ca");
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded->RootFingerprint(), ca->RootFingerprint());
}

TEST(DevCaTest, InitRefusesToOverwriteUnlessAsked) {
  TempDir dir;
  auto first = DevCa::Init(dir.path());
  ASSERT_TRUE(first.ok());
  auto again = DevCa::Init(dir.path());
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), base::StatusCode::kAlreadyExists);
  EXPECT_EQ(DevCa::Load(dir.path())->RootFingerprint(), first->RootFingerprint());
  auto replaced = DevCa::Init(dir.path(), /*overwrite=*/true);
  ASSERT_TRUE(replaced.ok());
  EXPECT_NE(replaced->RootFingerprint(), first->RootFingerprint());
  EXPECT_EQ(DevCa::Load(dir.path())->RootFingerprint(), replaced->RootFingerprint());
}

TEST(DevCaTest, InitNamesAnIncompleteCaAsSuch) {
  TempDir dir;
  ASSERT_TRUE(DevCa::Init(dir.path()).ok());
  WriteText(dir.path() / "root.pem", "");
  auto empty = DevCa::Init(dir.path());
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.status().code(), base::StatusCode::kAlreadyExists);
  EXPECT_EQ(empty.status().message(), "an incomplete dev CA is in " + dir.path().string() +
                                          " (root.pem is empty); pass --force to replace it");
  fs::remove(dir.path() / "root.key");
  EXPECT_EQ(DevCa::Init(dir.path()).status().message(),
            "an incomplete dev CA is in " + dir.path().string() +
                " (root.key is missing, root.pem is empty); pass --force to replace it");
  EXPECT_TRUE(DevCa::Init(dir.path(), /*overwrite=*/true).ok());
}

TEST(DevCaTest, ThePrivateKeyIsNoCertificate) {
  TempDir dir;
  ASSERT_TRUE(DevCa::Init(dir.path()).ok());
  std::ifstream file(dir.path() / "root.key");
  std::string key_pem((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  auto certificate = CertificateDer(AsByteView(key_pem));
  ASSERT_FALSE(certificate.ok());
  EXPECT_EQ(certificate.status().message(), "a PEM private key, not a certificate");
}

TEST(DevCaTest, LoadFailsClearly) {
  TempDir dir;
  auto missing = DevCa::Load(dir.path());
  EXPECT_EQ(missing.status().code(), base::StatusCode::kNotFound);
  // A key that does not belong to the certificate.
  TempDir other;
  ASSERT_TRUE(DevCa::Init(dir.path()).ok());
  ASSERT_TRUE(DevCa::Init(other.path()).ok());
  fs::copy_file(other.path() / "root.key", dir.path() / "root.key", fs::copy_options::overwrite_existing);
  auto mismatched = DevCa::Load(dir.path());
  ASSERT_FALSE(mismatched.ok());
  EXPECT_NE(mismatched.status().message().find("does not belong"), std::string::npos);
  WriteText(dir.path() / "root.pem", "garbage");
  EXPECT_FALSE(DevCa::Load(dir.path()).ok());
}

class DevDocumentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto ca = DevCa::Generate();
    ASSERT_TRUE(ca.ok()) << ca.status().ToString();
    ca_.emplace(std::move(*ca));
    WriteText(files_.path().string() + "-enclave", "enclave binary bytes");
    WriteText(files_.path().string() + "-worker", "worker binary bytes");
    auto measured = DevMeasurements::Measure(files_.path().string() + "-enclave", BytesOf("config: 1"),
                                             files_.path().string() + "-worker");
    ASSERT_TRUE(measured.ok()) << measured.status().ToString();
    measurements_ = *measured;
    policy_.root_certificate = ca_->root_certificate();
  }
  void TearDown() override {
    fs::remove(files_.path().string() + "-enclave");
    fs::remove(files_.path().string() + "-worker");
  }

  TempDir files_;
  std::optional<DevCa> ca_;
  DevMeasurements measurements_;
  AttestationPolicy policy_;
};

TEST_F(DevDocumentTest, MeasurementsAreTheFilesHashes) {
  EXPECT_EQ(measurements_.pcr0, Sha384(BytesOf("enclave binary bytes")));
  EXPECT_EQ(measurements_.pcr1, Sha384(BytesOf("config: 1")));
  EXPECT_EQ(measurements_.pcr2, Sha384(BytesOf("worker binary bytes")));
  auto missing = DevMeasurements::Measure("/nonexistent/enclave", {}, "/nonexistent/worker");
  EXPECT_EQ(missing.status().code(), base::StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("/nonexistent/enclave"), std::string::npos);
}

TEST_F(DevDocumentTest, RoundTripThroughTheVerifier) {
  DevAttestor attestor(*ca_, measurements_);
  EXPECT_EQ(attestor.Kind(), "dev");
  auto signing_key = EcP384Key::Generate();
  Bytes public_key = *signing_key->PublicKeyDer();
  auto encoded = attestor.Attest(BytesOf("hpke key id 7"), Bytes(32, 0x5a), public_key);
  ASSERT_TRUE(encoded.ok()) << encoded.status().ToString();

  policy_.expected_nonce = Bytes(32, 0x5a);
  policy_.max_age = std::chrono::seconds(60);
  policy_.allowed_measurements = {{{0, measurements_.pcr0}, {1, measurements_.pcr1}, {2, measurements_.pcr2}}};
  auto verified = VerifyAttestation(*encoded, policy_);
  ASSERT_TRUE(verified.ok()) << verified.status().ToString();
  EXPECT_TRUE(verified->dev);
  const AttestationDocument& document = verified->document;
  EXPECT_EQ(document.module_id.rfind("dev-", 0), 0u);
  EXPECT_EQ(document.module_id, attestor.module_id());
  EXPECT_EQ(document.digest, "SHA384");
  EXPECT_EQ(document.pcrs.size(), 16u);
  EXPECT_EQ(document.pcrs.at(5), Bytes(48, 0));
  EXPECT_EQ(document.cabundle, std::vector<Bytes>{ca_->root_certificate()});
  EXPECT_EQ(document.user_data, BytesOf("hpke key id 7"));
  EXPECT_EQ(document.public_key, public_key);
  auto leaf_subject = CertificateSubject(document.certificate);
  EXPECT_NE(leaf_subject->find("INSECURE DEV ENCLAVE"), std::string::npos) << *leaf_subject;
  EXPECT_EQ(*verified->leaf_public_key.PublicKeyDer(), *CertificatePublicKey(document.certificate)->PublicKeyDer());

  // The same document under a policy for other code, another nonce, or another dev root.
  AttestationPolicy other = policy_;
  other.allowed_measurements = {{{0, Sha384(BytesOf("other enclave"))}}};
  EXPECT_EQ(RejectionReasonOf(VerifyAttestation(*encoded, other).status()), RejectionReason::kPcrMismatch);
  other = policy_;
  other.expected_nonce = Bytes(32, 0x5b);
  EXPECT_EQ(RejectionReasonOf(VerifyAttestation(*encoded, other).status()), RejectionReason::kNonceMismatch);
  other = policy_;
  other.root_certificate = DevCa::Generate()->root_certificate();
  EXPECT_EQ(RejectionReasonOf(VerifyAttestation(*encoded, other).status()), RejectionReason::kUntrustedRoot);
}

TEST_F(DevDocumentTest, AwsPinnedVerifierRejectsDevDocuments) {
  const char* root = "nitro/AWS_NitroEnclaves_Root-G1.pem";
  auto path = supercluster::testing::SharedTestDataFile(root);
  if (path.empty()) GTEST_SKIP() << supercluster::testing::SharedTestDataMissing(root);
  AttestationPolicy aws;
  ASSERT_TRUE(aws.SetRootCertificate(testing::ReadFileBytes(path)).ok());
  DevAttestor attestor(*ca_, measurements_);
  auto encoded = attestor.Attest(std::nullopt, std::nullopt, std::nullopt);
  ASSERT_TRUE(encoded.ok());
  auto result = VerifyAttestation(*encoded, aws);
  EXPECT_EQ(RejectionReasonOf(result.status()), RejectionReason::kUntrustedRoot) << result.status().ToString();
}

TEST_F(DevDocumentTest, DebugModeRejectedUnlessAllowed) {
  DevAttestor attestor(*ca_, DevMeasurements::Zero());
  auto encoded = attestor.Attest(std::nullopt, std::nullopt, std::nullopt);
  ASSERT_TRUE(encoded.ok());
  auto rejected = VerifyAttestation(*encoded, policy_);
  EXPECT_EQ(RejectionReasonOf(rejected.status()), RejectionReason::kDebugMode) << rejected.status().ToString();
  policy_.allow_debug = true;
  EXPECT_TRUE(VerifyAttestation(*encoded, policy_).ok());
}

TEST_F(DevDocumentTest, TamperedFieldIsRejected) {
  DevAttestor attestor(*ca_, measurements_);
  auto encoded = attestor.Attest(BytesOf("original"), std::nullopt, std::nullopt);
  ASSERT_TRUE(encoded.ok());
  auto cose = DecodeCoseSign1(*encoded);
  auto document = DecodeAttestationDocument(cose->payload);
  ASSERT_TRUE(document.ok());

  // Change one field and put the old signature back: kBadSignature.
  document->user_data = BytesOf("tampered");
  Bytes payload = *EncodeAttestationDocument(*document);
  Bytes forged = EncodeCbor(CborValue::Array({CborValue::ByteString(cose->protected_header), CborValue::Map({}),
                                              CborValue::ByteString(payload), CborValue::ByteString(cose->signature)}));
  EXPECT_EQ(RejectionReasonOf(VerifyAttestation(forged, policy_).status()), RejectionReason::kBadSignature);

  // Re-sign with a leaf that another root issued, keeping the trusted root in the bundle:
  // the signature is fine but the chain is not.
  auto rogue_ca = DevCa::Generate();
  auto rogue_identity = rogue_ca->IssueEnclaveIdentity(std::chrono::system_clock::now());
  ASSERT_TRUE(rogue_identity.ok());
  document->certificate = rogue_identity->certificate;
  Bytes rogue = *SignCoseSign1(*EncodeAttestationDocument(*document), rogue_identity->key);
  auto chain = VerifyAttestation(rogue, policy_);
  EXPECT_EQ(RejectionReasonOf(chain.status()), RejectionReason::kChainInvalid) << chain.status().ToString();
}

TEST_F(DevDocumentTest, CertificateLifetimeAndClock) {
  auto issued_at = AtMs(BaseMs());
  DevAttestor attestor(*ca_, measurements_, FixedClock(issued_at));
  auto encoded = attestor.Attest(std::nullopt, std::nullopt, std::nullopt);
  ASSERT_TRUE(encoded.ok());
  policy_.SetFixedTime(BaseMs());
  auto verified = VerifyAttestation(*encoded, policy_);
  ASSERT_TRUE(verified.ok()) << verified.status().ToString();
  EXPECT_EQ(verified->document.timestamp_ms, BaseMs());
  // Four hours later the three-hour leaf has expired.
  policy_.SetFixedTime(BaseMs() + 4 * 3600 * 1000ULL);
  EXPECT_EQ(RejectionReasonOf(VerifyAttestation(*encoded, policy_).status()), RejectionReason::kCertificateExpired);
  // An hour before it was issued, neither the leaf nor the document exists yet.
  policy_.SetFixedTime(BaseMs() - 3600 * 1000ULL);
  auto early = VerifyAttestation(*encoded, policy_);
  EXPECT_EQ(RejectionReasonOf(early.status()), RejectionReason::kCertificateNotYetValid) << early.status().ToString();
  // Max age.
  policy_.SetFixedTime(BaseMs() + 120'000);
  policy_.max_age = std::chrono::seconds(60);
  EXPECT_EQ(RejectionReasonOf(VerifyAttestation(*encoded, policy_).status()), RejectionReason::kTooOld);
}

// A document whose timestamp lies outside its leaf's validity, verified at a time when
// the chain itself is valid: the timestamp check alone must catch it.
TEST_F(DevDocumentTest, TimestampOutsideTheLeafsValidityIsRejected) {
  auto issued_at = AtMs(BaseMs());
  auto identity = ca_->IssueEnclaveIdentity(issued_at);
  ASSERT_TRUE(identity.ok());
  AttestationDocument document;
  document.module_id = "dev-backdated";
  document.timestamp_ms = BaseMs() - 3600 * 1000;  // an hour before the leaf
  document.pcrs = {{0, measurements_.pcr0}, {1, measurements_.pcr1}, {2, measurements_.pcr2}};
  document.certificate = identity->certificate;
  document.cabundle = {ca_->root_certificate()};
  Bytes signed_document = *SignCoseSign1(*EncodeAttestationDocument(document), identity->key);
  policy_.SetFixedTime(BaseMs() + 60'000);
  auto result = VerifyAttestation(signed_document, policy_);
  EXPECT_EQ(RejectionReasonOf(result.status()), RejectionReason::kCertificateNotYetValid)
      << result.status().ToString();
  EXPECT_NE(result.status().message().find("at the document's timestamp"), std::string::npos);
}

TEST_F(DevDocumentTest, RefusesOversizedRequests) {
  DevAttestor attestor(*ca_, measurements_);
  EXPECT_EQ(attestor.Attest(Bytes(513), std::nullopt, std::nullopt).status().code(),
            base::StatusCode::kInvalidArgument);
  EXPECT_EQ(attestor.Attest(std::nullopt, Bytes(513), std::nullopt).status().code(),
            base::StatusCode::kInvalidArgument);
  EXPECT_EQ(attestor.Attest(std::nullopt, std::nullopt, Bytes(1025)).status().code(),
            base::StatusCode::kInvalidArgument);
  EXPECT_TRUE(attestor.Attest(Bytes(512), Bytes(512), Bytes(1024)).ok());
}

TEST_F(DevDocumentTest, EveryFlippedByteIsRejected) {
  DevAttestor attestor(*ca_, measurements_);
  auto encoded = attestor.Attest(BytesOf("u"), Bytes(8, 1), Bytes(97, 4));
  ASSERT_TRUE(encoded.ok());
  ASSERT_TRUE(VerifyAttestation(*encoded, policy_).ok());
  size_t rejected = 0;
  Bytes altered = *encoded;
  for (size_t position = 0; position < altered.size(); ++position) {
    altered[position] ^= 0x80;
    auto result = VerifyAttestation(altered, policy_);
    if (!result.ok() && RejectionReasonOf(result.status())) {
      ++rejected;
    } else {
      ADD_FAILURE() << "byte " << position << ": " << (result.ok() ? "accepted" : result.status().ToString());
    }
    altered[position] = (*encoded)[position];
  }
  EXPECT_EQ(rejected, encoded->size());
}

}  // namespace
}  // namespace supercluster::attest
