#include "engine/kernels/quantize.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "engine/kernels/half.h"
#include "engine/kernels/kernels_test_util.h"

namespace supercluster::engine::kernels {
namespace {

TEST(TensorType, RowBytesMatchGgml) {
  EXPECT_EQ(RowBytes(TensorType::kF32, 4096), 16384);
  EXPECT_EQ(RowBytes(TensorType::kF16, 4096), 8192);
  EXPECT_EQ(RowBytes(TensorType::kBF16, 10), 20);
  EXPECT_EQ(RowBytes(TensorType::kQ8_0, 4096), 128 * 34);
  EXPECT_EQ(RowBytes(TensorType::kQ4_0, 4096), 128 * 18);
  EXPECT_STREQ(TensorTypeName(TensorType::kQ4_0), "q4_0");
}

TEST(Quantize, Q8_0FollowsTheRule) {
  std::vector<float> x = RandomFloats(4096 + 32, 11, -3.0f, 3.0f);
  for (int i = 0; i < 32; ++i) x[32 + i] = 0.0f;  // an all-zero block
  std::vector<BlockQ8_0> blocks(x.size() / 32);
  QuantizeRowQ8_0(x.data(), blocks.data(), static_cast<int64_t>(x.size()));
  for (size_t b = 0; b < blocks.size(); ++b) {
    double max_abs = 0;
    for (int i = 0; i < 32; ++i) max_abs = std::fmax(max_abs, std::fabs(x[b * 32 + i]));
    const float d = static_cast<float>(max_abs) / 127.0f;
    ASSERT_EQ(blocks[b].d, Fp32ToFp16(d)) << b;
    int largest_code = 0;
    for (int i = 0; i < 32; ++i) {
      const int q = blocks[b].q[i];
      largest_code = std::max(largest_code, std::abs(q));
      // q is x / d rounded: within half a step (and a little for the reciprocal's rounding).
      ASSERT_LE(std::fabs(x[b * 32 + i] - q * static_cast<double>(d)), d * 0.5 * (1 + 1e-5) + 1e-30)
          << b << " " << i;
    }
    EXPECT_EQ(largest_code, max_abs == 0 ? 0 : 127) << b;
  }
}

TEST(Quantize, Q8_0RoundTripWithinAStep) {
  const std::vector<float> x = RandomFloats(1024, 12, -100.0f, 100.0f);
  std::vector<BlockQ8_0> blocks(x.size() / 32);
  QuantizeRowQ8_0(x.data(), blocks.data(), static_cast<int64_t>(x.size()));
  std::vector<float> back(x.size());
  DequantizeRow(TensorType::kQ8_0, blocks.data(), back.data(), static_cast<int64_t>(x.size()));
  for (size_t i = 0; i < x.size(); ++i) {
    const double d = Fp16ToFp32(blocks[i / 32].d);
    // Half a step, plus up to 127 times the half-precision rounding of d (2^-11 relative).
    ASSERT_LE(std::fabs(x[i] - back[i]), d * (0.5 + 127.0 / 2048.0) * 1.001) << i;
  }
}

TEST(Quantize, Q4_0RoundTripWithinAStep) {
  const std::vector<float> x = RandomFloats(1024, 13, -2.0f, 2.0f);
  std::vector<BlockQ4_0> blocks(x.size() / 32);
  QuantizeRowQ4_0(x.data(), blocks.data(), static_cast<int64_t>(x.size()));
  std::vector<float> back(x.size());
  DequantizeRow(TensorType::kQ4_0, blocks.data(), back.data(), static_cast<int64_t>(x.size()));
  for (size_t i = 0; i < x.size(); ++i) {
    const double d = std::fabs(Fp16ToFp32(blocks[i / 32].d));
    // One step: the far side of the range is clamped to code 15 (7 d) when it should be 8 d.
    ASSERT_LE(std::fabs(x[i] - back[i]), d * (1.0 + 8.0 / 2048.0)) << i;
  }
}

TEST(Dequantize, Q4_0NibbleLayout) {
  BlockQ4_0 block;
  block.d = Fp32ToFp16(0.5f);
  for (int j = 0; j < 16; ++j) block.q[j] = static_cast<uint8_t>(j | ((15 - j) << 4));
  float out[32];
  DequantizeRow(TensorType::kQ4_0, &block, out, 32);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(out[j], 0.5f * (j - 8)) << j;              // low nibble: element j
    EXPECT_EQ(out[j + 16], 0.5f * (15 - j - 8)) << j;    // high nibble: element j + 16
  }
}

TEST(Dequantize, Q8_0AndFloatTypes) {
  BlockQ8_0 block;
  block.d = Fp32ToFp16(0.25f);
  for (int j = 0; j < 32; ++j) block.q[j] = static_cast<int8_t>(j * 8 - 128);
  float out[32];
  DequantizeRow(TensorType::kQ8_0, &block, out, 32);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(out[j], 0.25f * (j * 8 - 128));

  const uint16_t halves[3] = {0x3c00, 0xc000, 0x3555};
  DequantizeRow(TensorType::kF16, halves, out, 3);
  EXPECT_EQ(out[0], 1.0f);
  EXPECT_EQ(out[1], -2.0f);
  EXPECT_EQ(out[2], Fp16ToFp32(0x3555));
  const uint16_t bf16[2] = {0x3f80, 0x4040};
  DequantizeRow(TensorType::kBF16, bf16, out, 2);
  EXPECT_EQ(out[0], 1.0f);
  EXPECT_EQ(out[1], 3.0f);
}

using QuantizePathTest = KernelPathTest;

TEST_P(QuantizePathTest, PathQuantizesBitIdenticallyToTheReference) {
  std::vector<float> x = RandomFloats(4096 + 32, 14, -5.0f, 5.0f);
  // Values exactly half-way between codes (x * (1/d) = n + 0.5 with d = 1): ties to even.
  for (int i = 0; i < 32; ++i) x[i] = (i == 0) ? 127.0f : static_cast<float>(i % 7) + 0.5f;
  std::vector<BlockQ8_0> expected(x.size() / 32), actual(x.size() / 32);
  QuantizeRowQ8_0(x.data(), expected.data(), static_cast<int64_t>(x.size()));
  kernels().QuantizeQ8_0(x, actual);
  ASSERT_EQ(std::memcmp(expected.data(), actual.data(), expected.size() * sizeof(BlockQ8_0)), 0);
  EXPECT_EQ(actual[0].q[1], 2);  // 1.5 -> 2
  EXPECT_EQ(actual[0].q[3], 4);  // 3.5 -> 4
  EXPECT_EQ(actual[0].q[2], 2);  // 2.5 -> 2
}

SC_INSTANTIATE_KERNEL_PATHS(QuantizePathTest);

}  // namespace
}  // namespace supercluster::engine::kernels
