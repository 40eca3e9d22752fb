// Tensor types: block sizes, byte sizes with overflow checks, half/bfloat16 conversions
// against known encodings, and Q8_0/Q4_0 reference (de)quantization of hand-built blocks.
#include "engine/tensor_type.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

namespace supercluster::engine {
namespace {

using ::testing::HasSubstr;

TEST(TensorTypeTest, LayoutsAndNames) {
  EXPECT_EQ(FindTensorType(8)->block_bytes, 34u);
  EXPECT_EQ(FindTensorType(2)->block_bytes, 18u);
  EXPECT_EQ(FindTensorType(30)->type, TensorType::kBF16);
  EXPECT_EQ(FindTensorType(4), nullptr);  // Q4_2, removed from ggml
  EXPECT_EQ(FindTensorType(1000), nullptr);
  EXPECT_EQ(TensorTypeName(TensorType::kQ6_K), "q6_K");
  EXPECT_EQ(*ParseTensorTypeName("q8_0"), TensorType::kQ8_0);
  EXPECT_FALSE(ParseTensorTypeName("q9_0").ok());
}

TEST(TensorTypeTest, ByteSizes) {
  EXPECT_EQ(*RowByteSize(TensorType::kQ8_0, 64), 68u);
  EXPECT_EQ(*RowByteSize(TensorType::kQ4_K, 512), 288u);
  EXPECT_THAT(RowByteSize(TensorType::kQ4_0, 48).status().message(),
              HasSubstr("a row of 48 q4_0 values is not a whole number of 32-value blocks"));
  std::vector<uint64_t> shape = {4096, 32000};
  EXPECT_EQ(*TensorByteSize(TensorType::kF16, shape), 4096ull * 32000 * 2);
  EXPECT_EQ(*TensorByteSize(TensorType::kQ8_0, shape), 4096ull / 32 * 34 * 32000);
  std::vector<uint64_t> huge = {1ull << 62, 8};
  EXPECT_THAT(TensorByteSize(TensorType::kF32, huge).status().message(), HasSubstr("overflows"));
  std::vector<uint64_t> row_overflow = {1ull << 62};
  EXPECT_THAT(TensorByteSize(TensorType::kF32, row_overflow).status().message(), HasSubstr("overflows"));
  std::vector<uint64_t> zero = {4, 0};
  EXPECT_THAT(ElementCount(zero).status().message(), HasSubstr("dimension 1 is zero"));
  EXPECT_EQ(*ElementCount(std::vector<uint64_t>{}), 1u);
}

TEST(TensorTypeTest, HalfKnownEncodings) {
  EXPECT_EQ(FloatToHalf(1.0f), 0x3c00);
  EXPECT_EQ(FloatToHalf(-2.0f), 0xc000);
  EXPECT_EQ(FloatToHalf(65504.0f), 0x7bff);
  EXPECT_EQ(FloatToHalf(65520.0f), 0x7c00);   // rounds up to infinity
  EXPECT_EQ(FloatToHalf(65519.0f), 0x7bff);
  EXPECT_EQ(FloatToHalf(std::ldexp(1.0f, -24)), 0x0001);  // smallest subnormal
  EXPECT_EQ(FloatToHalf(std::ldexp(1.0f, -25)), 0x0000);  // halfway: to even (zero)
  EXPECT_EQ(FloatToHalf(0.1f), 0x2e66);
  EXPECT_EQ(FloatToHalf(1.0f + std::ldexp(1.0f, -11)), 0x3c00);  // tie: to even
  EXPECT_EQ(FloatToHalf(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);
  EXPECT_EQ(FloatToHalf(-0.0f), 0x8000);
  EXPECT_EQ(FloatToHalf(std::numeric_limits<float>::infinity()), 0x7c00);
  EXPECT_EQ(FloatToHalf(std::nanf("")) & 0x7c00, 0x7c00);
  EXPECT_NE(FloatToHalf(std::nanf("")) & 0x3ff, 0);
  EXPECT_EQ(HalfToFloat(0x3555), 0.333251953125f);
  EXPECT_EQ(HalfToFloat(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(HalfToFloat(0xfc00), -std::numeric_limits<float>::infinity());
}

TEST(TensorTypeTest, EveryHalfRoundTrips) {
  for (uint32_t bits = 0; bits < 0x10000; ++bits) {
    uint16_t half = static_cast<uint16_t>(bits);
    float value = HalfToFloat(half);
    if (std::isnan(value)) continue;
    ASSERT_EQ(FloatToHalf(value), half) << std::hex << bits;
  }
}

TEST(TensorTypeTest, BFloat16) {
  EXPECT_EQ(FloatToBFloat16(1.0f), 0x3f80);
  EXPECT_EQ(BFloat16ToFloat(0xc040), -3.0f);
  EXPECT_EQ(FloatToBFloat16(1.0f + std::ldexp(1.0f, -8)), 0x3f80);  // tie: to even
  EXPECT_EQ(FloatToBFloat16(1.0f + 3 * std::ldexp(1.0f, -8)), 0x3f82);
  EXPECT_TRUE(std::isnan(BFloat16ToFloat(FloatToBFloat16(std::nanf("")))));
}

TEST(TensorTypeTest, DequantizeHandBuiltQ8_0Block) {
  uint8_t block[34];
  block[0] = 0x00;  // scale 0.5 as f16 0x3800, little-endian
  block[1] = 0x38;
  for (int j = 0; j < 32; ++j) block[2 + j] = static_cast<uint8_t>(static_cast<int8_t>(j * 8 - 128));
  float out[32];
  ASSERT_TRUE(DequantizeRow(TensorType::kQ8_0, block, 32, out).ok());
  EXPECT_EQ(out[0], -64.0f);
  EXPECT_EQ(out[16], 0.0f);
  EXPECT_EQ(out[31], 60.0f);
}

TEST(TensorTypeTest, DequantizeHandBuiltQ4_0Block) {
  uint8_t block[18];
  block[0] = 0x00;  // scale 2.0 = f16 0x4000
  block[1] = 0x40;
  for (int j = 0; j < 16; ++j) block[2 + j] = static_cast<uint8_t>((j & 0xf) | ((15 - j) << 4));
  float out[32];
  ASSERT_TRUE(DequantizeRow(TensorType::kQ4_0, block, 32, out).ok());
  EXPECT_EQ(out[0], -16.0f);   // (0 - 8) * 2
  EXPECT_EQ(out[15], 14.0f);   // (15 - 8) * 2
  EXPECT_EQ(out[16], 14.0f);   // high nibble of byte 0: 15
  EXPECT_EQ(out[31], -16.0f);  // high nibble of byte 15: 0
  EXPECT_FALSE(DequantizeRow(TensorType::kQ4_0, block, 16, out).ok());
  EXPECT_FALSE(DequantizeRow(TensorType::kQ6_K, block, 256, out).ok());
}

TEST(TensorTypeTest, QuantizeRoundTripsWithinTheStepSize) {
  std::mt19937 random(7);
  std::uniform_real_distribution<float> uniform(-3.0f, 3.0f);
  std::vector<float> values(256);
  for (float& value : values) value = uniform(random);
  values[5] = 0.0f;
  for (TensorType type : {TensorType::kF32, TensorType::kF16, TensorType::kBF16,
                          TensorType::kQ8_0, TensorType::kQ4_0}) {
    std::vector<uint8_t> row(*RowByteSize(type, values.size()));
    ASSERT_TRUE(QuantizeRow(type, values.data(), values.size(), row.data()).ok());
    std::vector<float> back(values.size());
    ASSERT_TRUE(DequantizeRow(type, row.data(), values.size(), back.data()).ok());
    // Worst-case error: half a step of the block's scale for q8_0 (3/127), a whole step
    // for q4_0 (3/8: levels run -8..7, so the side opposite the extreme clamps at 7),
    // plus the f16 rounding of the scale itself.
    float tolerance = type == TensorType::kF32    ? 0.0f
                      : type == TensorType::kF16  ? 3.0f / 2048
                      : type == TensorType::kBF16 ? 3.0f / 128
                      : type == TensorType::kQ8_0 ? 3.0f / 127 * 0.51f
                                                  : 3.0f / 8 * 1.01f;
    for (size_t i = 0; i < values.size(); ++i) {
      ASSERT_NEAR(back[i], values[i], tolerance) << TensorTypeName(type) << " at " << i;
    }
  }
  // An all-zero block quantizes to zeros, not NaN.
  std::vector<float> zeros(32, 0.0f);
  uint8_t block[34];
  float back[32];
  ASSERT_TRUE(QuantizeRow(TensorType::kQ8_0, zeros.data(), 32, block).ok());
  ASSERT_TRUE(DequantizeRow(TensorType::kQ8_0, block, 32, back).ok());
  EXPECT_EQ(back[3], 0.0f);
}

}  // namespace
}  // namespace supercluster::engine
