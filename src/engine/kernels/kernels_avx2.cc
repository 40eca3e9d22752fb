// The AVX2 kernel path (AVX2 + FMA + F16C), for x86-64 CPUs from Haswell / Zen 1 on.
//
// The file is compiled with the project's baseline flags; only the functions marked
// SC_AVX2 use the wider instruction sets (GCC/clang target attributes), so nothing here can
// leak AVX2 code into the rest of the program, and Avx2KernelTable() returns nullptr unless
// CPUID says the CPU (and OS) support all three extensions.
//
// Matrix products are tiled: a micro-kernel computes R weight rows x C input rows with
// vector accumulators per output, so each weight vector (or quantized block, unpacked once)
// is reused for C input rows from registers. Every output keeps its own accumulators (two
// 8-lane ones for float weights, one for quantized), fed in the same order whatever R and C
// are, and is reduced the same way, so tile shapes, thread counts and M never change a result.
//
// MatVec (M = 1) reads one weight row at a time, front to back. Measured on a Zen 4 VM
// (2 cores) streaming rows from a mapped 1-2 GiB model file: one row at a time ran at the
// machine's plain read bandwidth (F16 ~30 GB/s, Q8_0 ~35 GB/s), four rows side by side at
// 13-21 GB/s. A float row needs its two accumulators to go that fast (each FMA waits for the
// previous one on its accumulator, and one 8-element chain cannot keep up with memory); a
// quantized block has enough work of its own to hide its one accumulator's wait.
#include "engine/kernels/kernel_table.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))

#include <cpuid.h>
#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "engine/kernels/half.h"

#define SC_AVX2 __attribute__((target("avx2,fma,f16c")))

namespace supercluster::engine::kernels {
namespace {

SC_AVX2 inline float HorizontalSum(__m256 v) {
  __m128 sum = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  sum = _mm_add_ps(sum, _mm_movehl_ps(sum, sum));
  sum = _mm_add_ss(sum, _mm_movehdup_ps(sum));
  return _mm_cvtss_f32(sum);
}

SC_AVX2 inline float HalfToFloat(uint16_t half) { return _cvtsh_ss(half); }

// ---- float-typed weights (F32, F16, BF16) ----

struct F32Loader {
  using Element = float;
  SC_AVX2 static __m256 Load8(const float* p) { return _mm256_loadu_ps(p); }
  SC_AVX2 static float Load1(const float* p) { return *p; }
};
struct F16Loader {
  using Element = uint16_t;
  SC_AVX2 static __m256 Load8(const uint16_t* p) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
  SC_AVX2 static float Load1(const uint16_t* p) { return HalfToFloat(*p); }
};
struct Bf16Loader {
  using Element = uint16_t;
  SC_AVX2 static __m256 Load8(const uint16_t* p) {
    const __m256i wide =
        _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16));
  }
  SC_AVX2 static float Load1(const uint16_t* p) { return Bf16ToFp32(*p); }
};

