// libFuzzer target for the safetensors reader (engine/safetensors_file.h).
// Built by tests/fuzz/CMakeLists.txt (SUPERCLUSTER_FUZZ=ON), run by tests/fuzz/run.sh; the
// seeds in corpus/safetensors/ were written byte by byte from the format's README.
//
// Input: the file's bytes. Checks besides "no crash, no leak, no UB": on success every
// tensor's data lies inside the input, its size matches its dtype and shape, and tensors do
// not overlap.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "engine/safetensors_file.h"

namespace {

[[noreturn]] void Fail(const char* what) {
  std::fprintf(stderr, "safetensors_fuzz: %s\n", what);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using supercluster::engine::GetTensorTypeInfo;
  auto file = supercluster::engine::SafetensorsFile::Parse("fuzz.safetensors", {data, size});
  if (!file.ok()) {
    if (file.status().message().rfind("fuzz.safetensors: ", 0) != 0) Fail("error does not name the file");
    return 0;
  }
  std::vector<std::pair<const uint8_t*, const uint8_t*>> ranges;
  volatile uint8_t sink = 0;
  for (const auto& tensor : (*file)->tensors()) {
    if (tensor.data < data || tensor.byte_size > size || tensor.data + tensor.byte_size > data + size) {
      Fail("tensor data outside the input");
    }
    if (tensor.byte_size != tensor.element_count * GetTensorTypeInfo(tensor.type).block_bytes) {
      Fail("byte size does not match the shape");
    }
    if (tensor.byte_size > 0) {
      sink = sink + tensor.data[0] + tensor.data[tensor.byte_size - 1];
      ranges.emplace_back(tensor.data, tensor.data + tensor.byte_size);
    }
  }
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i) {
    if (ranges[i].first < ranges[i - 1].second) Fail("tensors overlap");
  }
  return 0;
}
