// The client library: which candidates it accepts, and the response-secrets file.
#include "client/sealed_client.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "attest/dev_attestor.h"
#include "enclave/enclave_core.h"
#include "client/test_enclave.h"

namespace supercluster::client {
namespace {

class SealedClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto ca = attest::DevCa::Generate();
    ASSERT_TRUE(ca.ok());
    ca_.emplace(std::move(*ca));
    policy_ = enclave::testing::PolicyFor(*ca_);
    char pattern[] = "/tmp/sc-client-XXXXXX";
    dir_ = ::mkdtemp(pattern);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  crypto::Bytes EnclaveDocument() {
    auto core = enclave::EnclaveCore::Create({}, enclave::testing::MakeDevAttestor(*ca_));
    EXPECT_TRUE(core.ok());
    auto document = (*core)->Attest({}, {});
    EXPECT_TRUE(document.ok());
    return *document;
  }

  std::optional<attest::DevCa> ca_;
  attest::AttestationPolicy policy_;
  std::string dir_;
};

TEST_F(SealedClientTest, AcceptsVerifiedEnclavesAndSaysWhyOthersAreRejected) {
  crypto::Bytes good = EnclaveDocument();
  crypto::Bytes tampered = good;
  tampered[tampered.size() / 2] ^= 1;
  // A document the dev attestor signed for a key that is not an enclave identity.
  attest::DevAttestor plain(*ca_, attest::DevMeasurements::Measure("/proc/self/exe",
                                                                   crypto::AsBytes("test config"),
                                                                   "/proc/self/exe").value());
  auto not_an_enclave = plain.Attest(std::nullopt, std::nullopt, crypto::ToBytes("some key"));
  ASSERT_TRUE(not_an_enclave.ok());
  CandidateVerdicts verdicts = VerifyCandidates({good, tampered, *not_an_enclave}, policy_);
  ASSERT_EQ(verdicts.accepted.size(), 1u);
  ASSERT_EQ(verdicts.rejections.size(), 2u);
  EXPECT_NE(verdicts.rejections[0].find("candidate 1: attestation rejected"), std::string::npos)
      << verdicts.rejections[0];
  EXPECT_NE(verdicts.rejections[1].find("candidate 2: enclave identity"), std::string::npos)
      << verdicts.rejections[1];
  EXPECT_EQ(SealRequest({}, crypto::AsBytes("x"), NowMs()).status().code(),
            base::StatusCode::kFailedPrecondition);
}

TEST_F(SealedClientTest, ResponseSecretsRoundTripThroughAPrivateFile) {
  CandidateVerdicts verdicts = VerifyCandidates({EnclaveDocument(), EnclaveDocument()}, policy_);
  ASSERT_EQ(verdicts.accepted.size(), 2u);
  auto sealed = SealRequest(verdicts.accepted, crypto::AsBytes("prompt"), NowMs());
  ASSERT_TRUE(sealed.ok());
  std::string path = dir_ + "/keep.json";
  {
    std::ofstream world_readable(path);  // an existing file with a looser mode
  }
  ::chmod(path.c_str(), 0644);
  ASSERT_TRUE(SaveResponseSecrets(sealed->response_secrets, path).ok());
  struct stat info;
  ASSERT_EQ(::stat(path.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0600u);
  auto loaded = LoadResponseSecrets(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  ASSERT_EQ(loaded->size(), 2u);
  for (size_t i = 0; i < loaded->size(); ++i) {
    EXPECT_EQ((*loaded)[i].enc, sealed->response_secrets[i].enc);
    EXPECT_TRUE(crypto::ConstantTimeEquals((*loaded)[i].secret.view(),
                                           sealed->response_secrets[i].secret.view()));
  }
}

TEST_F(SealedClientTest, MalformedSecretsFilesAreRefused) {
  for (const std::string& text :
       {std::string("not json"), std::string("{}"), std::string(R"({"type":"other"})"),
        std::string(R"({"type":"supercluster.response-secrets.v1","recipients":[]})"),
        std::string(R"({"type":"supercluster.response-secrets.v1","recipients":[{"kdf":1}]})"),
        std::string(R"({"type":"supercluster.response-secrets.v1","recipients":)"
                    R"([{"kdf":1,"aead":1,"enc":"zz","secret":"00"}]})"),
        std::string(R"({"type":"supercluster.response-secrets.v1","recipients":)"
                    R"([{"kdf":9,"aead":1,"enc":"00","secret":"00"}]})")}) {
    std::string path = dir_ + "/bad.json";
    std::ofstream(path) << text;
    EXPECT_FALSE(LoadResponseSecrets(path).ok()) << text;
  }
  EXPECT_EQ(LoadResponseSecrets(dir_ + "/absent.json").status().code(),
            base::StatusCode::kNotFound);
}

TEST_F(SealedClientTest, SecretsFilesAreReadOnlySoFar) {
  std::string big = dir_ + "/big.json";  // sparse: it stands for /dev/zero without its risk
  std::ofstream{big};
  std::filesystem::resize_file(big, (1 << 20) + 1);
  auto too_big = LoadResponseSecrets(big);
  ASSERT_FALSE(too_big.ok());
  EXPECT_EQ(too_big.status().message(),
            big + ": larger than 1MiB, which is no response-secrets file");
  auto directory = LoadResponseSecrets(dir_);
  ASSERT_FALSE(directory.ok());
  EXPECT_EQ(directory.status().message(), dir_ + ": is a directory");
}

}  // namespace
}  // namespace supercluster::client