// y[c * y_stride + r] = dot(w row r, x row c) for r < R, c < C. Rows are k long.
// Each output has two accumulators: `even` takes elements [16j, 16j + 8) and `odd`
// [16j + 8, 16j + 16); a last 8 elements that make no pair of steps go to `even`; then
// hsum(even + odd), then the scalar tail. Every tile shape follows exactly this order.
template <class Loader, int R, int C>
SC_AVX2 inline void FloatTile(const typename Loader::Element* w, const float* x, int64_t k,
                              float* y, int64_t y_stride) {
  __m256 even[R][C];
  __m256 odd[R][C];
  for (int r = 0; r < R; ++r) {
    for (int c = 0; c < C; ++c) even[r][c] = odd[r][c] = _mm256_setzero_ps();
  }
  int64_t i = 0;
  for (; i + 16 <= k; i += 16) {
    __m256 weights[R];
    for (int r = 0; r < R; ++r) weights[r] = Loader::Load8(w + r * k + i);
    for (int c = 0; c < C; ++c) {
      const __m256 input = _mm256_loadu_ps(x + c * k + i);
      for (int r = 0; r < R; ++r) even[r][c] = _mm256_fmadd_ps(weights[r], input, even[r][c]);
    }
    for (int r = 0; r < R; ++r) weights[r] = Loader::Load8(w + r * k + i + 8);
    for (int c = 0; c < C; ++c) {
      const __m256 input = _mm256_loadu_ps(x + c * k + i + 8);
      for (int r = 0; r < R; ++r) odd[r][c] = _mm256_fmadd_ps(weights[r], input, odd[r][c]);
    }
  }
  if (i + 8 <= k) {
    for (int r = 0; r < R; ++r) {
      const __m256 weights = Loader::Load8(w + r * k + i);
      for (int c = 0; c < C; ++c) {
        even[r][c] = _mm256_fmadd_ps(weights, _mm256_loadu_ps(x + c * k + i), even[r][c]);
      }
    }
    i += 8;
  }
  for (int r = 0; r < R; ++r) {
    for (int c = 0; c < C; ++c) {
      float sum = HorizontalSum(_mm256_add_ps(even[r][c], odd[r][c]));
      for (int64_t j = i; j < k; ++j) sum = std::fma(Loader::Load1(w + r * k + j), x[c * k + j], sum);
      y[c * y_stride + r] = sum;
    }
  }
}

// ---- quantized weights (Q8_0, Q4_0) against Q8_0 inputs ----

SC_AVX2 inline __m256i WeightCodes(const BlockQ8_0& block) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block.q));
}

SC_AVX2 inline __m256i WeightCodes(const BlockQ4_0& block) {
  const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(block.q));
  const __m128i nibble_mask = _mm_set1_epi8(0x0f);
  const __m128i low = _mm_and_si128(bytes, nibble_mask);                      // elements 0..15
  const __m128i high = _mm_and_si128(_mm_srli_epi16(bytes, 4), nibble_mask);  // 16..31
  return _mm256_sub_epi8(_mm256_set_m128i(high, low), _mm256_set1_epi8(8));
}

// y[c * y_stride + r] = sum over blocks of (int dot of codes) * d_w * d_x.
// The int8 x int8 products use maddubs, which multiplies unsigned by signed bytes: |w| times
// x with w's sign moved onto x. Pair sums stay within int16 (2 * 128 * 127 < 32768) because
// inputs quantized by QuantizeRowQ8_0 are within [-127, 127].
template <class Block, int R, int C>
SC_AVX2 inline void QuantTile(const Block* w, const BlockQ8_0* x, int64_t blocks, float* y,
                              int64_t y_stride) {
  const __m256i ones = _mm256_set1_epi16(1);
  __m256 acc[R][C];
  for (int r = 0; r < R; ++r) {
    for (int c = 0; c < C; ++c) acc[r][c] = _mm256_setzero_ps();
  }
  for (int64_t b = 0; b < blocks; ++b) {
    __m256i codes[R];
    __m256i magnitudes[R];
    float weight_scale[R];
    for (int r = 0; r < R; ++r) {
      const Block& block = w[r * blocks + b];
      codes[r] = WeightCodes(block);
      magnitudes[r] = _mm256_sign_epi8(codes[r], codes[r]);
      weight_scale[r] = HalfToFloat(block.d);
    }
    for (int c = 0; c < C; ++c) {
      const BlockQ8_0& input = x[c * blocks + b];
      const __m256i input_codes = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(input.q));
      const float input_scale = HalfToFloat(input.d);
      for (int r = 0; r < R; ++r) {
        const __m256i signed_input = _mm256_sign_epi8(input_codes, codes[r]);
        const __m256i pair_sums = _mm256_maddubs_epi16(magnitudes[r], signed_input);
        const __m256 sums = _mm256_cvtepi32_ps(_mm256_madd_epi16(pair_sums, ones));
        acc[r][c] = _mm256_fmadd_ps(sums, _mm256_set1_ps(weight_scale[r] * input_scale),
                                    acc[r][c]);
      }
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int c = 0; c < C; ++c) y[c * y_stride + r] = HorizontalSum(acc[r][c]);
  }
}

