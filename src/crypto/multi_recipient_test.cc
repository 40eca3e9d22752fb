// Requests sealed to several enclaves: each can open it, the answer opens at the client,
// and a router can neither read nor rearrange the envelope.
#include "crypto/multi_recipient.h"

#include <gtest/gtest.h>

namespace supercluster::crypto {
namespace {

struct Enclave {
  std::optional<HpkeKeyPair> key;
  OhttpKeyConfig config;
};

Enclave MakeEnclave(uint8_t key_id) {
  Enclave enclave;
  auto key = HpkeKeyPair::Generate(HpkeKem::kX25519Sha256);
  EXPECT_TRUE(key.ok());
  enclave.key.emplace(std::move(*key));
  enclave.config.key_id = key_id;
  enclave.config.public_key = enclave.key->public_key();
  enclave.config.suites = {{HpkeKdf::kHkdfSha256, HpkeAead::kAes128Gcm},
                           {HpkeKdf::kHkdfSha256, HpkeAead::kChaCha20Poly1305}};
  return enclave;
}

class MultiRecipientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Two enclaves share key id 3: ids are one byte, collisions happen in a large cluster.
    enclaves_.push_back(MakeEnclave(3));
    enclaves_.push_back(MakeEnclave(9));
    enclaves_.push_back(MakeEnclave(3));
    auto request = SealForRecipients(Configs(), HpkeAead::kAes128Gcm, kInferenceLabels,
                                     AsBytes("the tenant's prompt"));
    ASSERT_TRUE(request.ok()) << request.status().ToString();
    request_.emplace(std::move(*request));
  }
  std::vector<OhttpKeyConfig> Configs() const {
    std::vector<OhttpKeyConfig> configs;
    for (const Enclave& enclave : enclaves_) configs.push_back(enclave.config);
    return configs;
  }
  base::Result<MultiRecipientServerRequest> Open(size_t enclave, ByteView sealed) {
    return OpenAsRecipient(enclaves_[enclave].config, *enclaves_[enclave].key, kInferenceLabels,
                           sealed);
  }
  std::vector<Enclave> enclaves_;
  std::optional<MultiRecipientClientRequest> request_;
};

TEST_F(MultiRecipientTest, EveryRecipientOpensItsOwnEntry) {
  for (size_t i = 0; i < enclaves_.size(); ++i) {
    auto opened = Open(i, request_->sealed);
    ASSERT_TRUE(opened.ok()) << i << ": " << opened.status().ToString();
    EXPECT_EQ(ToString(opened->payload), "the tenant's prompt");
    EXPECT_EQ(opened->recipient_index, i);
  }
}

TEST_F(MultiRecipientTest, TheAnsweringRecipientsStreamOpensAtTheClient) {
  for (size_t i = 0; i < enclaves_.size(); ++i) {
    auto opened = Open(i, request_->sealed);
    ASSERT_TRUE(opened.ok());
    auto sealer = StartMultiRecipientResponse(*opened, kInferenceLabels);
    ASSERT_TRUE(sealer.ok());
    auto first = sealer->Seal(AsBytes("In the beginning"), false);
    auto last = sealer->Seal(AsBytes(" was the Word."), true);
    ASSERT_TRUE(first.ok() && last.ok());
    auto secrets = ExportResponseSecrets(*request_, kInferenceLabels);
    ASSERT_TRUE(secrets.ok());
    ChunkedResponseOpener opener = OpenMultiRecipientResponse(std::move(*secrets));
    std::vector<Bytes> out;
    ASSERT_TRUE(opener.Feed(*first, &out).ok());
    ASSERT_TRUE(opener.Feed(*last, &out).ok());
    ASSERT_TRUE(opener.Finish(&out).ok());
    ASSERT_EQ(out.size(), 2u);
    EXPECT_EQ(ToString(out[0]) + ToString(out[1]), "In the beginning was the Word.");
  }
}

