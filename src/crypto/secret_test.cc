#include "crypto/secret.h"

#include <gtest/gtest.h>

#include <utility>

#include "crypto/random.h"

namespace supercluster::crypto {
namespace {

TEST(ZeroizeTest, OverwritesWithZerosAndToleratesEmpty) {
  uint8_t buffer[5] = {1, 2, 3, 4, 5};
  Zeroize(buffer, 3);
  EXPECT_EQ(buffer[0], 0);
  EXPECT_EQ(buffer[2], 0);
  EXPECT_EQ(buffer[3], 4);  // only the requested bytes
  Zeroize(nullptr, 0);
}

TEST(ConstantTimeEqualsTest, ComparesLengthAndContents) {
  Bytes a = {1, 2, 3};
  EXPECT_TRUE(ConstantTimeEquals(a, Bytes{1, 2, 3}));
  EXPECT_FALSE(ConstantTimeEquals(a, Bytes{1, 2, 4}));
  EXPECT_FALSE(ConstantTimeEquals(a, Bytes{0, 2, 3}));
  EXPECT_FALSE(ConstantTimeEquals(a, Bytes{1, 2}));
  EXPECT_FALSE(ConstantTimeEquals(a, Bytes{1, 2, 3, 0}));
  EXPECT_TRUE(ConstantTimeEquals(Bytes{}, Bytes{}));
  EXPECT_FALSE(ConstantTimeEquals(Bytes{}, Bytes{0}));
}

TEST(SecretBytesTest, ConstructsZeroFilledOrFromBytes) {
  SecretBytes zeros(4);
  EXPECT_EQ(Bytes(zeros.view().begin(), zeros.view().end()), Bytes(4, 0));
  SecretBytes copy(Bytes{7, 8});
  EXPECT_EQ(copy.size(), 2u);
  EXPECT_EQ(copy.data()[1], 8);
}

TEST(SecretBytesTest, WipeZeroesTheBufferAndEmpties) {
  SecretBytes secret(Bytes{0xaa, 0xbb, 0xcc, 0xdd});
  const uint8_t* buffer = secret.data();
  secret.Wipe();
  EXPECT_TRUE(secret.empty());
  EXPECT_EQ(secret.size(), 0u);
  // Wipe keeps the zeroed buffer allocated until destruction, so it can be inspected.
  for (size_t i = 0; i < 4; ++i) EXPECT_EQ(buffer[i], 0) << "byte " << i;
}

TEST(SecretBytesTest, MoveLeavesTheSourceEmpty) {
  SecretBytes source(Bytes{1, 2, 3});
  SecretBytes moved(std::move(source));
  EXPECT_TRUE(source.empty());  // NOLINT(bugprone-use-after-move): the point of the test
  EXPECT_EQ(moved.size(), 3u);

  SecretBytes target(Bytes{9});
  target = std::move(moved);
  EXPECT_TRUE(moved.empty());  // NOLINT(bugprone-use-after-move)
  ASSERT_EQ(target.size(), 3u);
  EXPECT_EQ(target.data()[0], 1);
}

TEST(SecretBytesTest, CopyIsIndependent) {
  SecretBytes original(Bytes{5, 6});
  SecretBytes copy = original.Copy();
  original.Wipe();
  ASSERT_EQ(copy.size(), 2u);
  EXPECT_EQ(copy.data()[0], 5);
}

TEST(RandomBytesTest, GivesTheRequestedSizeAndDiffers) {
  auto first = RandomBytes(32);
  auto second = RandomBytes(32);
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(first->size(), 32u);
  EXPECT_NE(*first, *second);  // 2^-256 chance of a false failure
  auto empty = RandomBytes(0);
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
}

}  // namespace
}  // namespace supercluster::crypto
