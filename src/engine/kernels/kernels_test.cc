// Every kernel against a plain double-precision reference, on both paths, on sizes chosen
// to hit the tails: K = 32, 64, 4096 + 32 (and 1, 7, 100 for float weights: not a multiple
// of the 8-wide vectors), N = 1, 6, 67 (not a multiple of any tile), M = 1, 3, 8, 17.
//
// Tolerances are worst-case rounding bounds (Higham, "Accuracy and Stability of Numerical
// Algorithms", ch. 3), so they cannot fail by bad luck and a real bug (a lost or doubled
// element, a wrong scale) exceeds them by orders of magnitude:
// - Float weights: each output is a float sum of K products split over 8 lanes (K/8 terms
//   each), reduced in 3 steps, plus at most 7 tail terms; each product and add rounds once
//   (u = 2^-24). So |y - exact| <= (K/8 + 16) u sum|w x|. For K = 4128 that is 3.1e-5 of
//   sum|w x|; on random data the observed error is ~1e-6 of it.
// - Quantized weights against the exact product of the dequantized weights and the
//   Q8_0-quantized input ("near exact"): the integer block dots are exact; each block adds
//   two roundings (scale product, scale times sum), then K/32 accumulations:
//   (K/32 + 8) u sum_b |d_w d_x| sum_i |w_q x_q|.
// - Quantized weights against the true F32 input: the near-exact bound plus the input's
//   quantization error, sum_b |d_w| sum_i |w_q,i| d_x,b (1/2 + 127/2048): half a step, plus
//   127 codes times the half-precision rounding of the input scale (2^-11 relative).
#include "engine/kernels/kernels.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <vector>

#include "base/thread_pool.h"
#include "engine/kernels/half.h"
#include "engine/kernels/kernels_test_util.h"
#include "engine/kernels/quantize.h"

namespace supercluster::engine::kernels {
namespace {

constexpr double kUnitRoundoff = 0x1p-24;

struct TestWeight {
  TensorType type;
  int64_t rows;
  int64_t cols;
  std::vector<uint8_t> bytes;
  std::vector<float> dequantized;  // rows x cols

