#include "engine/tensor_type.h"

#include "engine/kernels/half.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>

namespace supercluster::engine {
namespace {

// Block layouts from ggml's type table (QK_K = 256 for the k-quants).
constexpr TensorTypeInfo kTypes[] = {
    {TensorType::kF32, "f32", 1, 4},        {TensorType::kF16, "f16", 1, 2},
    {TensorType::kQ4_0, "q4_0", 32, 18},    {TensorType::kQ4_1, "q4_1", 32, 20},
    {TensorType::kQ5_0, "q5_0", 32, 22},    {TensorType::kQ5_1, "q5_1", 32, 24},
    {TensorType::kQ8_0, "q8_0", 32, 34},    {TensorType::kQ8_1, "q8_1", 32, 36},
    {TensorType::kQ2_K, "q2_K", 256, 84},   {TensorType::kQ3_K, "q3_K", 256, 110},
    {TensorType::kQ4_K, "q4_K", 256, 144},  {TensorType::kQ5_K, "q5_K", 256, 176},
    {TensorType::kQ6_K, "q6_K", 256, 210},  {TensorType::kQ8_K, "q8_K", 256, 292},
    {TensorType::kI8, "i8", 1, 1},          {TensorType::kI16, "i16", 1, 2},
    {TensorType::kI32, "i32", 1, 4},        {TensorType::kI64, "i64", 1, 8},
    {TensorType::kF64, "f64", 1, 8},        {TensorType::kBF16, "bf16", 1, 2},
};

uint16_t LoadU16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
void StoreU16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v);
  p[1] = static_cast<uint8_t>(v >> 8);
}

}  // namespace

const TensorTypeInfo* FindTensorType(uint32_t id) {
  for (const TensorTypeInfo& info : kTypes) {
    if (static_cast<uint32_t>(info.type) == id) return &info;
  }
  return nullptr;
}

const TensorTypeInfo& GetTensorTypeInfo(TensorType type) {
  return *FindTensorType(static_cast<uint32_t>(type));
}

std::string_view TensorTypeName(TensorType type) { return GetTensorTypeInfo(type).name; }

base::Result<TensorType> ParseTensorTypeName(std::string_view name) {
  for (const TensorTypeInfo& info : kTypes) {
    if (name == info.name) return info.type;
  }
  return base::InvalidArgument("unknown tensor type '" + std::string(name) + "'");
}

base::Result<uint64_t> RowByteSize(TensorType type, uint64_t row_elements) {
  const TensorTypeInfo& info = GetTensorTypeInfo(type);
  if (row_elements % info.block_elements != 0) {
    return base::InvalidArgument("a row of " + std::to_string(row_elements) + " " + info.name +
                                 " values is not a whole number of " +
                                 std::to_string(info.block_elements) + "-value blocks");
  }
  uint64_t blocks = row_elements / info.block_elements;
  uint64_t bytes = 0;
  if (__builtin_mul_overflow(blocks, uint64_t{info.block_bytes}, &bytes)) {
    return base::InvalidArgument("row byte size overflows 64 bits");
  }
  return bytes;
}

base::Result<uint64_t> ElementCount(std::span<const uint64_t> shape) {
  uint64_t count = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == 0) {
      return base::InvalidArgument("dimension " + std::to_string(i) + " is zero");
    }
    if (__builtin_mul_overflow(count, shape[i], &count)) {
      return base::InvalidArgument("element count overflows 64 bits");
    }
  }
  return count;
}

base::Result<uint64_t> TensorByteSize(TensorType type, std::span<const uint64_t> shape) {
  SC_ASSIGN_OR_RETURN(uint64_t elements, ElementCount(shape));
  uint64_t row = shape.empty() ? 1 : shape[0];
  SC_ASSIGN_OR_RETURN(uint64_t row_bytes, RowByteSize(type, row));
  uint64_t bytes = 0;
  if (__builtin_mul_overflow(row_bytes, elements / row, &bytes)) {
    return base::InvalidArgument("byte size overflows 64 bits");
  }
  return bytes;
}

// The conversions live with the kernels (kernels/half.h), which test them on every bit
// pattern; the file readers and writers use the same ones.
float HalfToFloat(uint16_t half) { return kernels::Fp16ToFp32(half); }
uint16_t FloatToHalf(float value) { return kernels::Fp32ToFp16(value); }
float BFloat16ToFloat(uint16_t bf16) { return kernels::Bf16ToFp32(bf16); }
uint16_t FloatToBFloat16(float value) { return kernels::Fp32ToBf16(value); }

