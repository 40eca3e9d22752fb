#include "crypto/aead.h"

#include <gtest/gtest.h>

namespace supercluster::crypto {
namespace {

Bytes Hex(std::string_view hex) {
  Bytes out;
  EXPECT_TRUE(FromHex(hex, &out)) << hex;
  return out;
}

constexpr HpkeAead kAeads[] = {HpkeAead::kAes128Gcm, HpkeAead::kAes256Gcm,
                               HpkeAead::kChaCha20Poly1305};

// Known answer: the key, nonce and first encryption of RFC 9180 Appendix A.1.1
// (AES-128-GCM, sequence number 0).
TEST(AeadTest, Aes128GcmKnownAnswerFromRfc9180A11) {
  Bytes key = Hex("4531685d41d65f03dc48f6b8302c05b0");
  Bytes nonce = Hex("56d890e5accaaf011cff4b7d");
  Bytes aad = Hex("436f756e742d30");
  Bytes plaintext = Hex("4265617574792069732074727574682c20747275746820626561757479");
  Bytes expected = Hex(
      "f938558b5d72f1a23810b4be2ab4f84331acc02fc97babc53a52ae8218a355a96d8770ac83d07bea87e1"
      "3c512a");
  auto sealed = AeadSeal(HpkeAead::kAes128Gcm, key, nonce, aad, plaintext);
  ASSERT_TRUE(sealed.ok()) << sealed.status().ToString();
  EXPECT_EQ(ToHex(*sealed), ToHex(expected));
  auto opened = AeadOpen(HpkeAead::kAes128Gcm, key, nonce, aad, expected);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  EXPECT_EQ(*opened, plaintext);
}

TEST(AeadTest, RoundTripsAndAppendsA16ByteTag) {
  for (HpkeAead aead : kAeads) {
    Bytes key(HpkeAeadKeySize(aead), 0x11);
    Bytes nonce(HpkeAeadNonceSize(aead), 0x22);
    for (size_t size : {size_t{0}, size_t{1}, size_t{4096}}) {
      Bytes plaintext(size, 0x5a);
      auto sealed = AeadSeal(aead, key, nonce, ToBytes("aad"), plaintext);
      ASSERT_TRUE(sealed.ok()) << sealed.status().ToString();
      EXPECT_EQ(sealed->size(), size + 16);
      auto opened = AeadOpen(aead, key, nonce, ToBytes("aad"), *sealed);
      ASSERT_TRUE(opened.ok()) << opened.status().ToString();
      EXPECT_EQ(*opened, plaintext);
    }
  }
}

TEST(AeadTest, TamperingAnyPartFailsClosed) {
  for (HpkeAead aead : kAeads) {
    Bytes key(HpkeAeadKeySize(aead), 0x11);
    Bytes nonce(HpkeAeadNonceSize(aead), 0x22);
    Bytes aad = ToBytes("header");
    auto sealed = AeadSeal(aead, key, nonce, aad, ToBytes("attack at dawn"));
    ASSERT_TRUE(sealed.ok());
    for (size_t i = 0; i < sealed->size(); ++i) {  // body and tag bytes alike
      Bytes tampered = *sealed;
      tampered[i] ^= 0x01;
      auto opened = AeadOpen(aead, key, nonce, aad, tampered);
      ASSERT_FALSE(opened.ok()) << "byte " << i;
      EXPECT_EQ(opened.status().code(), base::StatusCode::kPermissionDenied);
      EXPECT_EQ(opened.status().message(), "decryption failed");
    }
    EXPECT_FALSE(AeadOpen(aead, key, nonce, ToBytes("headeR"), *sealed).ok());
    EXPECT_FALSE(AeadOpen(aead, key, nonce, {}, *sealed).ok());
    Bytes other_key = key;
    other_key[0] ^= 0x80;
    EXPECT_FALSE(AeadOpen(aead, other_key, nonce, aad, *sealed).ok());
    Bytes other_nonce = nonce;
    other_nonce[11] ^= 0x01;
    EXPECT_FALSE(AeadOpen(aead, key, other_nonce, aad, *sealed).ok());
    // Truncated: shorter than the tag, or missing the tag's last byte.
    Bytes truncated(sealed->begin(), sealed->end() - 1);
    EXPECT_FALSE(AeadOpen(aead, key, nonce, aad, truncated).ok());
    auto too_short = AeadOpen(aead, key, nonce, aad, Bytes(15, 0));
    ASSERT_FALSE(too_short.ok());
    EXPECT_EQ(too_short.status().code(), base::StatusCode::kPermissionDenied);
    EXPECT_FALSE(AeadOpen(aead, key, nonce, aad, {}).ok());
  }
}

TEST(AeadTest, WrongKeyOrNonceLengthIsInvalidArgument) {
  Bytes nonce(12, 0);
  for (size_t key_size : {0, 15, 17, 32}) {
    auto sealed = AeadSeal(HpkeAead::kAes128Gcm, Bytes(key_size, 1), nonce, {}, ToBytes("x"));
    ASSERT_FALSE(sealed.ok()) << key_size;
    EXPECT_EQ(sealed.status().code(), base::StatusCode::kInvalidArgument);
    EXPECT_FALSE(AeadOpen(HpkeAead::kAes128Gcm, Bytes(key_size, 1), nonce, {}, Bytes(32, 0)).ok());
  }
  EXPECT_FALSE(AeadSeal(HpkeAead::kChaCha20Poly1305, Bytes(16, 1), nonce, {}, {}).ok());
  for (size_t nonce_size : {0, 8, 11, 13, 16}) {
    auto sealed =
        AeadSeal(HpkeAead::kAes256Gcm, Bytes(32, 1), Bytes(nonce_size, 0), {}, ToBytes("x"));
    ASSERT_FALSE(sealed.ok()) << nonce_size;
    EXPECT_EQ(sealed.status().code(), base::StatusCode::kInvalidArgument);
  }
}

TEST(AeadTest, ExportOnlyHasNoCipher) {
  auto sealed = AeadSeal(HpkeAead::kExportOnly, {}, {}, {}, ToBytes("x"));
  ASSERT_FALSE(sealed.ok());
  EXPECT_EQ(sealed.status().code(), base::StatusCode::kInvalidArgument);
  EXPECT_FALSE(AeadOpen(HpkeAead::kExportOnly, {}, {}, {}, Bytes(16, 0)).ok());
  EXPECT_FALSE(AeadSeal(static_cast<HpkeAead>(7), Bytes(16, 0), Bytes(12, 0), {}, {}).ok());
}

TEST(AeadTest, DifferentNoncesGiveDifferentCiphertexts) {
  Bytes key(16, 3);
  auto first = AeadSeal(HpkeAead::kAes128Gcm, key, Bytes(12, 0), {}, ToBytes("same"));
  auto second = AeadSeal(HpkeAead::kAes128Gcm, key, Bytes(12, 1), {}, ToBytes("same"));
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_NE(*first, *second);
}

}  // namespace
}  // namespace supercluster::crypto
