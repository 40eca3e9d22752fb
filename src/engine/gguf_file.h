// Reader of GGUF model files (the llama.cpp ecosystem's format), versions 2 and 3,
// little-endian. Used by ModelFile (engine/model_file.h), the tokenizer (which reads its
// vocabulary from tokenizer.* metadata) and `supercluster model info`.
//
// Layout (ggml docs/gguf.md): "GGUF", u32 version, u64 tensor count, u64 key count, the
// key/value pairs, the tensor infos (name, dims, type, offset), padding to the alignment
// (general.alignment, default 32), then tensor data, each tensor at its offset from the
// aligned start of the data section.
//
// Parse() checks every count, size and offset against the file before using it; any
// inconsistency is an error naming the file and the field, never a crash. Metadata and
// tensor data are not copied: strings, arrays and tensor pointers point into the bytes given
// to Parse() (or the mapping Open() made), which must outlive the GgufFile.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "base/status.h"
#include "engine/mapped_file.h"
#include "engine/tensor_type.h"

namespace supercluster::engine {

enum class GgufValueType : uint32_t {
  kUint8 = 0, kInt8 = 1, kUint16 = 2, kInt16 = 3, kUint32 = 4, kInt32 = 5, kFloat32 = 6,
  kBool = 7, kString = 8, kArray = 9, kUint64 = 10, kInt64 = 11, kFloat64 = 12,
};
const char* GgufValueTypeName(GgufValueType type);
// Bytes of a fixed-size value type; 0 for string and array.
uint32_t GgufValueTypeSize(GgufValueType type);

// One metadata value: a scalar, a string, or an array (of scalars, strings or arrays).
class GgufValue {
 public:
  GgufValueType type() const { return type_; }
  bool IsInteger() const;
  bool IsFloat() const { return type_ == GgufValueType::kFloat32 || type_ == GgufValueType::kFloat64; }

  // Scalars, converted where exact: integers to int64/uint64 (fails if out of range for
  // the target), floats to double. Preconditions: IsInteger() / IsFloat() / kBool / kString.
  bool integer_is_negative() const;
  uint64_t as_uint64() const { return bits_; }  // for an unsigned or non-negative integer
  int64_t as_int64() const { return static_cast<int64_t>(bits_); }  // for signed types
  double as_double() const;
  bool as_bool() const { return bits_ != 0; }
  std::string_view as_string() const { return string_; }

  // Arrays. Precondition: type() == kArray.
  GgufValueType element_type() const { return element_type_; }
  uint64_t size() const { return count_; }
  // The element at `index` (< size()) as a value; for numeric arrays it is decoded from
  // the raw bytes, for string and nested arrays it is the stored element.
  GgufValue at(uint64_t index) const;
  // Little-endian bytes of a numeric or bool array (size() * GgufValueTypeSize).
  std::span<const uint8_t> raw_elements() const { return raw_; }

 private:
  friend class GgufParser;
  GgufValueType type_ = GgufValueType::kUint8;
  uint64_t bits_ = 0;  // scalar: the value's bits, sign-extended for signed integers
  std::string_view string_;
  GgufValueType element_type_ = GgufValueType::kUint8;
  uint64_t count_ = 0;
  std::span<const uint8_t> raw_;
  std::vector<std::string_view> strings_;
  std::vector<GgufValue> arrays_;
};

struct GgufTensorInfo {
  std::string_view name;
  TensorType type;
  std::vector<uint64_t> shape;  // innermost first: shape[0] values are contiguous
  uint64_t offset = 0;          // from the start of the data section
  uint64_t byte_size = 0;
  uint64_t element_count = 0;
  const uint8_t* data = nullptr;  // into the file
};

class GgufFile {
 public:
  // Maps and parses `path`.
  static base::Result<std::unique_ptr<GgufFile>> Open(const std::string& path);
  // Parses `bytes`, which must outlive the result; `name` starts every error message.
  static base::Result<std::unique_ptr<GgufFile>> Parse(std::string name,
                                                       std::span<const uint8_t> bytes);

  const std::string& name() const { return name_; }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t file_size() const { return bytes_.size(); }
  uint64_t data_section_offset() const { return data_offset_; }  // from the file start

  // Metadata in file order, and lookup by key (nullptr if absent).
  const std::vector<std::pair<std::string_view, GgufValue>>& metadata() const { return kv_; }
  const GgufValue* Find(std::string_view key) const;

  // Typed getters: kNotFound naming the key when absent; kInvalidArgument naming the key
  // and the stored type when the value has another type or does not fit.
  base::Result<std::string> GetString(std::string_view key) const;
  base::Result<uint32_t> GetUint32(std::string_view key) const;  // any integer type that fits
  base::Result<uint64_t> GetUint64(std::string_view key) const;
  base::Result<int32_t> GetInt32(std::string_view key) const;
  base::Result<float> GetFloat32(std::string_view key) const;  // f32 or f64
  base::Result<bool> GetBool(std::string_view key) const;
  base::Result<const GgufValue*> GetArray(std::string_view key) const;  // any element type
  base::Result<std::vector<std::string_view>> GetStringArray(std::string_view key) const;
  base::Result<std::vector<float>> GetFloat32Array(std::string_view key) const;
  base::Result<std::vector<int32_t>> GetInt32Array(std::string_view key) const;

  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  const GgufTensorInfo* FindTensor(std::string_view name) const;

 private:
  friend class GgufParser;
  GgufFile() = default;
  base::Status KeyError(std::string_view key, const GgufValue& value, const char* wanted) const;

  std::string name_;
  std::unique_ptr<MappedFile> mapping_;  // set by Open(); bytes_ points into it
  std::span<const uint8_t> bytes_;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::vector<std::pair<std::string_view, GgufValue>> kv_;
  std::unordered_map<std::string_view, size_t> key_index_;
  std::vector<GgufTensorInfo> tensors_;
  std::unordered_map<std::string_view, size_t> tensor_index_;
};

}  // namespace supercluster::engine
