#include "engine/kernels/tensor_type.h"

namespace supercluster::engine::kernels {

const char* TensorTypeName(TensorType type) {
  switch (type) {
    case TensorType::kF32: return "f32";
    case TensorType::kF16: return "f16";
    case TensorType::kBF16: return "bf16";
    case TensorType::kQ8_0: return "q8_0";
    case TensorType::kQ4_0: return "q4_0";
  }
  return "unknown";
}

bool IsQuantized(TensorType type) {
  return type == TensorType::kQ8_0 || type == TensorType::kQ4_0;
}

int64_t RowBytes(TensorType type, int64_t cols) {
  switch (type) {
    case TensorType::kF32: return cols * 4;
    case TensorType::kF16:
    case TensorType::kBF16: return cols * 2;
    case TensorType::kQ8_0: return cols / kQuantBlockSize * static_cast<int64_t>(sizeof(BlockQ8_0));
    case TensorType::kQ4_0: return cols / kQuantBlockSize * static_cast<int64_t>(sizeof(BlockQ4_0));
  }
  return 0;
}

}  // namespace supercluster::engine::kernels
