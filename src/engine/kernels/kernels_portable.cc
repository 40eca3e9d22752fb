// The portable kernel path: plain C++ that any compiler vectorises a little (the eight
// independent partial sums below map onto SSE2 lanes) and that runs on any CPU. It is the
// fallback on CPUs without AVX2 and the baseline the AVX2 path is measured and tested
// against.
#include <cmath>
#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "engine/kernels/half.h"
#include "engine/kernels/kernel_table.h"
#include "engine/kernels/quantize.h"

namespace supercluster::engine::kernels {
namespace {

constexpr int kLanes = 8;

float SumLanes(const float (&partial)[kLanes]) {
  return ((partial[0] + partial[4]) + (partial[1] + partial[5])) +
         ((partial[2] + partial[6]) + (partial[3] + partial[7]));
}

struct F32Loader {
  using Element = float;
  static float Load(const float* p) { return *p; }
};
struct F16Loader {
  using Element = uint16_t;
  static float Load(const uint16_t* p) { return Fp16ToFp32(*p); }
};
struct Bf16Loader {
  using Element = uint16_t;
  static float Load(const uint16_t* p) { return Bf16ToFp32(*p); }
};

// Converts n weights to floats. A separate loop (rather than converting inside the dot
// product) is what lets the compiler vectorise the conversion.
template <class Loader>
void ConvertChunk(const typename Loader::Element* w, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = Loader::Load(w + i);
}

// Tiles of one weight row against C input rows (rows k long):
//   y[c * y_stride] = sum_i w[i] * x[c * k + i]
// in a fixed order per output: eight interleaved partial sums, reduced by SumLanes, then
// the tail in order. 16-bit weights are converted a chunk at a time (once per tile, shared
// by its C input rows); the chunk is a multiple of kLanes, so chunking changes no sum.
template <class Loader, int C>
void FloatTile(const typename Loader::Element* w, const float* x, int64_t k, float* y,
               int64_t y_stride) {
  constexpr int64_t kChunk = 256;
  float partial[C][kLanes] = {};
  float converted[kChunk];
  int64_t i = 0;
  for (; i + kLanes <= k; i += kLanes) {
    const float* wf;
    if constexpr (std::is_same_v<typename Loader::Element, float>) {
      wf = w + i;
    } else {
      if (i % kChunk == 0) ConvertChunk<Loader>(w + i, converted, std::min(kChunk, k - i));
      wf = converted + i % kChunk;
    }
    for (int c = 0; c < C; ++c) {
      for (int j = 0; j < kLanes; ++j) partial[c][j] += wf[j] * x[c * k + i + j];
    }
  }
  for (int c = 0; c < C; ++c) {
    float sum = SumLanes(partial[c]);
    for (int64_t j = i; j < k; ++j) sum += Loader::Load(w + j) * x[c * k + j];
    y[c * y_stride] = sum;
  }
}

template <class Loader>
float DotRow(const typename Loader::Element* w, const float* x, int64_t k) {
  float y;
  FloatTile<Loader, 1>(w, x, k, &y, 0);
  return y;
}

// Codes of one block as 32 signed bytes in element order.
void UnpackCodes(const BlockQ8_0& block, int8_t* codes) {
  for (int i = 0; i < kQuantBlockSize; ++i) codes[i] = block.q[i];
}
void UnpackCodes(const BlockQ4_0& block, int8_t* codes) {
  for (int i = 0; i < kQuantBlockSize / 2; ++i) {
    codes[i] = static_cast<int8_t>((block.q[i] & 0x0f) - 8);
    codes[i + 16] = static_cast<int8_t>((block.q[i] >> 4) - 8);
  }
}

// One weight row of quantized blocks against C Q8_0 input rows: per block an exact integer
// dot product, scaled by both block scales and added in block order. Each weight block is
// unpacked once per tile.
template <class Block, int C>
void QuantTile(const Block* w, const BlockQ8_0* x, int64_t blocks, float* y, int64_t y_stride) {
  float sum[C] = {};
  int8_t codes[kQuantBlockSize];
  for (int64_t b = 0; b < blocks; ++b) {
    UnpackCodes(w[b], codes);
    const float weight_scale = Fp16ToFp32(w[b].d);
    for (int c = 0; c < C; ++c) {
      const BlockQ8_0& input = x[c * blocks + b];
      int32_t dot = 0;
      for (int i = 0; i < kQuantBlockSize; ++i) dot += int32_t{codes[i]} * int32_t{input.q[i]};
      sum[c] += static_cast<float>(dot) * (weight_scale * Fp16ToFp32(input.d));
    }
  }
  for (int c = 0; c < C; ++c) y[c * y_stride] = sum[c];
}

template <class Loader>
struct FloatFamily {
  using Element = typename Loader::Element;
  using Input = float;
  static int64_t Stride(int64_t k) { return k; }
  template <int C>
  static void Tile(const Element* w, const Input* x, int64_t k, float* y, int64_t y_stride) {
    FloatTile<Loader, C>(w, x, k, y, y_stride);
  }
};
template <class Block>
struct QuantFamily {
  using Element = Block;
  using Input = BlockQ8_0;
  static int64_t Stride(int64_t k) { return k / kQuantBlockSize; }
  template <int C>
  static void Tile(const Element* w, const Input* x, int64_t k, float* y, int64_t y_stride) {
    QuantTile<Block, C>(w, x, k / kQuantBlockSize, y, y_stride);
  }
};

// Input rows are taken in blocks of about 128 KiB, which stay in cache while the weight
// rows of this part pass by; each weight row is read once per tile of 4 input rows.
template <class Family>
void MatMulRows(const WeightMatrix& w, const void* input, int64_t m_count, float* y,
                int64_t row_begin, int64_t row_end) {
  const auto* weights = static_cast<const typename Family::Element*>(w.data);
  const auto* x = static_cast<const typename Family::Input*>(input);
  const int64_t k = w.cols;
  const int64_t stride = Family::Stride(k);
  const int64_t row_bytes = stride * static_cast<int64_t>(sizeof(typename Family::Input));
  const int64_t block_rows = std::max<int64_t>(4, 128 * 1024 / std::max<int64_t>(row_bytes, 1) / 4 * 4);
  for (int64_t m_begin = 0; m_begin < m_count; m_begin += block_rows) {
    const int64_t m_end = std::min(m_count, m_begin + block_rows);
    for (int64_t n = row_begin; n < row_end; ++n) {
      const typename Family::Element* row = weights + n * stride;
      int64_t m = m_begin;
      for (; m + 4 <= m_end; m += 4) {
        Family::template Tile<4>(row, x + m * stride, k, y + m * w.rows + n, w.rows);
      }
      switch (m_end - m) {
        case 3: Family::template Tile<3>(row, x + m * stride, k, y + m * w.rows + n, w.rows); break;
        case 2: Family::template Tile<2>(row, x + m * stride, k, y + m * w.rows + n, w.rows); break;
        case 1: Family::template Tile<1>(row, x + m * stride, k, y + m * w.rows + n, w.rows); break;
        default: break;
      }
    }
  }
}

void RmsNorm(const float* x, const float* weight, float epsilon, float* out, int64_t n) {
  float partial[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int j = 0; j < kLanes; ++j) partial[j] += x[i + j] * x[i + j];
  }
  float sum = SumLanes(partial);
  for (; i < n; ++i) sum += x[i] * x[i];
  const float scale = 1.0f / std::sqrt(sum / static_cast<float>(n) + epsilon);
  for (i = 0; i < n; ++i) out[i] = x[i] * scale * weight[i];
}

void Add(const float* a, const float* b, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = a[i] + b[i];
}

void Scale(float* x, float factor, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] *= factor;
}

