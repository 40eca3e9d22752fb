#include "crypto/bytes.h"

#include <gtest/gtest.h>

namespace supercluster::crypto {
namespace {

TEST(BytesTest, ToHexIsLowerCaseTwoDigitsPerByte) {
  EXPECT_EQ(ToHex(Bytes{}), "");
  EXPECT_EQ(ToHex(Bytes{0x00, 0x0f, 0xa0, 0xff}), "000fa0ff");
}

TEST(BytesTest, FromHexRoundTripsAndAcceptsUpperCase) {
  Bytes out;
  ASSERT_TRUE(FromHex("000fa0ff", &out));
  EXPECT_EQ(out, (Bytes{0x00, 0x0f, 0xa0, 0xff}));
  ASSERT_TRUE(FromHex("DEADbeef", &out));
  EXPECT_EQ(out, (Bytes{0xde, 0xad, 0xbe, 0xef}));
  ASSERT_TRUE(FromHex("", &out));
  EXPECT_TRUE(out.empty());
}

TEST(BytesTest, FromHexRejectsOddLengthAndNonHexAndLeavesOutputAlone) {
  Bytes out = {0x42};
  EXPECT_FALSE(FromHex("abc", &out));
  EXPECT_FALSE(FromHex("0g", &out));
  EXPECT_FALSE(FromHex("g0", &out));
  EXPECT_FALSE(FromHex("0x00", &out));
  EXPECT_FALSE(FromHex(" 0", &out));
  EXPECT_FALSE(FromHex(std::string_view("0\0", 2), &out));
  EXPECT_EQ(out, Bytes{0x42});
}

TEST(BytesTest, ConcatJoinsInOrder) {
  Bytes a = {1, 2};
  Bytes b = {};
  Bytes c = {3};
  EXPECT_EQ(Concat({a, b, c}), (Bytes{1, 2, 3}));
  EXPECT_TRUE(Concat({}).empty());
}

TEST(BytesTest, TextConversionsDoNotChangeBytes) {
  std::string text("a\0b\xff", 4);
  EXPECT_EQ(ToBytes(text), (Bytes{'a', 0, 'b', 0xff}));
  EXPECT_EQ(ToString(ToBytes(text)), text);
}

}  // namespace
}  // namespace supercluster::crypto
