// OHTTP encapsulation: RFC 9458 Appendix A byte for byte, and hostile input.
#include "crypto/ohttp.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "base/shared_testdata.h"

namespace supercluster::crypto {
namespace {

Bytes Hex(std::string_view hex) {
  Bytes out;
  EXPECT_TRUE(FromHex(hex, &out)) << hex;
  return out;
}

// RFC 9458 Appendix A ("Complete Example of a Request and Response"), values copied from the
// RFC text. The test below also checks them against ../shared/testdata/ohttp when present.
struct AppendixA {
  std::string gateway_secret_key =
      "3c168975674b2fa8e465970b79c8dcf09f1c741626480bd4c6162fc5b6a98e1a";
  std::string key_config =
      "01002031e1f05a740102115220e9af918f738674aec95f54db6e04eb705aae8e79815500080001000100010003";
  std::string request_bhttp = "00034745540568747470730b6578616d706c652e636f6d012f";
  std::string client_ephemeral_secret_key =
      "bc51d5e930bda26589890ac7032f70ad12e4ecb37abb1b65b1256c9c48999c73";
  std::string encapsulated_request =
      "010020000100014b28f881333e7c164ffc499ad9796f877f4e1051ee6d31bad19dec96c208b4726374e469"
      "135906992e1268c594d2a10c695d858c40a026e7965e7d86b83dd440b2c0185204b4d63525";
  std::string response_bhttp = "0140c8";
  std::string response_nonce = "c789e7151fcba46158ca84b04464910d";
  std::string response_aead_key = "5d0172a080e428b16d298c4ea0db620d";
  std::string response_aead_nonce = "f6bf1aeb88d6df87007fa263";
  std::string encapsulated_response =
      "c789e7151fcba46158ca84b04464910d86f9013e404feea014e7be4a441f234f857fbd";
};

TEST(OhttpTest, InlineAppendixValuesMatchTheSharedCopy) {
  auto path = testing::SharedTestDataFile("ohttp/rfc9458-appendix-a.json");
  if (path.empty()) GTEST_SKIP() << testing::SharedTestDataMissing("ohttp/rfc9458-appendix-a.json");
  std::ifstream file(path);
  auto json = nlohmann::json::parse(file);
  AppendixA a;
  EXPECT_EQ(json["gateway_x25519_secret_key"], a.gateway_secret_key);
  EXPECT_EQ(json["key_config"], a.key_config);
  EXPECT_EQ(json["request_bhttp"], a.request_bhttp);
  EXPECT_EQ(json["client_ephemeral_secret_key"], a.client_ephemeral_secret_key);
  EXPECT_EQ(json["encapsulated_request"], a.encapsulated_request);
  EXPECT_EQ(json["response_bhttp"], a.response_bhttp);
  EXPECT_EQ(std::string(json["response_salt"]).substr(64), a.response_nonce);
  EXPECT_EQ(json["response_aead_key"], a.response_aead_key);
  EXPECT_EQ(json["response_aead_nonce"], a.response_aead_nonce);
  EXPECT_EQ(json["encapsulated_response"], a.encapsulated_response);
}

TEST(OhttpTest, KeyConfigOfAppendixAParsesAndReencodes) {
  AppendixA a;
  auto config = OhttpKeyConfig::Parse(Hex(a.key_config));
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->key_id, 1);
  EXPECT_EQ(config->kem, HpkeKem::kX25519Sha256);
  auto gateway = HpkeKeyPair::FromPrivateKey(HpkeKem::kX25519Sha256, Hex(a.gateway_secret_key));
  ASSERT_TRUE(gateway.ok());
  EXPECT_EQ(config->public_key, gateway->public_key());
  ASSERT_EQ(config->suites.size(), 2u);
  EXPECT_TRUE(config->Accepts({HpkeKem::kX25519Sha256, HpkeKdf::kHkdfSha256,
                               HpkeAead::kAes128Gcm}));
  EXPECT_TRUE(config->Accepts({HpkeKem::kX25519Sha256, HpkeKdf::kHkdfSha256,
                               HpkeAead::kChaCha20Poly1305}));
  EXPECT_FALSE(config->Accepts({HpkeKem::kX25519Sha256, HpkeKdf::kHkdfSha256,
                                HpkeAead::kAes256Gcm}));
  EXPECT_EQ(ToHex(config->Encode()), a.key_config);
}

TEST(OhttpTest, AppendixARoundTripsByteForByte) {
  AppendixA a;
  auto config = OhttpKeyConfig::Parse(Hex(a.key_config));
  ASSERT_TRUE(config.ok());
  auto gateway = HpkeKeyPair::FromPrivateKey(HpkeKem::kX25519Sha256, Hex(a.gateway_secret_key));
  auto ephemeral =
      HpkeKeyPair::FromPrivateKey(HpkeKem::kX25519Sha256, Hex(a.client_ephemeral_secret_key));
  ASSERT_TRUE(gateway.ok() && ephemeral.ok());
  HpkeSuite suite{HpkeKem::kX25519Sha256, HpkeKdf::kHkdfSha256, HpkeAead::kAes128Gcm};
  HpkeSenderOptions options;
  options.ephemeral_key = &*ephemeral;
  Bytes request_bhttp = Hex(a.request_bhttp);
  auto client = OhttpEncapsulateRequest(*config, suite, kBinaryHttpLabels, request_bhttp, options);
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  EXPECT_EQ(ToHex(client->encapsulated), a.encapsulated_request);

  auto server = OhttpDecapsulateRequest(*config, *gateway, kBinaryHttpLabels, client->encapsulated);
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  EXPECT_EQ(server->payload, request_bhttp);
  EXPECT_EQ(server->header.key_id, 1);

  Bytes nonce = Hex(a.response_nonce);
  auto keys = OhttpDeriveResponseKeys(server->context, kBinaryHttpLabels.response, server->enc,
                                      nonce);
  ASSERT_TRUE(keys.ok());
  EXPECT_EQ(ToHex(keys->key.view()), a.response_aead_key);
  EXPECT_EQ(ToHex(keys->nonce.view()), a.response_aead_nonce);
  auto response = OhttpEncapsulateResponse(server->context, kBinaryHttpLabels, server->enc,
                                           Hex(a.response_bhttp), ByteView(nonce));
  ASSERT_TRUE(response.ok());
  EXPECT_EQ(ToHex(*response), a.encapsulated_response);
  auto opened =
      OhttpDecapsulateResponse(client->context, kBinaryHttpLabels, client->enc, *response);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  EXPECT_EQ(ToHex(*opened), a.response_bhttp);
}

class OhttpHostileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto key = HpkeKeyPair::Generate(HpkeKem::kX25519Sha256);
    ASSERT_TRUE(key.ok());
    key_.emplace(std::move(*key));
    config_.key_id = 7;
    config_.public_key = key_->public_key();
    config_.suites = {{HpkeKdf::kHkdfSha256, HpkeAead::kAes128Gcm}};
    auto request = OhttpEncapsulateRequest(config_, suite_, kInferenceLabels,
                                           AsBytes("a secret prompt"));
    ASSERT_TRUE(request.ok());
    request_ = std::move(request->encapsulated);
  }
  HpkeSuite suite_{HpkeKem::kX25519Sha256, HpkeKdf::kHkdfSha256, HpkeAead::kAes128Gcm};
  std::optional<HpkeKeyPair> key_;
  OhttpKeyConfig config_;
  Bytes request_;
};

