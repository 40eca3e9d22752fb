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

// sum_i w[i] * x[i] in a fixed order: eight interleaved partial sums, then the tail.
// 16-bit weights are converted a chunk at a time into a stack buffer; the chunk size is a
// multiple of kLanes, so the order of the sums is the same as without chunks.
template <class Loader>
float DotRow(const typename Loader::Element* w, const float* x, int64_t k) {
  constexpr int64_t kChunk = 256;
  float partial[kLanes] = {};
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
    for (int j = 0; j < kLanes; ++j) partial[j] += wf[j] * x[i + j];
  }
  float sum = SumLanes(partial);
  for (; i < k; ++i) sum += Loader::Load(w + i) * x[i];
  return sum;
}

// Each weight row is read once per call and reused for all m_count input rows while it is
// in L1; the inputs stay in cache across rows.
template <class Loader>
void FloatMatMulRows(const WeightMatrix& w, const void* input, int64_t m_count, float* y,
                     int64_t row_begin, int64_t row_end) {
  const auto* weights = static_cast<const typename Loader::Element*>(w.data);
  const auto* x = static_cast<const float*>(input);
  const int64_t k = w.cols;
  for (int64_t n = row_begin; n < row_end; ++n) {
    for (int64_t m = 0; m < m_count; ++m) {
      y[m * w.rows + n] = DotRow<Loader>(weights + n * k, x + m * k, k);
    }
  }
}

int32_t BlockDot(const BlockQ8_0& w, const BlockQ8_0& x) {
  int32_t sum = 0;
  for (int i = 0; i < kQuantBlockSize; ++i) sum += int32_t{w.q[i]} * int32_t{x.q[i]};
  return sum;
}

int32_t BlockDot(const BlockQ4_0& w, const BlockQ8_0& x) {
  int32_t sum = 0;
  for (int i = 0; i < kQuantBlockSize / 2; ++i) {
    sum += ((w.q[i] & 0x0f) - 8) * int32_t{x.q[i]};
    sum += ((w.q[i] >> 4) - 8) * int32_t{x.q[i + 16]};
  }
  return sum;
}

template <class Block>
void QuantizedMatMulRows(const WeightMatrix& w, const void* input, int64_t m_count, float* y,
                         int64_t row_begin, int64_t row_end) {
  const auto* weights = static_cast<const Block*>(w.data);
  const auto* x = static_cast<const BlockQ8_0*>(input);
  const int64_t blocks = w.cols / kQuantBlockSize;
  for (int64_t n = row_begin; n < row_end; ++n) {
    const Block* row = weights + n * blocks;
    for (int64_t m = 0; m < m_count; ++m) {
      const BlockQ8_0* x_row = x + m * blocks;
      float sum = 0.0f;
      for (int64_t b = 0; b < blocks; ++b) {
        const float scale = Fp16ToFp32(row[b].d) * Fp16ToFp32(x_row[b].d);
        sum += static_cast<float>(BlockDot(row[b], x_row[b])) * scale;
      }
      y[m * w.rows + n] = sum;
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
      .matmul_rows = {FloatMatMulRows<F32Loader>, FloatMatMulRows<F16Loader>,
                      FloatMatMulRows<Bf16Loader>, QuantizedMatMulRows<BlockQ8_0>,
                      QuantizedMatMulRows<BlockQ4_0>},
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
