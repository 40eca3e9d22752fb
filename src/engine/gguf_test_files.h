// Small GGUF files for the engine's tests (engine_formats_test only, not part of the
// library): a valid file with every metadata value type and a few tensors, built by
// GgufWriter, which hostile tests then damage.
#pragma once

#include <cstring>
#include <string>

#include "engine/gguf_writer.h"

namespace supercluster::engine::testing {

// Tensor "a" holds f32 values 0..31 as float (shape {8, 4}), "b" 32 f16 ones ({32}),
// "c" one q8_0 block of value i - 16 at i with scale 1 ({32}).
inline GgufWriter SampleGgufWriter(uint32_t version = 3) {
  GgufWriter writer(version);
  writer.Add("general.architecture", GgufString("llama"));
  writer.Add("test.u8", GgufUint8(200));
  writer.Add("test.i8", GgufInt8(-100));
  writer.Add("test.u16", GgufUint16(60000));
  writer.Add("test.i16", GgufInt16(-30000));
  writer.Add("test.u32", GgufUint32(4000000000u));
  writer.Add("test.i32", GgufInt32(-2000000000));
  writer.Add("test.f32", GgufFloat32(0.25f));
  writer.Add("test.bool", GgufBool(true));
  writer.Add("test.string", GgufString("h\xc3\xa9llo"));
  writer.Add("test.u64", GgufUint64(1ull << 40));
  writer.Add("test.i64", GgufInt64(-(1ll << 40)));
  writer.Add("test.f64", GgufFloat64(-1.5));
  writer.Add("test.strings", GgufStringArray({"one", "", "three"}));
  writer.Add("test.floats", GgufFloat32Array({1.0f, -2.5f}));
  writer.Add("test.nested", GgufArray(GgufValueType::kArray,
                                      {GgufInt32Array({1, 2, 3}), GgufStringArray({"x"}),
                                       GgufArray(GgufValueType::kUint8, {})}));
  std::string a(32 * 4, '\0');
  for (int i = 0; i < 32; ++i) {
    float value = static_cast<float>(i);
    std::memcpy(a.data() + 4 * i, &value, 4);
  }
  (void)writer.AddTensor("a", TensorType::kF32, {8, 4}, a);
  std::string b;
  for (int i = 0; i < 32; ++i) b += std::string("\x00\x3c", 2);
  (void)writer.AddTensor("b", TensorType::kF16, {32}, b);
  std::string c("\x00\x3c", 2);
  for (int i = 0; i < 32; ++i) c += static_cast<char>(i - 16);
  (void)writer.AddTensor("c", TensorType::kQ8_0, {32}, c);
  return writer;
}

}  // namespace supercluster::engine::testing