TEST_F(OhttpHostileTest, OpensIntact) {
  auto opened = OhttpDecapsulateRequest(config_, *key_, kInferenceLabels, request_);
  ASSERT_TRUE(opened.ok());
  EXPECT_EQ(ToString(opened->payload), "a secret prompt");
}

TEST_F(OhttpHostileTest, EveryTruncationIsRefused) {
  for (size_t length = 0; length < request_.size(); ++length) {
    auto opened = OhttpDecapsulateRequest(config_, *key_, kInferenceLabels,
                                          ByteView(request_).first(length));
    EXPECT_FALSE(opened.ok()) << "accepted a request truncated to " << length << " bytes";
  }
}

TEST_F(OhttpHostileTest, EveryFlippedByteIsRefused) {
  for (size_t i = 0; i < request_.size(); ++i) {
    Bytes altered = request_;
    altered[i] ^= 0x01;
    auto opened = OhttpDecapsulateRequest(config_, *key_, kInferenceLabels, altered);
    EXPECT_FALSE(opened.ok()) << "accepted a request with byte " << i << " flipped";
  }
}

TEST_F(OhttpHostileTest, OtherLabelsOrKeysCannotOpen) {
  auto as_bhttp = OhttpDecapsulateRequest(config_, *key_, kBinaryHttpLabels, request_);
  EXPECT_EQ(as_bhttp.status().code(), base::StatusCode::kPermissionDenied);
  auto other = HpkeKeyPair::Generate(HpkeKem::kX25519Sha256);
  ASSERT_TRUE(other.ok());
  auto wrong_key = OhttpDecapsulateRequest(config_, *other, kInferenceLabels, request_);
  EXPECT_EQ(wrong_key.status().code(), base::StatusCode::kPermissionDenied);
  OhttpKeyConfig other_id = config_;
  other_id.key_id = 8;
  auto wrong_id = OhttpDecapsulateRequest(other_id, *key_, kInferenceLabels, request_);
  EXPECT_EQ(wrong_id.status().code(), base::StatusCode::kInvalidArgument);
  EXPECT_NE(wrong_id.status().message().find("key id 7"), std::string::npos);
}