TEST_F(MultiRecipientTest, ResponseClaimingAnotherRecipientFails) {
  auto opened = Open(1, request_->sealed);
  ASSERT_TRUE(opened.ok());
  auto sealer = StartMultiRecipientResponse(*opened, kInferenceLabels);
  ASSERT_TRUE(sealer.ok());
  auto chunk = sealer->Seal(AsBytes("x"), true);
  ASSERT_TRUE(chunk.ok());
  for (uint8_t index : {0, 2, 200}) {
    Bytes altered = *chunk;
    altered[0] = index;
    auto secrets = ExportResponseSecrets(*request_, kInferenceLabels);
    ASSERT_TRUE(secrets.ok());
    ChunkedResponseOpener opener = OpenMultiRecipientResponse(std::move(*secrets));
    std::vector<Bytes> out;
    base::Status status = opener.Feed(altered, &out);
    if (status.ok()) status = opener.Finish(&out);
    EXPECT_FALSE(status.ok()) << "index " << int{index};
  }
}

TEST_F(MultiRecipientTest, AnEnclaveNotInTheListCannotOpen) {
  Enclave outsider = MakeEnclave(9);
  auto opened =
      OpenAsRecipient(outsider.config, *outsider.key, kInferenceLabels, request_->sealed);
  EXPECT_EQ(opened.status().code(), base::StatusCode::kNotFound);
  Enclave other_id = MakeEnclave(77);
  auto by_id = OpenAsRecipient(other_id.config, *other_id.key, kInferenceLabels, request_->sealed);
  EXPECT_EQ(by_id.status().code(), base::StatusCode::kNotFound);
  EXPECT_NE(by_id.status().message().find("key id 77"), std::string::npos);
}

TEST_F(MultiRecipientTest, EveryFlippedByteIsRefusedByEveryRecipient) {
  const Bytes& sealed = request_->sealed;
  for (size_t i = 0; i < sealed.size(); ++i) {
    Bytes altered = sealed;
    altered[i] ^= 0x04;
    for (size_t enclave = 0; enclave < enclaves_.size(); ++enclave) {
      EXPECT_FALSE(Open(enclave, altered).ok()) << "byte " << i << ", enclave " << enclave;
    }
  }
}

TEST_F(MultiRecipientTest, EveryTruncationIsRefused) {
  for (size_t length = 0; length < request_->sealed.size(); ++length) {
    EXPECT_FALSE(Open(1, ByteView(request_->sealed).first(length)).ok()) << length;
  }
}

TEST_F(MultiRecipientTest, DroppingARecipientBreaksTheEnvelope) {
  // A router removes entry 0 and fixes the count: recipient 9 still finds its entry, but
  // its wrapped key was bound to the original count and the payload's AAD to the original
  // list, so nothing opens.
  size_t entry_size = 7 + 32 + 16 + 16;
  Bytes altered(request_->sealed.begin(), request_->sealed.begin() + 4);
  altered[3] = 2;
  altered.insert(altered.end(), request_->sealed.begin() + 4 + entry_size,
                 request_->sealed.end());
  EXPECT_FALSE(Open(1, altered).ok());
  EXPECT_FALSE(Open(2, altered).ok());
}

TEST(MultiRecipientLimitsTest, CountsAndAeadsAreChecked) {
  Enclave enclave = MakeEnclave(1);
  EXPECT_FALSE(SealForRecipients({}, HpkeAead::kAes128Gcm, kInferenceLabels, AsBytes("x")).ok());
  std::vector<OhttpKeyConfig> too_many(kMaxRecipients + 1, enclave.config);
  EXPECT_FALSE(SealForRecipients(too_many, HpkeAead::kAes128Gcm, kInferenceLabels, AsBytes("x"))
                   .ok());
  auto unaccepted =
      SealForRecipients({enclave.config}, HpkeAead::kAes256Gcm, kInferenceLabels, AsBytes("x"));
  EXPECT_EQ(unaccepted.status().code(), base::StatusCode::kInvalidArgument);
  auto good =
      SealForRecipients({enclave.config}, HpkeAead::kAes128Gcm, kInferenceLabels, AsBytes("x"));
  ASSERT_TRUE(good.ok());
  for (uint8_t count : {0, 17}) {
    Bytes altered = good->sealed;
    altered[3] = count;
    auto opened = OpenAsRecipient(enclave.config, *enclave.key, kInferenceLabels, altered);
    EXPECT_EQ(opened.status().code(), base::StatusCode::kInvalidArgument) << int{count};
  }
  Bytes version = good->sealed;
  version[0] = 2;
  EXPECT_NE(OpenAsRecipient(enclave.config, *enclave.key, kInferenceLabels, version)
                .status()
                .message()
                .find("version 2"),
            std::string::npos);
}

}  // namespace
}  // namespace supercluster::crypto