float DotF32(const float* a, const float* b, int64_t n) { return DotRow<F32Loader>(a, b, n); }
float DotF16(const uint16_t* a, const float* b, int64_t n) { return DotRow<F16Loader>(a, b, n); }

void AxpyF32(float alpha, const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += alpha * x[i];
}

void AxpyF16(float alpha, const uint16_t* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += alpha * Fp16ToFp32(x[i]);
}

void F16ToF32(const uint16_t* in, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = Fp16ToFp32(in[i]);
}

void F32ToF16(const float* in, uint16_t* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = Fp32ToFp16(in[i]);
}

void Bf16ToF32(const uint16_t* in, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = Bf16ToFp32(in[i]);
}

}  // namespace

void PortableSoftmax(float* x, int64_t n) {
  float max = -INFINITY;
  for (int64_t i = 0; i < n; ++i) max = std::fmax(max, x[i]);
  float sum = 0.0f;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - max);
    sum += x[i];
  }
  const float inverse = 1.0f / sum;
  for (int64_t i = 0; i < n; ++i) x[i] *= inverse;
}

void PortableSiluMul(const float* gate, const float* up, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    out[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
}

const KernelTable& PortableKernelTable() {
  static const KernelTable table = {
      .path = KernelPath::kPortable,
      .matmul_rows = {MatMulRows<FloatFamily<F32Loader>>, MatMulRows<FloatFamily<F16Loader>>,
                      MatMulRows<FloatFamily<Bf16Loader>>, MatMulRows<QuantFamily<BlockQ8_0>>,
                      MatMulRows<QuantFamily<BlockQ4_0>>},
      .quantize_q8_0 = QuantizeRowQ8_0,
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
  return table;
}

}  // namespace supercluster::engine::kernels
