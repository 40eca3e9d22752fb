#include "engine/kernels/quantize.h"

#include <cmath>
#include <cstring>

#include "engine/kernels/half.h"

namespace supercluster::engine::kernels {

void QuantizeRowQ8_0(const float* x, BlockQ8_0* out, int64_t k) {
  for (int64_t b = 0; b < k / kQuantBlockSize; ++b) {
    const float* block = x + b * kQuantBlockSize;
    float max_abs = 0.0f;
    for (int i = 0; i < kQuantBlockSize; ++i) max_abs = std::fmax(max_abs, std::fabs(block[i]));
    const float d = max_abs / 127.0f;
    const float inverse = d != 0.0f ? 1.0f / d : 0.0f;
    out[b].d = Fp32ToFp16(d);
    for (int i = 0; i < kQuantBlockSize; ++i) {
      // nearbyint rounds half to even in the default rounding mode, as the AVX2 path does.
      out[b].q[i] = static_cast<int8_t>(std::nearbyint(block[i] * inverse));
    }
  }
}

void QuantizeRowQ4_0(const float* x, BlockQ4_0* out, int64_t k) {
  for (int64_t b = 0; b < k / kQuantBlockSize; ++b) {
    const float* block = x + b * kQuantBlockSize;
    float extreme = 0.0f;  // the value of largest magnitude, with its sign
    for (int i = 0; i < kQuantBlockSize; ++i) {
      if (std::fabs(block[i]) > std::fabs(extreme)) extreme = block[i];
    }
    const float d = extreme / -8.0f;
    const float inverse = d != 0.0f ? 1.0f / d : 0.0f;
    out[b].d = Fp32ToFp16(d);
    for (int i = 0; i < kQuantBlockSize / 2; ++i) {
      auto nibble = [&](float v) {
        const float shifted = std::nearbyint(v * inverse) + 8.0f;
        return static_cast<uint8_t>(std::fmin(15.0f, std::fmax(0.0f, shifted)));
      };
      out[b].q[i] = static_cast<uint8_t>(nibble(block[i]) | (nibble(block[i + 16]) << 4));
    }
  }
}

void DequantizeRow(TensorType type, const void* row, float* out, int64_t k) {
  switch (type) {
    case TensorType::kF32:
      std::memcpy(out, row, static_cast<size_t>(k) * sizeof(float));
      return;
    case TensorType::kF16: {
      const auto* halves = static_cast<const uint16_t*>(row);
      for (int64_t i = 0; i < k; ++i) out[i] = Fp16ToFp32(halves[i]);
      return;
    }
    case TensorType::kBF16: {
      const auto* values = static_cast<const uint16_t*>(row);
      for (int64_t i = 0; i < k; ++i) out[i] = Bf16ToFp32(values[i]);
      return;
    }
    case TensorType::kQ8_0: {
      const auto* blocks = static_cast<const BlockQ8_0*>(row);
      for (int64_t b = 0; b < k / kQuantBlockSize; ++b) {
        const float d = Fp16ToFp32(blocks[b].d);
        for (int i = 0; i < kQuantBlockSize; ++i) out[b * kQuantBlockSize + i] = d * blocks[b].q[i];
      }
      return;
    }
    case TensorType::kQ4_0: {
      const auto* blocks = static_cast<const BlockQ4_0*>(row);
      for (int64_t b = 0; b < k / kQuantBlockSize; ++b) {
        const float d = Fp16ToFp32(blocks[b].d);
        float* block_out = out + b * kQuantBlockSize;
        for (int i = 0; i < kQuantBlockSize / 2; ++i) {
          block_out[i] = d * static_cast<float>((blocks[b].q[i] & 0x0f) - 8);
          block_out[i + 16] = d * static_cast<float>((blocks[b].q[i] >> 4) - 8);
        }
      }
      return;
    }
  }
}

}  // namespace supercluster::engine::kernels
