// Internal to the kernels: the table of functions one kernel path (portable, AVX2)
// provides. kernels.cc picks a table and wraps it in the public Kernels class; only the
// kernels' own files and their tests include this header.
#pragma once

#include <cstdint>

#include "engine/kernels/kernels.h"
#include "engine/kernels/tensor_type.h"

namespace supercluster::engine::kernels {

// Computes, for weight rows n in [row_begin, row_end) and input rows m in [0, m_count):
//   y[m * w.rows + n] = dot(W row n, input row m)
// `input` is F32 rows of w.cols floats for F32/F16/BF16 weights, and Q8_0 rows of
// w.cols/32 blocks for Q8_0/Q4_0 weights. Each output must be computed the same way
// whatever the range and m_count (see "Determinism" in kernels.h).
using MatMulRowsFunction = void (*)(const WeightMatrix& w, const void* input, int64_t m_count,
                                    float* y, int64_t row_begin, int64_t row_end);

struct KernelTable {
  KernelPath path;
  MatMulRowsFunction matmul_rows[5];  // indexed by TensorType
  void (*quantize_q8_0)(const float* x, BlockQ8_0* out, int64_t k);
  void (*rms_norm)(const float* x, const float* weight, float epsilon, float* out, int64_t n);
  void (*softmax)(float* x, int64_t n);
  void (*silu_mul)(const float* gate, const float* up, float* out, int64_t n);
  void (*add)(const float* a, const float* b, float* out, int64_t n);
  void (*scale)(float* x, float factor, int64_t n);
  float (*dot_f32)(const float* a, const float* b, int64_t n);
  float (*dot_f16)(const uint16_t* a, const float* b, int64_t n);
  void (*axpy_f32)(float alpha, const float* x, float* y, int64_t n);
  void (*axpy_f16)(float alpha, const uint16_t* x, float* y, int64_t n);
  void (*f16_to_f32)(const uint16_t* in, float* out, int64_t n);
  void (*f32_to_f16)(const float* in, uint16_t* out, int64_t n);
  void (*bf16_to_f32)(const uint16_t* in, float* out, int64_t n);
};

const KernelTable& PortableKernelTable();
// nullptr when the build has no AVX2 path (not x86-64) or the CPU lacks AVX2/FMA/F16C.
const KernelTable* Avx2KernelTable();

// Portable pieces the AVX2 table reuses where vectorising would not pay (exp-bound loops).
void PortableSoftmax(float* x, int64_t n);
void PortableSiluMul(const float* gate, const float* up, float* out, int64_t n);

}  // namespace supercluster::engine::kernels
