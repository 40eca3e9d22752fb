// Scalar conversions between binary32 and the 16-bit float formats the engine stores weights
// and KV caches in (IEEE binary16 "half" and bfloat16). Used by the portable kernels, the
// quantizers and tests; whole rows convert faster through Kernels::ConvertF16ToF32 and
// friends (kernels.h), which use F16C when the CPU has it.
//
// All conversions are exact where the target can represent the value; Fp32ToFp16 and
// Fp32ToBf16 round to nearest, ties to even, overflow to infinity, and keep NaN a NaN (quiet,
// with the top payload bits and the sign kept). Fp16ToFp32 is exact for every bit pattern,
// subnormals included. They do not depend on the floating-point environment's flush-to-zero
// mode being off, except Fp16ToFp32 on subnormal halves.
#pragma once

#include <bit>
#include <cstdint>

namespace supercluster::engine::kernels {

inline float Fp16ToFp32(uint16_t half) {
  const uint32_t sign = static_cast<uint32_t>(half & 0x8000u) << 16;
  const uint32_t magnitude = half & 0x7fffu;
  // Put the half's exponent and mantissa where a binary32's go. Read as a float this is the
  // value times 2^-112 (the exponent biases differ by 127 - 15 = 112), subnormals included,
  // so one exact multiplication by 2^112 fixes every finite value. Infinity and NaN (all
  // exponent bits set) keep their mantissa under an all-ones exponent. Written without a
  // branch so that loops over rows vectorise.
  const uint32_t shifted = magnitude << 13;
  const uint32_t finite = std::bit_cast<uint32_t>(std::bit_cast<float>(shifted) * 0x1p112f);
  const uint32_t special = shifted | 0x7f800000u;
  const uint32_t special_mask = 0u - static_cast<uint32_t>(magnitude >= 0x7c00u);
  return std::bit_cast<float>((special & special_mask) | (finite & ~special_mask) | sign);
}

inline uint16_t Fp32ToFp16(float value) {
  uint32_t bits = std::bit_cast<uint32_t>(value);
  const uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000u);
  bits &= 0x7fffffffu;
  if (bits >= 0x7f800000u) {  // infinity or NaN
    if (bits == 0x7f800000u) return sign | 0x7c00u;
    return static_cast<uint16_t>(sign | 0x7e00u | ((bits >> 13) & 0x3ffu));
  }
  if (bits >= 0x477ff000u) return sign | 0x7c00u;  // >= 65520 rounds to infinity
  if (bits < 0x38800000u) {
    // Below the smallest normal half (2^-14): the result is a multiple of 2^-24. Adding 0.5
    // makes the FPU round the value to a multiple of 2^-24 (the float ulp at 0.5), to
    // nearest even; the mantissa bits of the sum are then the half's mantissa.
    const float sum = std::bit_cast<float>(bits) + 0.5f;
    return static_cast<uint16_t>(sign | (std::bit_cast<uint32_t>(sum) - 0x3f000000u));
  }
  // Normal: rebias the exponent (-112 << 23) and round the 13 dropped bits to nearest even
  // by adding 0xfff plus the lowest kept bit; a carry into the exponent is correct rounding.
  const uint32_t lowest_kept_bit = (bits >> 13) & 1u;
  bits += 0xc8000fffu + lowest_kept_bit;
  return static_cast<uint16_t>(sign | (bits >> 13));
}

inline float Bf16ToFp32(uint16_t bf16) {
  return std::bit_cast<float>(static_cast<uint32_t>(bf16) << 16);
}

inline uint16_t Fp32ToBf16(float value) {
  const uint32_t bits = std::bit_cast<uint32_t>(value);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x40u);
  const uint32_t lowest_kept_bit = (bits >> 16) & 1u;
  return static_cast<uint16_t>((bits + 0x7fffu + lowest_kept_bit) >> 16);
}

}  // namespace supercluster::engine::kernels
