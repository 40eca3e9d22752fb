#include "engine/kernels/half.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "engine/kernels/kernels_test_util.h"

namespace supercluster::engine::kernels {
namespace {

// The value of a half computed from the IEEE 754 definition, in double (exact).
double ReferenceHalfValue(uint16_t half) {
  const int sign = (half >> 15) ? -1 : 1;
  const int exponent = (half >> 10) & 0x1f;
  const int mantissa = half & 0x3ff;
  if (exponent == 0x1f) {
    return mantissa == 0 ? sign * std::numeric_limits<double>::infinity()
                         : std::numeric_limits<double>::quiet_NaN();
  }
  if (exponent == 0) return sign * std::ldexp(mantissa, -24);  // subnormal or zero
  return sign * std::ldexp(1024 + mantissa, exponent - 25);
}

// The half nearest to v (ties to even), by search over the ordered positive halves. The
// pattern 0x7c00 stands for 2^16 while rounding: IEEE rounds as if the exponent range were
// unbounded, then overflows to infinity.
uint16_t ReferenceNearestHalf(float value) {
  const uint16_t sign = std::signbit(value) ? 0x8000 : 0;
  const double magnitude = std::fabs(static_cast<double>(value));
  auto value_of = [](uint16_t h) { return h == 0x7c00 ? 65536.0 : ReferenceHalfValue(h); };
  if (magnitude >= 65536.0) return sign | 0x7c00;
  uint16_t low = 0, high = 0x7c00;  // value_of(low) <= magnitude < value_of(high)
  while (high - low > 1) {
    const uint16_t middle = static_cast<uint16_t>((low + high) / 2);
    if (value_of(middle) <= magnitude) low = middle; else high = middle;
  }
  const double below = magnitude - value_of(low);
  const double above = value_of(high) - magnitude;
  uint16_t nearest = below < above ? low : above < below ? high : ((low & 1) ? high : low);
  return sign | nearest;
}

bool IsHalfNaN(uint16_t h) { return (h & 0x7c00) == 0x7c00 && (h & 0x3ff) != 0; }

TEST(Half, EveryHalfConvertsExactly) {
  for (uint32_t bits = 0; bits <= 0xffff; ++bits) {
    const auto half = static_cast<uint16_t>(bits);
    const float converted = Fp16ToFp32(half);
    if (IsHalfNaN(half)) {
      ASSERT_TRUE(std::isnan(converted)) << std::hex << bits;
      ASSERT_EQ(std::signbit(converted), (bits & 0x8000) != 0) << std::hex << bits;
      // The payload moves to the top mantissa bits (quiet bit included).
      ASSERT_EQ((std::bit_cast<uint32_t>(converted) >> 13) & 0x3ff, bits & 0x3ff);
      continue;
    }
    const double expected = ReferenceHalfValue(half);
    ASSERT_EQ(static_cast<double>(converted), expected) << std::hex << bits;
    ASSERT_EQ(std::signbit(converted), std::signbit(expected)) << std::hex << bits;  // -0
  }
}

TEST(Half, EveryHalfRoundTrips) {
  for (uint32_t bits = 0; bits <= 0xffff; ++bits) {
    const auto half = static_cast<uint16_t>(bits);
    const uint16_t back = Fp32ToFp16(Fp16ToFp32(half));
    if (IsHalfNaN(half)) {
      ASSERT_TRUE(IsHalfNaN(back)) << std::hex << bits;
      ASSERT_EQ(back & 0x8000, half & 0x8000);
    } else {
      ASSERT_EQ(back, half) << std::hex << bits;
    }
  }
}

// Floats that are hard to round: exact midpoints between neighbouring halves (normal and
// subnormal), one float ulp either side of them, the overflow threshold, and random floats
// over the whole half range.
std::vector<float> HardFloats() {
  std::vector<float> values;
  for (uint32_t bits = 0; bits < 0x7c00; ++bits) {
    const double low = ReferenceHalfValue(static_cast<uint16_t>(bits));
    const double high = bits + 1 == 0x7c00 ? 65536.0 : ReferenceHalfValue(static_cast<uint16_t>(bits + 1));
    const float middle = static_cast<float>((low + high) / 2);  // exact in binary32
    for (float v : {middle, std::nextafter(middle, 0.0f), std::nextafter(middle, 1e30f)}) {
      values.push_back(v);
      values.push_back(-v);
    }
  }
  for (float v : {65504.0f, 65519.99f, 65520.0f, 1e10f, 1e-10f, 1e-30f, 0.0f, -0.0f}) {
    values.push_back(v);
    values.push_back(-v);
  }
  std::mt19937 generator(7);
  std::uniform_real_distribution<float> exponent(-26.0f, 17.0f);
  for (int i = 0; i < 20000; ++i) values.push_back(std::exp2(exponent(generator)) * (i % 2 ? 1 : -1));
  return values;
}

TEST(Half, FloatToHalfRoundsToNearestEven) {
  for (float v : HardFloats()) {
    ASSERT_EQ(Fp32ToFp16(v), ReferenceNearestHalf(v)) << v;
  }
  EXPECT_EQ(Fp32ToFp16(std::numeric_limits<float>::infinity()), 0x7c00);
  EXPECT_EQ(Fp32ToFp16(-std::numeric_limits<float>::infinity()), 0xfc00);
  EXPECT_TRUE(IsHalfNaN(Fp32ToFp16(std::numeric_limits<float>::quiet_NaN())));
  // A signalling NaN whose payload lives only in the dropped bits must stay a NaN.
  EXPECT_TRUE(IsHalfNaN(Fp32ToFp16(std::bit_cast<float>(0x7f800001u))));
}

TEST(Bf16, ConvertsAndRoundsToNearestEven) {
  EXPECT_EQ(Bf16ToFp32(0x3f80), 1.0f);
  EXPECT_EQ(Bf16ToFp32(0xc000), -2.0f);
  EXPECT_EQ(Fp32ToBf16(1.0f + 0x1p-8f), 0x3f80);           // tie: to even (down)
  EXPECT_EQ(Fp32ToBf16(1.0f + 3 * 0x1p-8f), 0x3f82);       // tie: to even (up)
  EXPECT_EQ(Fp32ToBf16(1.0f + 0x1p-8f + 0x1p-20f), 0x3f81);  // above the tie
  EXPECT_EQ(Fp32ToBf16(std::bit_cast<float>(0x7f7fffffu)), 0x7f80);  // max float -> inf
  EXPECT_TRUE(std::isnan(Bf16ToFp32(Fp32ToBf16(std::bit_cast<float>(0x7f800001u)))));
  for (uint32_t bits = 0; bits <= 0xffff; ++bits) {
    const auto value = static_cast<uint16_t>(bits);
    const float converted = Bf16ToFp32(value);
    if (std::isnan(converted)) continue;
    ASSERT_EQ(Fp32ToBf16(converted), value) << std::hex << bits;
  }
}

using HalfRowTest = KernelPathTest;

TEST_P(HalfRowTest, RowConversionsMatchTheScalarOnes) {
  std::vector<uint16_t> every(65536);
  for (uint32_t i = 0; i < every.size(); ++i) every[i] = static_cast<uint16_t>(i);
  // Offset by 3 so that the vector body and the scalar tail both see all kinds of values.
  const std::span<const uint16_t> odd_span(every.data() + 3, every.size() - 3);
  std::vector<float> out(odd_span.size());
  kernels().ConvertF16ToF32(odd_span, out);
  for (size_t i = 0; i < out.size(); ++i) {
    const float expected = Fp16ToFp32(odd_span[i]);
    if (std::isnan(expected)) {
      ASSERT_TRUE(std::isnan(out[i])) << i;
    } else {
      ASSERT_EQ(std::bit_cast<uint32_t>(out[i]), std::bit_cast<uint32_t>(expected)) << i;
    }
  }
  kernels().ConvertBf16ToF32(odd_span, out);
  for (size_t i = 0; i < out.size(); ++i) {
    ASSERT_EQ(std::bit_cast<uint32_t>(out[i]), static_cast<uint32_t>(odd_span[i]) << 16);
  }

  const std::vector<float> hard = HardFloats();
  std::vector<uint16_t> halves(hard.size());
  kernels().ConvertF32ToF16(hard, halves);
  for (size_t i = 0; i < hard.size(); ++i) ASSERT_EQ(halves[i], Fp32ToFp16(hard[i])) << hard[i];
}

SC_INSTANTIATE_KERNEL_PATHS(HalfRowTest);

}  // namespace
}  // namespace supercluster::engine::kernels