base::Status DequantizeRow(TensorType type, const void* src, uint64_t count, float* out) {
  const uint8_t* bytes = static_cast<const uint8_t*>(src);
  switch (type) {
    case TensorType::kF32:
      std::memcpy(out, bytes, count * 4);
      return base::Status::Ok();
    case TensorType::kF16:
      for (uint64_t i = 0; i < count; ++i) out[i] = HalfToFloat(LoadU16(bytes + 2 * i));
      return base::Status::Ok();
    case TensorType::kBF16:
      for (uint64_t i = 0; i < count; ++i) out[i] = BFloat16ToFloat(LoadU16(bytes + 2 * i));
      return base::Status::Ok();
    case TensorType::kQ8_0:
    case TensorType::kQ4_0: {
      SC_RETURN_IF_ERROR(RowByteSize(type, count).status());
      const uint32_t block_bytes = type == TensorType::kQ8_0 ? 34 : 18;
      for (uint64_t block = 0; block < count / 32; ++block) {
        const uint8_t* b = bytes + block * block_bytes;
        float scale = HalfToFloat(LoadU16(b));
        float* o = out + block * 32;
        if (type == TensorType::kQ8_0) {
          for (int j = 0; j < 32; ++j) o[j] = scale * static_cast<int8_t>(b[2 + j]);
        } else {
          for (int j = 0; j < 16; ++j) {
            o[j] = scale * ((b[2 + j] & 0x0f) - 8);
            o[j + 16] = scale * ((b[2 + j] >> 4) - 8);
          }
        }
      }
      return base::Status::Ok();
    }
    default:
      return base::InvalidArgument("no reference dequantization for type " +
                                   std::string(TensorTypeName(type)));
  }
}

base::Status QuantizeRow(TensorType type, const float* src, uint64_t count, void* dst) {
  uint8_t* bytes = static_cast<uint8_t*>(dst);
  switch (type) {
    case TensorType::kF32:
      std::memcpy(bytes, src, count * 4);
      return base::Status::Ok();
    case TensorType::kF16:
      for (uint64_t i = 0; i < count; ++i) StoreU16(bytes + 2 * i, FloatToHalf(src[i]));
      return base::Status::Ok();
    case TensorType::kBF16:
      for (uint64_t i = 0; i < count; ++i) StoreU16(bytes + 2 * i, FloatToBFloat16(src[i]));
      return base::Status::Ok();
    case TensorType::kQ8_0:
      SC_RETURN_IF_ERROR(RowByteSize(type, count).status());
      for (uint64_t block = 0; block < count / 32; ++block) {
        const float* x = src + block * 32;
        uint8_t* b = bytes + block * 34;
        float max_abs = 0;
        for (int j = 0; j < 32; ++j) max_abs = std::max(max_abs, std::fabs(x[j]));
        float scale = max_abs / 127.0f;
        float inverse = scale != 0 ? 1.0f / scale : 0.0f;
        StoreU16(b, FloatToHalf(scale));
        for (int j = 0; j < 32; ++j) {
          b[2 + j] = static_cast<uint8_t>(static_cast<int8_t>(std::lround(x[j] * inverse)));
        }
      }
      return base::Status::Ok();
    case TensorType::kQ4_0:
      SC_RETURN_IF_ERROR(RowByteSize(type, count).status());
      for (uint64_t block = 0; block < count / 32; ++block) {
        const float* x = src + block * 32;
        uint8_t* b = bytes + block * 18;
        float extreme = 0;  // the value of largest magnitude, sign kept
        for (int j = 0; j < 32; ++j) {
          if (std::fabs(x[j]) > std::fabs(extreme)) extreme = x[j];
        }
        float scale = extreme / -8.0f;
        float inverse = scale != 0 ? 1.0f / scale : 0.0f;
        StoreU16(b, FloatToHalf(scale));
        auto level = [&](float v) {
          return static_cast<uint8_t>(std::clamp(std::floor(v * inverse + 8.5f), 0.0f, 15.0f));
        };
        for (int j = 0; j < 16; ++j) {
          b[2 + j] = static_cast<uint8_t>(level(x[j]) | (level(x[j + 16]) << 4));
        }
      }
      return base::Status::Ok();
    default:
      return base::InvalidArgument("no reference quantization for type " +
                                   std::string(TensorTypeName(type)));
  }
}

}  // namespace supercluster::engine