// Adapters so one driver serves both weight families: a row of k elements is `Stride(k)`
// elements of type Element, and a Tile computes R x C outputs. When M > 1, tiles are
// kTileRows x kTileColumns. Float tiles take 2 weight rows, so each input vector loaded
// serves two rows (2 x 3 outputs x 2 accumulators is what 16 vector registers hold next to
// the weights). Quantized tiles take 1: reading two rows side by side slowed small batches
// (M = 2 to 4) below one row at a time. They take 8 inputs, so each unpacked weight block
// serves 8 (at M = 8 in engine_kernels_bench, up to 10 % more GFLOP/s than 4 for Q8_0,
// 5-30 % for Q4_0).
template <class Loader>
struct FloatFamily {
  using Element = typename Loader::Element;
  using Input = float;
  static constexpr int kTileRows = 2;
  static constexpr int kTileColumns = 3;
  static int64_t Stride(int64_t k) { return k; }
  template <int R, int C>
  SC_AVX2 static void Tile(const Element* w, const Input* x, int64_t k, float* y, int64_t ys) {
    FloatTile<Loader, R, C>(w, x, k, y, ys);
  }
};
template <class Block>
struct QuantFamily {
  using Element = Block;
  using Input = BlockQ8_0;
  static constexpr int kTileRows = 1;
  static constexpr int kTileColumns = 8;
  static int64_t Stride(int64_t k) { return k / kQuantBlockSize; }
  template <int R, int C>
  SC_AVX2 static void Tile(const Element* w, const Input* x, int64_t k, float* y, int64_t ys) {
    QuantTile<Block, R, C>(w, x, k / kQuantBlockSize, y, ys);
  }
};

// One tile of the last `count` (< kTileColumns) input rows: Tile<R, count>, the count
// chosen at compile time from C downwards.
template <class Family, int R, int C>
SC_AVX2 void LastTile(const typename Family::Element* w, const typename Family::Input* x,
                      int64_t k, int64_t count, float* y, int64_t y_stride) {
  if constexpr (C > 0) {
    if (count == C) {
      Family::template Tile<R, C>(w, x, k, y, y_stride);
    } else {
      LastTile<Family, R, C - 1>(w, x, k, count, y, y_stride);
    }
  }
}

// All input rows [m_begin, m_end) against R weight rows starting at w, kTileColumns at a time.
template <class Family, int R>
SC_AVX2 void TilesForRows(const typename Family::Element* w, const typename Family::Input* x,
                          int64_t k, int64_t m_begin, int64_t m_end, float* y,
                          int64_t y_stride) {
  constexpr int kColumns = Family::kTileColumns;
  const int64_t x_stride = Family::Stride(k);
  int64_t m = m_begin;
  for (; m + kColumns <= m_end; m += kColumns) {
    Family::template Tile<R, kColumns>(w, x + m * x_stride, k, y + m * y_stride, y_stride);
  }
  LastTile<Family, R, kColumns - 1>(w, x + m * x_stride, k, m_end - m, y + m * y_stride,
                                    y_stride);
}

// Input rows per cache block: the block of inputs (about 256 KiB) stays in L2 while the
// weight rows of this part stream past it.
template <class Family>
int64_t InputRowsPerBlock(int64_t k) {
  constexpr int64_t kColumns = Family::kTileColumns;
  const int64_t row_bytes = Family::Stride(k) * static_cast<int64_t>(sizeof(typename Family::Input));
  return std::max(kColumns, (256 * 1024 / std::max<int64_t>(row_bytes, 1)) / kColumns * kColumns);
}