  WeightMatrix matrix() const { return {type, bytes.data(), rows, cols}; }
};

TestWeight MakeWeight(TensorType type, int64_t rows, int64_t cols, uint32_t seed) {
  TestWeight weight{type, rows, cols, {}, {}};
  const std::vector<float> values = RandomFloats(static_cast<size_t>(rows * cols), seed);
  const int64_t row_bytes = RowBytes(type, cols);
  weight.bytes.resize(static_cast<size_t>(rows * row_bytes));
  for (int64_t r = 0; r < rows; ++r) {
    const float* in = values.data() + r * cols;
    uint8_t* out = weight.bytes.data() + r * row_bytes;
    switch (type) {
      case TensorType::kF32:
        std::memcpy(out, in, static_cast<size_t>(row_bytes));
        break;
      case TensorType::kF16:
        for (int64_t i = 0; i < cols; ++i) reinterpret_cast<uint16_t*>(out)[i] = Fp32ToFp16(in[i]);
        break;
      case TensorType::kBF16:
        for (int64_t i = 0; i < cols; ++i) reinterpret_cast<uint16_t*>(out)[i] = Fp32ToBf16(in[i]);
        break;
      case TensorType::kQ8_0:
        QuantizeRowQ8_0(in, reinterpret_cast<BlockQ8_0*>(out), cols);
        break;
      case TensorType::kQ4_0:
        QuantizeRowQ4_0(in, reinterpret_cast<BlockQ4_0*>(out), cols);
        break;
    }
  }
  weight.dequantized.resize(values.size());
  for (int64_t r = 0; r < rows; ++r) {
    DequantizeRow(type, weight.bytes.data() + r * row_bytes, weight.dequantized.data() + r * cols,
                  cols);
  }
  return weight;
}

// The codes and scale of element i of a quantized row, for the error bounds.
struct Code {
  double scale;
  int code;
};
Code QuantizedElement(const TestWeight& w, int64_t row, int64_t i) {
  const uint8_t* row_bytes = w.bytes.data() + row * RowBytes(w.type, w.cols);
  const int64_t b = i / 32, j = i % 32;
  if (w.type == TensorType::kQ8_0) {
    const auto& block = reinterpret_cast<const BlockQ8_0*>(row_bytes)[b];
    return {Fp16ToFp32(block.d), block.q[j]};
  }
  const auto& block = reinterpret_cast<const BlockQ4_0*>(row_bytes)[b];
  const int nibble = j < 16 ? (block.q[j] & 0x0f) : (block.q[j - 16] >> 4);
  return {Fp16ToFp32(block.d), nibble - 8};
}

// Checks kernel output y (M x N) against the references described at the top of the file.
void ExpectMatchesReference(const TestWeight& w, const std::vector<float>& x, int64_t m_count,
                            const std::vector<float>& y) {
  const int64_t n_count = w.rows, k = w.cols;
  std::vector<BlockQ8_0> xq;
  if (IsQuantized(w.type)) {
    xq.resize(static_cast<size_t>(m_count * k / 32));
    for (int64_t m = 0; m < m_count; ++m) QuantizeRowQ8_0(x.data() + m * k, xq.data() + m * k / 32, k);
  }
  for (int64_t m = 0; m < m_count; ++m) {
    for (int64_t n = 0; n < n_count; ++n) {
      const float actual = y[m * n_count + n];
      const float* w_row = w.dequantized.data() + n * k;
      const float* x_row = x.data() + m * k;
      double exact = 0, magnitude = 0;
      for (int64_t i = 0; i < k; ++i) {
        exact += static_cast<double>(w_row[i]) * x_row[i];
        magnitude += std::fabs(static_cast<double>(w_row[i]) * x_row[i]);
      }
      if (!IsQuantized(w.type)) {
        const double bound = (static_cast<double>(k) / 8 + 16) * kUnitRoundoff * magnitude;
        ASSERT_LE(std::fabs(actual - exact), bound)
            << TensorTypeName(w.type) << " m=" << m << " n=" << n << " k=" << k;
        continue;
      }
      double near_exact = 0, code_magnitude = 0, input_error = 0;
      for (int64_t b = 0; b < k / 32; ++b) {
        const BlockQ8_0& xb = xq[static_cast<size_t>(m * k / 32 + b)];
        const double dx = Fp16ToFp32(xb.d);
        double max_abs_x = 0;
        for (int j = 0; j < 32; ++j) max_abs_x = std::fmax(max_abs_x, std::fabs(x_row[b * 32 + j]));
        for (int j = 0; j < 32; ++j) {
          const Code wc = QuantizedElement(w, n, b * 32 + j);
          near_exact += wc.scale * dx * wc.code * xb.q[j];
          code_magnitude += std::fabs(wc.scale * dx * wc.code * xb.q[j]);
          input_error += std::fabs(wc.scale * wc.code) * (max_abs_x / 127) * (0.5 + 127.0 / 2048);
        }
      }
      const double near_bound = (static_cast<double>(k) / 32 + 8) * kUnitRoundoff * code_magnitude;
      ASSERT_LE(std::fabs(actual - near_exact), near_bound + 1e-30)
          << TensorTypeName(w.type) << " m=" << m << " n=" << n << " k=" << k;
      ASSERT_LE(std::fabs(actual - exact), near_bound + input_error * 1.0001)
          << TensorTypeName(w.type) << " vs f32 m=" << m << " n=" << n << " k=" << k;
    }
  }
}

const TensorType kAllTypes[] = {TensorType::kF32, TensorType::kF16, TensorType::kBF16,
                                TensorType::kQ8_0, TensorType::kQ4_0};

using MatrixTest = KernelPathTest;

TEST_P(MatrixTest, MatMulAndMatVecMatchTheReference) {
  base::ThreadPool pool(2);
  uint32_t seed = 100;
  for (TensorType type : kAllTypes) {
    std::vector<int64_t> ks = {32, 64, 4096 + 32};
    // Float rows are summed in steps of 16, then one of 8, then one element at a time:
    // 100 and 107 end in a partial step of 16, 107 also in a lone step of 8.
    if (!IsQuantized(type)) ks.insert(ks.end(), {1, 7, 100, 107});
    for (int64_t k : ks) {
      for (int64_t n : {1, 6, 67}) {
        const TestWeight w = MakeWeight(type, n, k, ++seed);
        // With tiles of 3 (float) or 8 (quantized) inputs, these leave last tiles of
        // 1, 2, 3, 5 and 6 inputs, and none.
        for (int64_t m : {1, 3, 6, 8, 13, 17}) {
          const std::vector<float> x = RandomFloats(static_cast<size_t>(m * k), ++seed);
          std::vector<float> y(static_cast<size_t>(m * n), std::nanf(""));
          kernels().MatMul(w.matrix(), x, y, &pool);
          ExpectMatchesReference(w, x, m, y);
          if (HasFatalFailure()) return;
          // Row m of a MatMul is bit-identical to MatVec of input row m.
          std::vector<float> y_row(static_cast<size_t>(n));
          for (int64_t row = 0; row < m; ++row) {
            kernels().MatVec(w.matrix(), std::span(x).subspan(row * k, k), y_row, nullptr);
            ASSERT_EQ(std::memcmp(y_row.data(), y.data() + row * n, n * sizeof(float)), 0)
                << TensorTypeName(type) << " k=" << k << " n=" << n << " m=" << m << " row=" << row;
          }
        }
      }
    }
  }
}

TEST_P(MatrixTest, ResultsDoNotDependOnTheThreadCount) {
  for (TensorType type : kAllTypes) {
    const TestWeight w = MakeWeight(type, 203, 256, 7);
    for (int64_t m : {1, 5}) {
      const std::vector<float> x = RandomFloats(static_cast<size_t>(m * 256), 8);
      std::vector<float> expected(static_cast<size_t>(m * 203));
      kernels().MatMul(w.matrix(), x, expected, nullptr);
      for (int threads : {1, 2, 3, 7}) {
        base::ThreadPool pool(threads);
        std::vector<float> y(expected.size());
        kernels().MatMul(w.matrix(), x, y, &pool);
        ASSERT_EQ(std::memcmp(y.data(), expected.data(), y.size() * sizeof(float)), 0)
            << TensorTypeName(type) << " threads=" << threads << " m=" << m;
      }
    }
  }
}

TEST_P(MatrixTest, EmptyShapes) {
  std::vector<float> y(3, 5.0f);
  const WeightMatrix no_cols{TensorType::kF32, nullptr, 3, 0};
  kernels().MatVec(no_cols, {}, y, nullptr);
  EXPECT_EQ(y, std::vector<float>(3, 0.0f));
  const WeightMatrix no_rows{TensorType::kQ8_0, nullptr, 0, 64};
  std::vector<float> x(64, 1.0f);
  kernels().MatVec(no_rows, x, {}, nullptr);  // must not touch anything
}

TEST_P(MatrixTest, ExtremeQ8_0CodesDoNotSaturate) {
  // Model files may hold the code -128 (our quantizer never writes it). With inputs at
  // +-127 every int16 pair sum of the AVX2 path is at its largest: 2 * 128 * 127.
  std::vector<BlockQ8_0> weights(2);
  for (auto& block : weights) block.d = Fp32ToFp16(1.0f);
  for (int i = 0; i < 32; ++i) {
    weights[0].q[i] = -128;
    weights[1].q[i] = static_cast<int8_t>(i % 2 ? -128 : 127);
  }
  const std::vector<float> x(32, 1.0f);  // quantizes to 127 everywhere
  std::vector<BlockQ8_0> xq(1);
  QuantizeRowQ8_0(x.data(), xq.data(), 32);
  const double dx = Fp16ToFp32(xq[0].d);
  std::vector<float> y(2);
  kernels().MatVec({TensorType::kQ8_0, weights.data(), 2, 32}, x, y, nullptr);
  for (int r = 0; r < 2; ++r) {
    int64_t dot = 0;
    for (int i = 0; i < 32; ++i) dot += int64_t{weights[r].q[i]} * xq[0].q[i];
    EXPECT_NEAR(y[r], dot * dx, 1e-6 * std::fabs(dot * dx) + 1e-6) << r;
  }
}

SC_INSTANTIATE_KERNEL_PATHS(MatrixTest);

TEST(MatrixTest, PortableAndAvx2AgreeWithinTheBound) {
  const Kernels* avx2 = KernelsFor(KernelPath::kAvx2);
  if (avx2 == nullptr) GTEST_SKIP() << "this CPU lacks AVX2/FMA/F16C";
  const Kernels& portable = *KernelsFor(KernelPath::kPortable);
  const TestWeight w = MakeWeight(TensorType::kQ4_0, 64, 4096, 3);
  const std::vector<float> x = RandomFloats(4096, 4);
  std::vector<float> a(64), b(64);
  portable.MatVec(w.matrix(), x, a, nullptr);
  avx2->MatVec(w.matrix(), x, b, nullptr);
  for (int i = 0; i < 64; ++i) EXPECT_NEAR(a[i], b[i], 1e-4 * (std::fabs(a[i]) + 1)) << i;
}

TEST(CheckWeightMatrix, RejectsBadShapes) {
  const float data[64] = {};
  EXPECT_TRUE(CheckWeightMatrix({TensorType::kF32, data, 2, 32}, "w").ok());
  const base::Status odd = CheckWeightMatrix({TensorType::kQ4_0, data, 1, 48}, "blk.0.ffn_up");
  EXPECT_EQ(odd.code(), base::StatusCode::kInvalidArgument);
  EXPECT_NE(odd.message().find("blk.0.ffn_up"), std::string::npos) << odd.message();
  EXPECT_NE(odd.message().find("multiple of 32"), std::string::npos) << odd.message();
  EXPECT_FALSE(CheckWeightMatrix({TensorType::kF16, nullptr, 2, 2}, "w").ok());
  EXPECT_FALSE(CheckWeightMatrix({TensorType::kF16, data, -1, 2}, "w").ok());
}

// ---- vector helpers ----

using VectorTest = KernelPathTest;

const int64_t kVectorSizes[] = {1, 7, 8, 9, 64, 130, 4096 + 3};

TEST_P(VectorTest, RmsNorm) {
  for (int64_t n : kVectorSizes) {
    const std::vector<float> x = RandomFloats(static_cast<size_t>(n), 20, -4.0f, 4.0f);
    const std::vector<float> weight = RandomFloats(static_cast<size_t>(n), 21, 0.5f, 1.5f);
    std::vector<float> out(x.size());
    kernels().RmsNorm(x, weight, 1e-5f, out);
    double sum_squares = 0;
    for (float v : x) sum_squares += static_cast<double>(v) * v;
    const double scale = 1 / std::sqrt(sum_squares / n + 1e-5);
    // Sum of squares has no cancellation: relative error <= (n/8 + 16) u; the rest adds a
    // few roundings.
    const double relative = (static_cast<double>(n) / 8 + 24) * kUnitRoundoff;
    for (int64_t i = 0; i < n; ++i) {
      const double expected = x[i] * scale * weight[i];
      ASSERT_NEAR(out[i], expected, relative * std::fabs(expected) + 1e-30) << n << " " << i;
    }
    std::vector<float> in_place = x;  // out may alias x
    kernels().RmsNorm(in_place, weight, 1e-5f, in_place);
    ASSERT_EQ(in_place, out);
  }
}

TEST_P(VectorTest, SoftmaxIsStableAndMasksMinusInfinity) {
  for (int64_t n : kVectorSizes) {
    std::vector<float> x = RandomFloats(static_cast<size_t>(n), 22, -20.0f, 20.0f);
    x[0] = 1000.0f;  // would overflow exp without subtracting the maximum
    if (n > 2) x[2] = -std::numeric_limits<float>::infinity();
    std::vector<float> out = x;
    kernels().Softmax(out);
    double max = -INFINITY;
    for (float v : x) max = std::fmax(max, v);
    double sum = 0;
    for (float v : x) sum += std::exp(static_cast<double>(v) - max);
    double total = 0;
    for (int64_t i = 0; i < n; ++i) {
      const double expected = std::exp(static_cast<double>(x[i]) - max) / sum;
      // expf is within a few ulp; the float sum of n terms adds n u relative.
      ASSERT_NEAR(out[i], expected, (static_cast<double>(n) + 16) * kUnitRoundoff * expected + 1e-37)
          << n << " " << i;
      total += out[i];
    }
    if (n > 2) {
      EXPECT_EQ(out[2], 0.0f);
    }
    EXPECT_NEAR(total, 1.0, (static_cast<double>(n) + 16) * kUnitRoundoff);
  }
}

TEST_P(VectorTest, SiluMulAddScale) {
  for (int64_t n : kVectorSizes) {
    const std::vector<float> gate = RandomFloats(static_cast<size_t>(n), 23, -30.0f, 30.0f);
    const std::vector<float> up = RandomFloats(static_cast<size_t>(n), 24, -2.0f, 2.0f);
    std::vector<float> out(gate.size());
    kernels().SiluMul(gate, up, out);
    for (int64_t i = 0; i < n; ++i) {
      const double g = gate[i];
      const double expected = g / (1 + std::exp(-g)) * up[i];
      ASSERT_NEAR(out[i], expected, 1e-6 * std::fabs(expected) + 1e-37) << i;
    }
    kernels().Add(gate, up, out);
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(out[i], gate[i] + up[i]);  // one rounding, exact match
    out = gate;
    kernels().Scale(out, 0.125f);
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(out[i], gate[i] * 0.125f);
  }
}

TEST_P(VectorTest, DotAndAxpyForF32AndF16Caches) {
  for (int64_t n : kVectorSizes) {
    const std::vector<float> a = RandomFloats(static_cast<size_t>(n), 25);
    const std::vector<float> b = RandomFloats(static_cast<size_t>(n), 26);
    std::vector<uint16_t> a_half(a.size());
    for (size_t i = 0; i < a.size(); ++i) a_half[i] = Fp32ToFp16(a[i]);
    double exact = 0, exact_half = 0, magnitude = 0;
    for (int64_t i = 0; i < n; ++i) {
      exact += static_cast<double>(a[i]) * b[i];
      exact_half += static_cast<double>(Fp16ToFp32(a_half[i])) * b[i];
      magnitude += std::fabs(static_cast<double>(a[i]) * b[i]) * 1.001;
    }
    const double bound = (static_cast<double>(n) / 8 + 16) * kUnitRoundoff * magnitude;
    EXPECT_NEAR(kernels().Dot(a, b), exact, bound) << n;
    EXPECT_NEAR(kernels().DotF16(a_half, b), exact_half, bound) << n;

    const float alpha = -0.375f;
    std::vector<float> y = b;
    kernels().Axpy(alpha, a, y);
    std::vector<float> y_half = b;
    kernels().AxpyF16(alpha, a_half, y_half);
    for (int64_t i = 0; i < n; ++i) {
      const double expected = b[i] + static_cast<double>(alpha) * a[i];
      const double expected_half = b[i] + static_cast<double>(alpha) * Fp16ToFp32(a_half[i]);
      const double tolerance = 2 * kUnitRoundoff * (std::fabs(b[i]) + std::fabs(alpha * a[i]));
      ASSERT_NEAR(y[i], expected, tolerance) << i;
      ASSERT_NEAR(y_half[i], expected_half, tolerance) << i;
    }
  }
}

// Reference RoPE in double, pairing written out independently of the kernel.
void ReferenceRope(std::vector<double>& x, const std::vector<int32_t>& positions, int heads,
                   int head_dim, const std::vector<float>& inverse, RopeOrder order) {
  const int half = static_cast<int>(inverse.size());
  for (size_t t = 0; t < positions.size(); ++t) {
    for (int h = 0; h < heads; ++h) {
      double* head = x.data() + (t * heads + h) * head_dim;
      for (int i = 0; i < half; ++i) {
        const double angle = positions[t] * static_cast<double>(inverse[i]);
        int first = 2 * i, second = 2 * i + 1;
        if (order == RopeOrder::kNeox) {
          first = i;
          second = i + half;
        }
        const double a = head[first], b = head[second];
        head[first] = a * std::cos(angle) - b * std::sin(angle);
        head[second] = a * std::sin(angle) + b * std::cos(angle);
      }
    }
  }
}

TEST_P(VectorTest, RopeBothOrdersAndPartialRotation) {
  const std::vector<int32_t> positions = {0, 1, 17, 5000};
  for (RopeOrder order : {RopeOrder::kInterleaved, RopeOrder::kNeox}) {
    for (int rotary_dim : {64, 16}) {  // 16: only the first 16 of 64 dims rotate
      const int heads = 3, head_dim = 64;
      const std::vector<float> inverse = RopeInverseFrequencies(rotary_dim, 10000.0);
      std::vector<float> x = RandomFloats(positions.size() * heads * head_dim, 27);
      std::vector<double> expected(x.begin(), x.end());
      const std::vector<float> original = x;
      kernels().Rope(x, positions, heads, head_dim, inverse, order);
      ReferenceRope(expected, positions, heads, head_dim, inverse, order);
      for (size_t i = 0; i < x.size(); ++i) {
        // cos/sin rounded to float (u each), two products and a sum: 4u of |a| + |b| <= 2.
        ASSERT_NEAR(x[i], expected[i], 8 * kUnitRoundoff) << i;
        const size_t t = i / (heads * head_dim);
        if (positions[t] == 0 || static_cast<int>(i % head_dim) >= rotary_dim) {
          ASSERT_EQ(x[i], original[i]) << i;  // identity at position 0; tail untouched
        }
      }
    }
  }
}

TEST(Rope, PairingOfTheTwoOrders) {
  // head_dim 4, one pair rotated by a quarter turn: (a, b) -> (-b, a).
  const std::vector<float> inverse = {static_cast<float>(M_PI / 2), 0.0f};
  const std::vector<int32_t> position = {1};
  std::vector<float> interleaved = {1, 2, 3, 4};
  KernelsFor(KernelPath::kPortable)->Rope(interleaved, position, 1, 4, inverse, RopeOrder::kInterleaved);
  EXPECT_NEAR(interleaved[0], -2, 1e-6);  // pair (0, 1)
  EXPECT_NEAR(interleaved[1], 1, 1e-6);
  EXPECT_EQ(interleaved[2], 3);           // pair (2, 3), angle 0
  EXPECT_EQ(interleaved[3], 4);
  std::vector<float> neox = {1, 2, 3, 4};
  KernelsFor(KernelPath::kPortable)->Rope(neox, position, 1, 4, inverse, RopeOrder::kNeox);
  EXPECT_NEAR(neox[0], -3, 1e-6);  // pair (0, 2)
  EXPECT_NEAR(neox[2], 1, 1e-6);
  EXPECT_EQ(neox[1], 2);           // pair (1, 3), angle 0
  EXPECT_EQ(neox[3], 4);
}

TEST(Rope, InverseFrequencies) {
  const std::vector<float> inverse = RopeInverseFrequencies(128, 500000.0);
  ASSERT_EQ(inverse.size(), 64u);
  EXPECT_EQ(inverse[0], 1.0f);
  EXPECT_FLOAT_EQ(inverse[1], static_cast<float>(std::pow(500000.0, -2.0 / 128)));
  EXPECT_FLOAT_EQ(inverse[63], static_cast<float>(std::pow(500000.0, -126.0 / 128)));
}

SC_INSTANTIATE_KERNEL_PATHS(VectorTest);

TEST(DefaultKernels, FollowsTheCpuAndTheEnvironment) {
  const char* forced = std::getenv("SUPERCLUSTER_KERNELS");
  if (forced != nullptr && std::strcmp(forced, "portable") == 0) {
    EXPECT_EQ(DefaultKernels().path(), KernelPath::kPortable);
  } else {
    EXPECT_EQ(DefaultKernels().path(), KernelsFor(KernelPath::kAvx2) != nullptr
                                           ? KernelPath::kAvx2
                                           : KernelPath::kPortable);
  }
}

TEST(DefaultKernelsDeathTest, EnvironmentForcesPortable) {
  // "threadsafe" re-runs this test in a fresh process, where DefaultKernels has not yet
  // made its once-only choice.
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        setenv("SUPERCLUSTER_KERNELS", "portable", 1);
        std::exit(DefaultKernels().path() == KernelPath::kPortable ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "");
}

}  // namespace
}  // namespace supercluster::engine::kernels
