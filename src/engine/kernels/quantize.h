// Quantizing activations to Q8_0 and dequantizing weight rows to F32: the reference
// conversions behind the quantized kernels. The kernels quantize their input vector with
// the same rule (kernels.h); the model readers and tests use DequantizeRow to look at
// weights as floats. Not on the hot path: these are plain scalar loops.
#pragma once

#include <cstdint>

#include "engine/kernels/tensor_type.h"

namespace supercluster::engine::kernels {

// Quantizes x[0..k) into k/32 Q8_0 blocks: per block d = max|x| / 127 and
// q[i] = round-half-even(x[i] * (1/d)) (0 when d == 0); d is stored as a half. The product
// with the reciprocal, not a division, is what every kernel path computes, so all paths
// quantize bit-identically. Precondition: k % kQuantBlockSize == 0; x finite.
void QuantizeRowQ8_0(const float* x, BlockQ8_0* out, int64_t k);

// Writes the k F32 values of one row stored as `type` (see tensor_type.h) to out.
// Precondition: k % kQuantBlockSize == 0 for quantized types; row holds RowBytes(type, k).
void DequantizeRow(TensorType type, const void* row, float* out, int64_t k);

// Quantizes a row of F32 weights to Q4_0 (d = the value of largest magnitude / -8, nibble =
// clamp(round(x / d) + 8, 0, 15), the ggml rule) so tests and tools can make Q4_0 weights.
// Precondition: k % kQuantBlockSize == 0.
void QuantizeRowQ4_0(const float* x, BlockQ4_0* out, int64_t k);

}  // namespace supercluster::engine::kernels