template <class Family>
SC_AVX2 void MatMulRows(const WeightMatrix& w, const void* input, int64_t m_count, float* y,
                        int64_t row_begin, int64_t row_end) {
  const auto* weights = static_cast<const typename Family::Element*>(w.data);
  const auto* x = static_cast<const typename Family::Input*>(input);
  const int64_t k = w.cols;
  const int64_t w_stride = Family::Stride(k);
  if (m_count == 1) {  // MatVec: one weight row at a time (see the top of this file)
    for (int64_t n = row_begin; n < row_end; ++n) {
      Family::template Tile<1, 1>(weights + n * w_stride, x, k, y + n, 1);
    }
    return;
  }
  constexpr int kRows = Family::kTileRows;
  const int64_t block_rows = InputRowsPerBlock<Family>(k);
  for (int64_t m_begin = 0; m_begin < m_count; m_begin += block_rows) {
    const int64_t m_end = std::min(m_count, m_begin + block_rows);
    int64_t n = row_begin;
    for (; n + kRows <= row_end; n += kRows) {
      TilesForRows<Family, kRows>(weights + n * w_stride, x, k, m_begin, m_end, y + n, w.rows);
    }
    for (; n < row_end; ++n) {
      TilesForRows<Family, 1>(weights + n * w_stride, x, k, m_begin, m_end, y + n, w.rows);
    }
  }
}

// ---- Q8_0 quantization of inputs (bit-identical to QuantizeRowQ8_0) ----

SC_AVX2 void QuantizeQ8_0(const float* x, BlockQ8_0* out, int64_t k) {
  const __m256 sign_bit = _mm256_set1_ps(-0.0f);
  for (int64_t b = 0; b < k / kQuantBlockSize; ++b) {
    const float* block = x + b * kQuantBlockSize;
    __m256 v[4];
    __m256 max_abs = _mm256_setzero_ps();
    for (int j = 0; j < 4; ++j) {
      v[j] = _mm256_loadu_ps(block + 8 * j);
      max_abs = _mm256_max_ps(max_abs, _mm256_andnot_ps(sign_bit, v[j]));
    }
    __m128 max4 = _mm_max_ps(_mm256_castps256_ps128(max_abs), _mm256_extractf128_ps(max_abs, 1));
    max4 = _mm_max_ps(max4, _mm_movehl_ps(max4, max4));
    max4 = _mm_max_ss(max4, _mm_movehdup_ps(max4));
    const float d = _mm_cvtss_f32(max4) / 127.0f;
    const float inverse = d != 0.0f ? 1.0f / d : 0.0f;
    out[b].d = Fp32ToFp16(d);
    const __m256 scale = _mm256_set1_ps(inverse);
    __m256i codes[4];
    for (int j = 0; j < 4; ++j) {
      // cvtps rounds in the current mode, to nearest even by default, like nearbyint.
      codes[j] = _mm256_cvtps_epi32(_mm256_mul_ps(v[j], scale));
    }
    // Narrow 4 x 8 int32 to 32 int8; the packs work per 128-bit lane, the permute undoes that.
    const __m256i words = _mm256_packs_epi32(codes[0], codes[1]);
    const __m256i words2 = _mm256_packs_epi32(codes[2], codes[3]);
    const __m256i bytes = _mm256_packs_epi16(words, words2);
    const __m256i ordered =
        _mm256_permutevar8x32_epi32(bytes, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out[b].q), ordered);
  }
}

// ---- vector helpers ----

SC_AVX2 float DotF32(const float* a, const float* b, int64_t n) {
  __m256 acc = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc);
  float sum = HorizontalSum(acc);
  for (; i < n; ++i) sum = std::fma(a[i], b[i], sum);
  return sum;
}

SC_AVX2 float DotF16(const uint16_t* a, const float* b, int64_t n) {
  __m256 acc = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) acc = _mm256_fmadd_ps(F16Loader::Load8(a + i), _mm256_loadu_ps(b + i), acc);
  float sum = HorizontalSum(acc);
  for (; i < n; ++i) sum = std::fma(HalfToFloat(a[i]), b[i], sum);
  return sum;
}

SC_AVX2 void AxpyF32(float alpha, const float* x, float* y, int64_t n) {
  const __m256 a = _mm256_set1_ps(alpha);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    _mm256_storeu_ps(y + i, _mm256_fmadd_ps(a, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
  }
  for (; i < n; ++i) y[i] = std::fma(alpha, x[i], y[i]);
}

SC_AVX2 void AxpyF16(float alpha, const uint16_t* x, float* y, int64_t n) {
  const __m256 a = _mm256_set1_ps(alpha);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    _mm256_storeu_ps(y + i, _mm256_fmadd_ps(a, F16Loader::Load8(x + i), _mm256_loadu_ps(y + i)));
  }
  for (; i < n; ++i) y[i] = std::fma(alpha, HalfToFloat(x[i]), y[i]);
}

