#include "base/base64.h"

#include <gtest/gtest.h>

namespace supercluster::base {
namespace {

// Vectors from RFC 4648 section 10.
TEST(Base64Test, KnownVectors) {
  EXPECT_EQ(Base64Encode(""), "");
  EXPECT_EQ(Base64Encode("f"), "Zg==");
  EXPECT_EQ(Base64Encode("fo"), "Zm8=");
  EXPECT_EQ(Base64Encode("foo"), "Zm9v");
  EXPECT_EQ(Base64Encode("foob"), "Zm9vYg==");
  EXPECT_EQ(Base64Encode(std::string(1, '\0')), "AA==");
  EXPECT_EQ(*Base64Decode("YS8x"), "a/1");
  EXPECT_EQ(*Base64Decode("djE="), "v1");
}

TEST(Base64Test, EveryByteRoundTrips) {
  std::string bytes;
  for (int i = 0; i < 256; ++i) bytes += static_cast<char>(i);
  for (size_t length = 0; length <= bytes.size(); length += 7) {
    std::string input = bytes.substr(bytes.size() - length);
    auto decoded = Base64Decode(Base64Encode(input));
    ASSERT_TRUE(decoded.ok());
    EXPECT_EQ(*decoded, input);
  }
}

TEST(Base64Test, RejectsWhatIsNotStrictBase64) {
  EXPECT_FALSE(Base64Decode("Zg=").ok());      // length not a multiple of 4
  EXPECT_FALSE(Base64Decode("Z===").ok());     // three padding characters
  EXPECT_FALSE(Base64Decode("Zg==Zg==").ok()); // padding in the middle
  EXPECT_FALSE(Base64Decode("Zh==").ok());     // non-zero bits under the padding
  EXPECT_FALSE(Base64Decode("Zm9v\n").ok());   // a character outside the alphabet
  EXPECT_FALSE(Base64Decode("Zm-_").ok());     // the URL-safe alphabet is not this one
  for (std::string_view bad : {"Zg", "Zm9=", "!!!!", "Zm 9", "=AAA"}) {
    EXPECT_FALSE(Base64Decode(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace supercluster::base
