// Writes GGUF files (version 3 by default, or 2): metadata of every value type and tensors
// whose bytes come from memory or from a callback, so that multi-gigabyte synthetic models
// stream to disk. Used by the model synthesizer (engine/model_synth.h) and by tests, which
// also use it to build hostile files: the writer lays out what it is told (raw type ids,
// explicit offsets, any shape) and checks nothing, so keep validation in the reader.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "engine/gguf_file.h"
#include "engine/tensor_type.h"

namespace supercluster::engine {

// An encoded metadata value: its type tag and the bytes that follow the tag in the file.
struct GgufEncodedValue {
  GgufValueType type;
  std::string payload;
};
GgufEncodedValue GgufUint8(uint8_t value);
GgufEncodedValue GgufInt8(int8_t value);
GgufEncodedValue GgufUint16(uint16_t value);
GgufEncodedValue GgufInt16(int16_t value);
GgufEncodedValue GgufUint32(uint32_t value);
GgufEncodedValue GgufInt32(int32_t value);
GgufEncodedValue GgufUint64(uint64_t value);
GgufEncodedValue GgufInt64(int64_t value);
GgufEncodedValue GgufFloat32(float value);
GgufEncodedValue GgufFloat64(double value);
GgufEncodedValue GgufBool(bool value);
GgufEncodedValue GgufString(std::string_view value);
// Precondition: every element has type `element_type`.
GgufEncodedValue GgufArray(GgufValueType element_type,
                           const std::vector<GgufEncodedValue>& elements);
GgufEncodedValue GgufStringArray(const std::vector<std::string>& values);
GgufEncodedValue GgufFloat32Array(const std::vector<float>& values);
GgufEncodedValue GgufInt32Array(const std::vector<int32_t>& values);

class GgufWriter {
 public:
  // Fills `out` (byte_size bytes) with a tensor's data.
  using TensorFiller = std::function<base::Status(uint8_t* out, uint64_t byte_size)>;

  struct Tensor {
    std::string name;
    uint32_t type_id = 0;          // a TensorType, or any id for hostile files
    std::vector<uint64_t> shape;   // innermost first
    uint64_t byte_size = 0;        // bytes written for it
    std::optional<uint64_t> offset;  // default: after the previous tensor, aligned
    std::string bytes;             // used when filler is empty
    TensorFiller filler;
  };

  explicit GgufWriter(uint32_t version = 3) : version_(version) {}

  // Alignment of tensor data; also written as general.alignment when not 32.
  void SetAlignment(uint32_t alignment) { alignment_ = alignment; }
  void Add(std::string key, GgufEncodedValue value);
  // A tensor of a known type whose byte size is computed from the shape. Fails on a
  // shape the type cannot have.
  base::Status AddTensor(std::string name, TensorType type, std::vector<uint64_t> shape,
                         std::string bytes);
  base::Status AddTensor(std::string name, TensorType type, std::vector<uint64_t> shape,
                         TensorFiller filler);
  // Anything goes (for hostile files).
  void AddRawTensor(Tensor tensor) { tensors_.push_back(std::move(tensor)); }

  // The whole file in memory (small files, tests).
  base::Result<std::string> Serialize() const;
  // Streams the file to `path` (via a temporary name, renamed at the end). `progress` is
  // called after each tensor with the bytes written so far and the total.
  base::Status WriteFile(const std::string& path,
                         const std::function<void(uint64_t done, uint64_t total)>& progress = {}) const;

 private:
  // The header, metadata and tensor infos padded to the alignment, and each tensor's
  // offset in the data section.
  std::string EncodeHeader(std::vector<uint64_t>& offsets, uint64_t& data_bytes) const;

  uint32_t version_;
  uint32_t alignment_ = 32;
  std::vector<std::pair<std::string, GgufEncodedValue>> metadata_;
  std::vector<Tensor> tensors_;
};

}  // namespace supercluster::engine