SC_AVX2 void RmsNorm(const float* x, const float* weight, float epsilon, float* out, int64_t n) {
  __m256 acc = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    acc = _mm256_fmadd_ps(v, v, acc);
  }
  float sum = HorizontalSum(acc);
  for (; i < n; ++i) sum = std::fma(x[i], x[i], sum);
  const float scale = 1.0f / std::sqrt(sum / static_cast<float>(n) + epsilon);
  const __m256 scale8 = _mm256_set1_ps(scale);
  for (i = 0; i + 8 <= n; i += 8) {
    const __m256 scaled = _mm256_mul_ps(_mm256_loadu_ps(x + i), scale8);
    _mm256_storeu_ps(out + i, _mm256_mul_ps(scaled, _mm256_loadu_ps(weight + i)));
  }
  for (; i < n; ++i) out[i] = x[i] * scale * weight[i];
}

SC_AVX2 void Add(const float* a, const float* b, float* out, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    _mm256_storeu_ps(out + i, _mm256_add_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i)));
  }
  for (; i < n; ++i) out[i] = a[i] + b[i];
}

SC_AVX2 void Scale(float* x, float factor, int64_t n) {
  const __m256 f = _mm256_set1_ps(factor);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), f));
  for (; i < n; ++i) x[i] *= factor;
}

SC_AVX2 void F16ToF32(const uint16_t* in, float* out, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, F16Loader::Load8(in + i));
  for (; i < n; ++i) out[i] = HalfToFloat(in[i]);
}

SC_AVX2 void F32ToF16(const float* in, uint16_t* out, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i halves = _mm256_cvtps_ph(_mm256_loadu_ps(in + i), _MM_FROUND_TO_NEAREST_INT);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), halves);
  }
  for (; i < n; ++i) out[i] = Fp32ToFp16(in[i]);
}

SC_AVX2 void Bf16ToF32(const uint16_t* in, float* out, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, Bf16Loader::Load8(in + i));
  for (; i < n; ++i) out[i] = Bf16ToFp32(in[i]);
}

bool CpuHasAvx2FmaF16c() {
  __builtin_cpu_init();
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  // F16C is read from CPUID leaf 1 directly: clang 14's __builtin_cpu_supports has no name
  // for it. __builtin_cpu_supports("avx2") also checks that the OS saves YMM registers.
  const bool f16c = __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & bit_F16C) != 0;
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && f16c;
}

}  // namespace

const KernelTable* Avx2KernelTable() {
  static const KernelTable table = {
      .path = KernelPath::kAvx2,
      .matmul_rows = {MatMulRows<FloatFamily<F32Loader>>, MatMulRows<FloatFamily<F16Loader>>,
                      MatMulRows<FloatFamily<Bf16Loader>>, MatMulRows<QuantFamily<BlockQ8_0>>,
                      MatMulRows<QuantFamily<BlockQ4_0>>},
      .quantize_q8_0 = QuantizeQ8_0,
      .rms_norm = RmsNorm,
      .softmax = PortableSoftmax,
      .silu_mul = PortableSiluMul,
      .add = Add,
      .scale = Scale,
      .dot_f32 = DotF32,
      .dot_f16 = DotF16,
      .axpy_f32 = AxpyF32,
      .axpy_f16 = AxpyF16,
      .f16_to_f32 = F16ToF32,
      .f32_to_f16 = F32ToF16,
      .bf16_to_f32 = Bf16ToF32,
  };
  static const bool supported = CpuHasAvx2FmaF16c();
  return supported ? &table : nullptr;
}

}  // namespace supercluster::engine::kernels

#else  // not x86-64 with GCC/clang: no AVX2 path

namespace supercluster::engine::kernels {
const KernelTable* Avx2KernelTable() { return nullptr; }
}  // namespace supercluster::engine::kernels

#endif