TEST_F(OhttpHostileTest, ResponseOpensOnlyForItsRequest) {
  auto client = OhttpEncapsulateRequest(config_, suite_, kInferenceLabels, AsBytes("q"));
  auto other = OhttpEncapsulateRequest(config_, suite_, kInferenceLabels, AsBytes("q"));
  ASSERT_TRUE(client.ok() && other.ok());
  auto server = OhttpDecapsulateRequest(config_, *key_, kInferenceLabels, client->encapsulated);
  ASSERT_TRUE(server.ok());
  auto response = OhttpEncapsulateResponse(server->context, kInferenceLabels, server->enc,
                                           AsBytes("answer"));
  ASSERT_TRUE(response.ok());
  EXPECT_TRUE(OhttpDecapsulateResponse(client->context, kInferenceLabels, client->enc, *response)
                  .ok());
  EXPECT_FALSE(OhttpDecapsulateResponse(other->context, kInferenceLabels, other->enc, *response)
                   .ok());
  for (size_t length = 0; length < response->size(); ++length) {
    EXPECT_FALSE(OhttpDecapsulateResponse(client->context, kInferenceLabels, client->enc,
                                          ByteView(*response).first(length))
                     .ok());
  }
}

TEST(OhttpKeyConfigTest, MalformedConfigsAreRefused) {
  AppendixA a;
  Bytes good = Hex(a.key_config);
  for (size_t length = 0; length < good.size(); ++length) {
    EXPECT_FALSE(OhttpKeyConfig::Parse(ByteView(good).first(length)).ok()) << length;
  }
  Bytes trailing = good;
  trailing.push_back(0);
  EXPECT_FALSE(OhttpKeyConfig::Parse(trailing).ok());
  Bytes other_kem = good;
  other_kem[2] = 0x10;  // P-256
  auto refused = OhttpKeyConfig::Parse(other_kem);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("KEM"), std::string::npos);
  Bytes no_suites(good.begin(), good.begin() + 35);
  no_suites.push_back(0);
  no_suites.push_back(0);
  EXPECT_FALSE(OhttpKeyConfig::Parse(no_suites).ok());
  // Only unsupported suites (KDF 0x0099): refused as unusable.
  Bytes unknown_suites(good.begin(), good.begin() + 35);
  for (uint8_t byte : {0x00, 0x04, 0x00, 0x99, 0x00, 0x01}) unknown_suites.push_back(byte);
  EXPECT_FALSE(OhttpKeyConfig::Parse(unknown_suites).ok());
}

TEST(OhttpKeyConfigTest, ListRoundTripsAndRefusesTruncation) {
  AppendixA a;
  auto config = OhttpKeyConfig::Parse(Hex(a.key_config));
  ASSERT_TRUE(config.ok());
  OhttpKeyConfig second = *config;
  second.key_id = 2;
  Bytes list = EncodeKeyConfigList({*config, second});
  auto parsed = ParseKeyConfigList(list);
  ASSERT_TRUE(parsed.ok());
  ASSERT_EQ(parsed->size(), 2u);
  EXPECT_EQ((*parsed)[1].key_id, 2);
  for (size_t length = 0; length < list.size(); ++length) {
    auto partial = ParseKeyConfigList(ByteView(list).first(length));
    // A cut exactly between entries leaves a valid shorter list; anything else is an error.
    if (length == list.size() / 2) {
      EXPECT_TRUE(partial.ok());
    } else {
      EXPECT_FALSE(partial.ok()) << length;
    }
  }
}

}  // namespace
}  // namespace supercluster::crypto
