// Tensor element types of the model files the engine reads (GGUF's ggml type ids, which
// safetensors dtypes are mapped onto), their block layouts and byte sizes, and reference
// (slow, obviously correct) conversions between them and float.
//
// Called by the GGUF and safetensors readers to size tensors, by the model synthesizer and
// the GGUF writer to produce data, and by tests and kernels as the reference to compare
// against. Quantized types store `block_elements` values in `block_bytes` bytes; a row's
// element count must be a whole number of blocks.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "base/status.h"

namespace supercluster::engine {

// Values are ggml's type ids as stored in GGUF tensor infos; ids not listed are unknown.
enum class TensorType : uint32_t {
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ4_1 = 3,
  kQ5_0 = 6,
  kQ5_1 = 7,
  kQ8_0 = 8,
  kQ8_1 = 9,
  kQ2_K = 10,
  kQ3_K = 11,
  kQ4_K = 12,
  kQ5_K = 13,
  kQ6_K = 14,
  kQ8_K = 15,
  kI8 = 24,
  kI16 = 25,
  kI32 = 26,
  kI64 = 27,
  kF64 = 28,
  kBF16 = 30,
};

struct TensorTypeInfo {
  TensorType type;
  const char* name;        // as llama.cpp prints it: "f32", "q8_0", "bf16"
  uint32_t block_elements; // values per block (1 for plain types)
  uint32_t block_bytes;    // bytes per block
};

// Returns the layout of ggml type id `id`, or nullptr when the id is unknown here.
const TensorTypeInfo* FindTensorType(uint32_t id);
// Precondition: `type` is one of the enumerators above.
const TensorTypeInfo& GetTensorTypeInfo(TensorType type);
std::string_view TensorTypeName(TensorType type);
// Parses a name as printed by TensorTypeName ("q8_0"); kInvalidArgument otherwise.
base::Result<TensorType> ParseTensorTypeName(std::string_view name);

// Bytes of one row of `row_elements` values. Fails when the row is not a whole number of
// blocks or the size does not fit in 64 bits.
base::Result<uint64_t> RowByteSize(TensorType type, uint64_t row_elements);

// Element count and byte size of a tensor whose shape is listed innermost dimension first
// (GGUF order: shape[0] is the contiguous row). Fails on a zero dimension, on overflow, or
// when shape[0] is not a whole number of blocks. An empty shape is a scalar (1 element).
base::Result<uint64_t> ElementCount(std::span<const uint64_t> shape);
base::Result<uint64_t> TensorByteSize(TensorType type, std::span<const uint64_t> shape);

// IEEE half and bfloat16 <-> float (round to nearest even; NaN stays NaN).
float HalfToFloat(uint16_t half);
uint16_t FloatToHalf(float value);
float BFloat16ToFloat(uint16_t bf16);
uint16_t FloatToBFloat16(float value);

// Reference dequantization of `count` values starting at the beginning of a row (`src`
// holds RowByteSize(type, count) bytes). Supports F32, F16, BF16, Q8_0 and Q4_0; other
// types give kInvalidArgument. Precondition: `out` has room for `count` floats.
base::Status DequantizeRow(TensorType type, const void* src, uint64_t count, float* out);

// Reference quantization of `count` floats into a row of `type` (F32, F16, BF16, Q8_0,
// Q4_0), writing RowByteSize(type, count) bytes to `dst`. Q8_0: scale = max|x| / 127,
// q = round(x / scale). Q4_0: scale = (value of largest magnitude) / -8, q = x / scale + 8
// clamped to 0..15, the low nibbles holding values 0..15 and the high nibbles 16..31.
base::Status QuantizeRow(TensorType type, const float* src, uint64_t count, void* dst);

}  // namespace supercluster::engine
