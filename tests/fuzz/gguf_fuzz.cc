// libFuzzer target for the GGUF reader (engine/gguf_file.h).
// Built by tests/fuzz/CMakeLists.txt (SUPERCLUSTER_FUZZ=ON), run by tests/fuzz/run.sh; the
// seeds in corpus/gguf/ were written by engine::GgufWriter.
//
// Input: the file's bytes. Checks besides "no crash, no leak, no UB":
//   - on success every tensor's data lies inside the input and tensors do not overlap;
//   - every metadata value can be walked (nested arrays included) and every typed getter
//     answers (a value or an error) for every key.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>

#include "engine/gguf_file.h"

namespace {

using supercluster::engine::GgufFile;
using supercluster::engine::GgufValue;
using supercluster::engine::GgufValueType;

[[noreturn]] void Fail(const char* what) {
  std::fprintf(stderr, "gguf_fuzz: %s\n", what);
  std::abort();
}

uint64_t Walk(const GgufValue& value) {
  if (value.type() == GgufValueType::kString) return value.as_string().size();
  if (value.type() != GgufValueType::kArray) return value.as_uint64();
  uint64_t sum = value.size();
  for (uint64_t i = 0; i < value.size(); ++i) sum += Walk(value.at(i));
  return sum;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto file = GgufFile::Parse("fuzz.gguf", {data, size});
  if (!file.ok()) {
    if (file.status().message().rfind("fuzz.gguf: ", 0) != 0) Fail("error does not name the file");
    return 0;
  }
  const GgufFile& f = **file;
  volatile uint64_t sink = 0;
  for (const auto& [key, value] : f.metadata()) {
    sink = sink + Walk(value);
    (void)f.GetString(key);
    (void)f.GetUint32(key);
    (void)f.GetInt32(key);
    (void)f.GetFloat32(key);
    (void)f.GetBool(key);
    (void)f.GetStringArray(key);
    (void)f.GetFloat32Array(key);
    (void)f.GetInt32Array(key);
  }
  for (const auto& tensor : f.tensors()) {
    if (tensor.data < data || tensor.byte_size > size ||
        tensor.data + tensor.byte_size > data + size) {
      Fail("tensor data outside the input");
    }
    if (tensor.byte_size > 0) sink = sink + tensor.data[0] + tensor.data[tensor.byte_size - 1];
    if (f.FindTensor(tensor.name) != &tensor) Fail("FindTensor disagrees with tensors()");
  }
  return 0;
}
