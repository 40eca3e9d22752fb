#include "crypto/hkdf.h"

#include <gtest/gtest.h>

#include <string>

namespace supercluster::crypto {
namespace {

std::string HexOf(const SecretBytes& secret) { return ToHex(secret.view()); }

Bytes Range(int first, int end) {
  Bytes out;
  for (int i = first; i < end; ++i) out.push_back(static_cast<uint8_t>(i));
  return out;
}

// RFC 5869 Appendix A, test case 1 (SHA-256; 42 bytes = two HMAC blocks).
TEST(HkdfTest, Rfc5869TestCase1) {
  auto prk = HkdfExtract(HpkeKdf::kHkdfSha256, Range(0x00, 0x0d), Bytes(22, 0x0b));
  ASSERT_TRUE(prk.ok()) << prk.status().ToString();
  EXPECT_EQ(HexOf(*prk), "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5");
  auto okm = HkdfExpand(HpkeKdf::kHkdfSha256, prk->view(), Range(0xf0, 0xfa), 42);
  ASSERT_TRUE(okm.ok()) << okm.status().ToString();
  EXPECT_EQ(HexOf(*okm),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b8871858"
            "65");
}

// RFC 5869 Appendix A, test case 2 (long inputs; 82 bytes = three blocks).
TEST(HkdfTest, Rfc5869TestCase2) {
  auto prk = HkdfExtract(HpkeKdf::kHkdfSha256, Range(0x60, 0xb0), Range(0x00, 0x50));
  ASSERT_TRUE(prk.ok());
  EXPECT_EQ(HexOf(*prk), "06a6b88c5853361a06104c9ceb35b45cef760014904671014a193f40c15fc244");
  auto okm = HkdfExpand(HpkeKdf::kHkdfSha256, prk->view(), Range(0xb0, 0x100), 82);
  ASSERT_TRUE(okm.ok());
  EXPECT_EQ(HexOf(*okm),
            "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c59045a99cac78272"
            "71cb41c65e590e09da3275600c2f09b8367793a9aca3db71cc30c58179ec3e87c14c01d5c1f3434f"
            "1d87");
}

// RFC 5869 Appendix A, test case 3 (empty salt and info: the salt is HashLen zeros).
TEST(HkdfTest, Rfc5869TestCase3EmptySaltAndInfo) {
  auto prk = HkdfExtract(HpkeKdf::kHkdfSha256, {}, Bytes(22, 0x0b));
  ASSERT_TRUE(prk.ok());
  EXPECT_EQ(HexOf(*prk), "19ef24a32c717b167f33a91d6f648bdf96596776afdb6377ac434c1c293ccb04");
  auto okm = HkdfExpand(HpkeKdf::kHkdfSha256, prk->view(), {}, 42);
  ASSERT_TRUE(okm.ok());
  EXPECT_EQ(HexOf(*okm),
            "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a"
            "96c8");
}

// SHA-384, three blocks. Expected values computed with Python's hmac/hashlib modules
// (an independent implementation), as RFC 5869 has no SHA-384 case.
TEST(HkdfTest, Sha384AgainstPythonHmac) {
  auto prk = HkdfExtract(HpkeKdf::kHkdfSha384, ToBytes("salt"), ToBytes("ikm"));
  ASSERT_TRUE(prk.ok());
  EXPECT_EQ(HexOf(*prk),
            "d2be1d1d8a6a32a6e02ff57e1a1d79658aed17eac0a36729c8b1324e90a18fda759f02e3ee851fa8"
            "4057188bd107f282");
  auto okm = HkdfExpand(HpkeKdf::kHkdfSha384, prk->view(), ToBytes("info"), 100);
  ASSERT_TRUE(okm.ok());
  EXPECT_EQ(HexOf(*okm),
            "8a4904829f7acb5fe62bfbce3ed1a2d9428bdcba65d4db11e7471f3b7ab9eaffb058cfdad0c509f3"
            "ccd90685666fa8b2b2f6091d3ee2045886335d2ca8524330e16c90401b1abee7254ae0c6b5b131af"
            "1911199e43bcd263f5441c7f63e41578237236b6");
}

TEST(HkdfTest, HashSizes) {
  EXPECT_EQ(HkdfHashSize(HpkeKdf::kHkdfSha256), 32u);
  EXPECT_EQ(HkdfHashSize(HpkeKdf::kHkdfSha384), 48u);
  EXPECT_EQ(HkdfHashSize(HpkeKdf::kHkdfSha512), 64u);
  auto prk = HkdfExtract(HpkeKdf::kHkdfSha512, {}, ToBytes("x"));
  ASSERT_TRUE(prk.ok());
  EXPECT_EQ(prk->size(), 64u);
}

TEST(HkdfTest, ExpandRefusesMoreThan255Blocks) {
  Bytes prk(32, 1);
  auto at_limit = HkdfExpand(HpkeKdf::kHkdfSha256, prk, {}, 255 * 32);
  ASSERT_TRUE(at_limit.ok());
  EXPECT_EQ(at_limit->size(), 255u * 32);
  auto over = HkdfExpand(HpkeKdf::kHkdfSha256, prk, {}, 255 * 32 + 1);
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.status().code(), base::StatusCode::kInvalidArgument);
  EXPECT_FALSE(HkdfExpand(HpkeKdf::kHkdfSha512, prk, {}, 255 * 64 + 1).ok());
}

TEST(HkdfTest, UnknownKdfIdIsRefused) {
  auto result = HkdfExtract(static_cast<HpkeKdf>(9), {}, ToBytes("x"));
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), base::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace supercluster::crypto
