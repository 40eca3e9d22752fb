// Element types of model weights and their in-memory layout, as GGUF/ggml stores them. The
// CPU kernels (kernels.h) read weights in these layouts directly from the mapped model file;
// the model readers use RowBytes to check tensor sizes.
//
// A row of K elements is stored as:
//   kF32   K little-endian IEEE binary32
//   kF16   K IEEE binary16 (half), as uint16_t bit patterns
//   kBF16  K bfloat16 (the top 16 bits of a binary32), as uint16_t
//   kQ8_0  K/32 consecutive BlockQ8_0: value[i] = d * q[i]
//   kQ4_0  K/32 consecutive BlockQ4_0: byte j holds element j in its low nibble and element
//          j + 16 in its high nibble; value = d * (nibble - 8)
// Quantized rows need K to be a multiple of 32 (kQuantBlockSize).
#pragma once

#include <cstddef>
#include <cstdint>

namespace supercluster::engine::kernels {

enum class TensorType { kF32, kF16, kBF16, kQ8_0, kQ4_0 };

inline constexpr int64_t kQuantBlockSize = 32;

struct BlockQ8_0 {
  uint16_t d;  // scale, IEEE half
  int8_t q[kQuantBlockSize];
};
static_assert(sizeof(BlockQ8_0) == 34, "BlockQ8_0 must match ggml's 34-byte block");

struct BlockQ4_0 {
  uint16_t d;  // scale, IEEE half
  uint8_t q[kQuantBlockSize / 2];
};
static_assert(sizeof(BlockQ4_0) == 18, "BlockQ4_0 must match ggml's 18-byte block");

// "f32", "f16", "bf16", "q8_0", "q4_0".
const char* TensorTypeName(TensorType type);

// True for the block-quantized types (rows must be a multiple of kQuantBlockSize long).
bool IsQuantized(TensorType type);

// Bytes of one row of `cols` elements. Precondition: cols >= 0, and for a quantized type
// cols % kQuantBlockSize == 0.
int64_t RowBytes(TensorType type, int64_t cols);

}  // namespace supercluster::engine::kernels
