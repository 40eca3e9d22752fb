#include "attest/cose_sign1.h"

#include <gtest/gtest.h>
#include <openssl/ec.h>
#include <openssl/evp.h>

#include <cstring>

#include "attest/ec_p384_key.h"
#include "attest/test_util.h"

namespace supercluster::attest {
namespace {

using testing::Hex;

TEST(EcP384KeyTest, SignsAndVerifies) {
  auto key = EcP384Key::Generate();
  ASSERT_TRUE(key.ok()) << key.status().ToString();
  EXPECT_TRUE(key->has_private_key());
  auto signature = key->Sign(BytesOf("wipe receipt"));
  ASSERT_TRUE(signature.ok());
  EXPECT_EQ(signature->size(), kEs384SignatureSize);
  EXPECT_TRUE(key->Verify(BytesOf("wipe receipt"), *signature).ok());
  EXPECT_FALSE(key->Verify(BytesOf("wipe receipT"), *signature).ok());
  Bytes altered = *signature;
  altered[50] ^= 1;
  EXPECT_EQ(key->Verify(BytesOf("wipe receipt"), altered).code(), base::StatusCode::kPermissionDenied);
  EXPECT_FALSE(key->Verify(BytesOf("wipe receipt"), Bytes(95)).ok());
  EXPECT_FALSE(key->Verify(BytesOf("wipe receipt"), Bytes(96, 0)).ok());  // r = s = 0
  EXPECT_FALSE(key->Verify(BytesOf("wipe receipt"), Bytes(96, 0xff)).ok());  // >= n
}

TEST(EcP384KeyTest, PemDerAndPointRoundTrip) {
  auto key = EcP384Key::Generate();
  ASSERT_TRUE(key.ok());
  Bytes signature = *key->Sign(BytesOf("m"));

  auto private_pem = key->PrivateKeyPem();
  ASSERT_TRUE(private_pem.ok());
  EXPECT_NE(private_pem->find("BEGIN PRIVATE KEY"), std::string::npos);
  auto reloaded = EcP384Key::FromPrivateKeyPem(*private_pem);
  ASSERT_TRUE(reloaded.ok()) << reloaded.status().ToString();
  EXPECT_TRUE(reloaded->Verify(BytesOf("m"), *reloaded->Sign(BytesOf("m"))).ok());
  EXPECT_TRUE(reloaded->Verify(BytesOf("m"), signature).ok());

  auto public_pem = EcP384Key::FromPublicKeyPem(*key->PublicKeyPem());
  ASSERT_TRUE(public_pem.ok());
  EXPECT_FALSE(public_pem->has_private_key());
  EXPECT_TRUE(public_pem->Verify(BytesOf("m"), signature).ok());
  EXPECT_FALSE(public_pem->Sign(BytesOf("m")).ok());
  EXPECT_FALSE(public_pem->PrivateKeyPem().ok());

  auto from_der = EcP384Key::FromPublicKeyDer(*key->PublicKeyDer());
  ASSERT_TRUE(from_der.ok());
  EXPECT_TRUE(from_der->Verify(BytesOf("m"), signature).ok());

  Bytes point = *key->PublicKeyPoint();
  ASSERT_EQ(point.size(), kP384UncompressedPointSize);
  EXPECT_EQ(point[0], 0x04);
  auto from_point = EcP384Key::FromPublicPoint(point);
  ASSERT_TRUE(from_point.ok()) << from_point.status().ToString();
  EXPECT_TRUE(from_point->Verify(BytesOf("m"), signature).ok());
  EXPECT_EQ(*from_point->PublicKeyDer(), *key->PublicKeyDer());
}

TEST(EcP384KeyTest, RejectsBadKeys) {
  EXPECT_FALSE(EcP384Key::FromPrivateKeyPem("not a key").ok());
  EXPECT_FALSE(EcP384Key::FromPublicKeyPem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n").ok());
  EXPECT_FALSE(EcP384Key::FromPublicKeyDer(Bytes{0x30, 0x00}).ok());
  Bytes off_curve(kP384UncompressedPointSize, 0x01);
  off_curve[0] = 0x04;
  EXPECT_FALSE(EcP384Key::FromPublicPoint(off_curve).ok());
  EXPECT_FALSE(EcP384Key::FromPublicPoint(Bytes(49, 0x02)).ok());
  // A P-256 key is refused: only P-384 is accepted.
  auto refused = EcP384Key::FromOpenSsl(EVP_EC_gen("P-256"));
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("P-384"), std::string::npos) << refused.status().message();
  EXPECT_FALSE(EcP384Key::FromOpenSsl(nullptr).ok());
}

TEST(CoseSign1Test, ProtectedHeaderIsEs384) {
  EXPECT_EQ(Es384ProtectedHeader(), Hex("a1 01 38 22"));
}

// RFC 9052 section 4.4: Sig_structure = ["Signature1", body_protected, external_aad, payload].
TEST(CoseSign1Test, SigStructureLayout) {
  EXPECT_EQ(CoseSign1SigStructure(Hex("a1013822"), BytesOf("hi")),
            Hex("84 6a 5369676e617475726531 44 a1013822 40 42 6869"));
}

TEST(CoseSign1Test, SignThenDecodeAndVerify) {
  auto key = EcP384Key::Generate();
  ASSERT_TRUE(key.ok());
  auto other = EcP384Key::Generate();
  for (bool tagged : {false, true}) {
    auto message = SignCoseSign1(BytesOf("payload"), *key, tagged);
    ASSERT_TRUE(message.ok());
    EXPECT_EQ((*message)[0], tagged ? 0xd2 : 0x84);
    auto decoded = DecodeCoseSign1(*message);
    ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
    EXPECT_EQ(decoded->payload, BytesOf("payload"));
    EXPECT_TRUE(VerifyCoseSign1(*decoded, *key).ok());
    EXPECT_FALSE(VerifyCoseSign1(*decoded, *other).ok());
    decoded->payload.push_back('!');
    EXPECT_FALSE(VerifyCoseSign1(*decoded, *key).ok());
  }
}

TEST(CoseSign1Test, RejectsMalformedStructures) {
  Bytes signature(96, 1);
  auto build = [&](CborValue protected_header, CborValue unprotected, CborValue payload,
                   CborValue signature_value) {
    return EncodeCbor(CborValue::Array({protected_header, unprotected, payload, signature_value}));
  };
  CborValue es384 = CborValue::ByteString(Hex("a1013822"));
  CborValue empty_map = CborValue::Map({});
  CborValue payload = CborValue::ByteString(BytesOf("p"));
  CborValue good_signature = CborValue::ByteString(signature);
  ASSERT_TRUE(DecodeCoseSign1(build(es384, empty_map, payload, good_signature)).ok());

  struct Case {
    const char* what;
    Bytes message;
  };
  const Case cases[] = {
      {"ES256", build(CborValue::ByteString(Hex("a10126")), empty_map, payload, good_signature)},
      {"ES384 in a longer encoding", build(CborValue::ByteString(Hex("a1 1801 3822")), empty_map, payload, good_signature)},
      {"extra protected header", build(CborValue::ByteString(Hex("a2 013822 0400")), empty_map, payload, good_signature)},
      {"empty protected", build(CborValue::ByteString(Bytes()), empty_map, payload, good_signature)},
      {"protected as a map", build(CborValue::Map({{CborValue::Int(1), CborValue::Int(-35)}}), empty_map, payload, good_signature)},
      {"alg unprotected", build(es384, CborValue::Map({{CborValue::Int(1), CborValue::Int(-35)}}), payload, good_signature)},
      {"unprotected not a map", build(es384, CborValue::Array({}), payload, good_signature)},
      {"detached payload", build(es384, empty_map, CborValue::Null(), good_signature)},
      {"short signature", build(es384, empty_map, payload, CborValue::ByteString(Bytes(64, 1)))},
      {"signature text", build(es384, empty_map, payload, CborValue::Text("sig"))},
      {"three items", EncodeCbor(CborValue::Array({es384, empty_map, payload}))},
      {"wrong tag", EncodeCbor(CborValue::Tag(98, CborValue::Array({es384, empty_map, payload, good_signature})))},
      {"a map", EncodeCbor(CborValue::Map({}))},
      {"trailing byte", [&] { Bytes b = build(es384, empty_map, payload, good_signature); b.push_back(0); return b; }()},
  };
  for (const Case& c : cases) {
    auto decoded = DecodeCoseSign1(c.message);
    EXPECT_FALSE(decoded.ok()) << c.what;
    if (!decoded.ok()) {
      EXPECT_EQ(decoded.status().message().rfind("COSE_Sign1: ", 0), 0u) << decoded.status().message();
    }
  }
}

}  // namespace
}  // namespace supercluster::attest
