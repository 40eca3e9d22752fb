// Runs the official RFC 9180 test vectors (test-vectors.json of the CFRG HPKE draft
// repository, as /work/shared/testdata/hpke/SOURCE.txt records) against the DHKEM(X25519)
// suites this module supports. The file is outside the repository; the test skips without it
// (hpke_test.cc carries one vector inline).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <fstream>
#include <optional>
#include <string>

#include "base/shared_testdata.h"
#include "crypto/hpke.h"
#include "crypto/hpke_internal.h"

namespace supercluster::crypto {
namespace {

constexpr char kVectorsFile[] = "hpke/test-vectors.json";
// The file holds 128 vectors: kem 0x10 (P-256), 0x12 (P-521), 0x20 (X25519) and 0x21 (X448),
// each with kdf 1 and 3, aead 1, 2, 3 and 0xFFFF, modes 0-3: 32 per KEM.
constexpr int kExpectedX25519Vectors = 32;
constexpr int kExpectedOtherKemVectors = 96;

Bytes HexField(const nlohmann::json& vector, const char* name) {
  Bytes out;
  EXPECT_TRUE(vector.contains(name)) << "vector lacks field " << name;
  if (!vector.contains(name)) return out;
  EXPECT_TRUE(FromHex(vector.at(name).get<std::string>(), &out)) << "field " << name;
  return out;
}

std::string HexString(const nlohmann::json& vector, const char* name) {
  return vector.at(name).get<std::string>();
}

struct Counts {
  int encryptions = 0;
  int exports = 0;
};

// Checks one X25519 vector; returns what it checked.
Counts CheckVector(const nlohmann::json& vector) {
  Counts counts;
  int mode_id = vector.at("mode").get<int>();
  auto suite = HpkeSuite::FromIds(vector.at("kem_id").get<uint16_t>(),
                                  vector.at("kdf_id").get<uint16_t>(),
                                  vector.at("aead_id").get<uint16_t>());
  EXPECT_TRUE(suite.ok()) << suite.status().ToString();
  if (!suite.ok()) return counts;
  bool psk = mode_id == 1 || mode_id == 3;
  bool auth = mode_id == 2 || mode_id == 3;
  Bytes info = HexField(vector, "info");

  // DeriveKeyPair from each ikm gives the listed keys.
  auto recipient = HpkeKeyPair::Derive(HpkeKem::kX25519Sha256, HexField(vector, "ikmR"));
  EXPECT_TRUE(recipient.ok());
  if (!recipient.ok()) return counts;
  EXPECT_EQ(ToHex(recipient->public_key()), HexString(vector, "pkRm"));
  EXPECT_EQ(ToHex(recipient->private_key().view()), HexString(vector, "skRm"));
  Bytes ikm_e = HexField(vector, "ikmE");
  auto ephemeral = HpkeKeyPair::Derive(HpkeKem::kX25519Sha256, ikm_e);
  EXPECT_TRUE(ephemeral.ok());
  if (!ephemeral.ok()) return counts;
  EXPECT_EQ(ToHex(ephemeral->public_key()), HexString(vector, "pkEm"));
  EXPECT_EQ(ToHex(ephemeral->private_key().view()), HexString(vector, "skEm"));
  std::optional<HpkeKeyPair> sender_key;
  if (auth) {
    auto derived = HpkeKeyPair::Derive(HpkeKem::kX25519Sha256, HexField(vector, "ikmS"));
    EXPECT_TRUE(derived.ok());
    if (!derived.ok()) return counts;
    EXPECT_EQ(ToHex(derived->public_key()), HexString(vector, "pkSm"));
    EXPECT_EQ(ToHex(derived->private_key().view()), HexString(vector, "skSm"));
    sender_key.emplace(std::move(derived).value());
  }

  // The KEM's shared secret.
  auto encapsulation = internal::Encap(HpkeKem::kX25519Sha256, recipient->public_key(),
                                       sender_key ? &*sender_key : nullptr, ikm_e);
  EXPECT_TRUE(encapsulation.ok());
  if (encapsulation.ok()) {
    EXPECT_EQ(ToHex(encapsulation->shared_secret.view()), HexString(vector, "shared_secret"));
  }

  Bytes psk_bytes = psk ? HexField(vector, "psk") : Bytes();
  Bytes psk_id = psk ? HexField(vector, "psk_id") : Bytes();
  HpkeSenderOptions send_options;
  send_options.psk = psk_bytes;
  send_options.psk_id = psk_id;
  send_options.sender_key = sender_key ? &*sender_key : nullptr;
  send_options.ephemeral_ikm = ikm_e;
  auto sender = HpkeSetupSender(*suite, recipient->public_key(), info, send_options);
  EXPECT_TRUE(sender.ok()) << sender.status().ToString();
  if (!sender.ok()) return counts;
  EXPECT_EQ(ToHex(sender->enc), HexString(vector, "enc"));
  EXPECT_EQ(static_cast<int>(sender->context.mode()), mode_id);

  HpkeRecipientOptions receive_options;
  receive_options.psk = psk_bytes;
  receive_options.psk_id = psk_id;
  if (sender_key) receive_options.sender_public_key = sender_key->public_key();
  auto receiver =
      HpkeSetupRecipient(*suite, HexField(vector, "enc"), *recipient, info, receive_options);
  EXPECT_TRUE(receiver.ok()) << receiver.status().ToString();
  if (!receiver.ok()) return counts;

  // The key schedule's outputs, on both sides (key and base_nonce are empty for
  // export-only, as in the file).
  for (const HpkeContext* context : {&sender->context, &*receiver}) {
    EXPECT_EQ(ToHex(HpkeContextBuilder::KeyForTesting(*context)), HexString(vector, "key"));
    EXPECT_EQ(ToHex(HpkeContextBuilder::BaseNonceForTesting(*context)),
              HexString(vector, "base_nonce"));
    EXPECT_EQ(ToHex(HpkeContextBuilder::ExporterSecretForTesting(*context)),
              HexString(vector, "exporter_secret"));
  }

  // Every encryption, in sequence order: Seal reproduces ct, Open gives pt back.
  Bytes base_nonce = HexField(vector, "base_nonce");
  uint64_t sequence = 0;
  for (const nlohmann::json& encryption : vector.at("encryptions")) {
    Bytes aad = HexField(encryption, "aad");
    Bytes plaintext = HexField(encryption, "pt");
    EXPECT_EQ(ToHex(internal::ComputeNonce(base_nonce, sequence)),
              HexString(encryption, "nonce"))
        << "sequence " << sequence;
    auto sealed = sender->context.Seal(aad, plaintext);
    EXPECT_TRUE(sealed.ok()) << sealed.status().ToString();
    if (!sealed.ok()) return counts;
    EXPECT_EQ(ToHex(*sealed), HexString(encryption, "ct")) << "sequence " << sequence;
    auto opened = receiver->Open(aad, HexField(encryption, "ct"));
    EXPECT_TRUE(opened.ok()) << "sequence " << sequence << ": " << opened.status().ToString();
    if (!opened.ok()) return counts;
    EXPECT_EQ(*opened, plaintext);
    ++sequence;
    ++counts.encryptions;
  }

  for (const nlohmann::json& entry : vector.at("exports")) {
    Bytes exporter_context = HexField(entry, "exporter_context");
    size_t length = entry.at("L").get<size_t>();
    for (const HpkeContext* context : {&sender->context, &*receiver}) {
      auto exported = context->Export(exporter_context, length);
      EXPECT_TRUE(exported.ok()) << exported.status().ToString();
      if (!exported.ok()) return counts;
      EXPECT_EQ(ToHex(exported->view()), HexString(entry, "exported_value"));
    }
    ++counts.exports;
  }
  return counts;
}

TEST(HpkeVectorsTest, AllX25519VectorsOfRfc9180) {
  std::filesystem::path path = testing::SharedTestDataFile(kVectorsFile);
  if (path.empty()) GTEST_SKIP() << testing::SharedTestDataMissing(kVectorsFile);
  std::ifstream file(path);
  ASSERT_TRUE(file) << "cannot open " << path;
  nlohmann::json vectors = nlohmann::json::parse(file, nullptr, /*allow_exceptions=*/false);
  ASSERT_FALSE(vectors.is_discarded()) << path << " is not valid JSON";
  ASSERT_TRUE(vectors.is_array()) << path << " is not a JSON array";

  int run = 0;
  int unsupported = 0;
  Counts total;
  bool seen_mode[4] = {};
  bool seen_export_only = false;
  for (const nlohmann::json& vector : vectors) {
    int kem_id = vector.at("kem_id").get<int>();
    int kdf_id = vector.at("kdf_id").get<int>();
    int aead_id = vector.at("aead_id").get<int>();
    int mode_id = vector.at("mode").get<int>();
    if (kem_id != 0x20) {
      // Only the KEM may make a vector unsupported: every KDF and AEAD in the file is.
      EXPECT_FALSE(HpkeSuite::FromIds(kem_id, kdf_id, aead_id).ok());
      ++unsupported;
      continue;
    }
    SCOPED_TRACE(::testing::Message() << "vector kem " << kem_id << " kdf " << kdf_id
                                      << " aead " << aead_id << " mode " << mode_id);
    ASSERT_GE(mode_id, 0);
    ASSERT_LE(mode_id, 3);
    seen_mode[mode_id] = true;
    seen_export_only = seen_export_only || aead_id == 0xFFFF;
    Counts counts = CheckVector(vector);
    if (aead_id != 0xFFFF) {
      EXPECT_GT(counts.encryptions, 0) << "no encryptions checked";
    }
    EXPECT_GT(counts.exports, 0) << "no exports checked";
    total.encryptions += counts.encryptions;
    total.exports += counts.exports;
    ++run;
  }
  EXPECT_EQ(run, kExpectedX25519Vectors);
  EXPECT_EQ(unsupported, kExpectedOtherKemVectors);
  EXPECT_TRUE(seen_mode[0] && seen_mode[1] && seen_mode[2] && seen_mode[3]);
  EXPECT_TRUE(seen_export_only);
  // 24 AEAD vectors x 257 encryptions; 32 vectors x 3 exports.
  EXPECT_EQ(total.encryptions, 24 * 257);
  EXPECT_EQ(total.exports, 32 * 3);
}

}  // namespace
}  // namespace supercluster::crypto
