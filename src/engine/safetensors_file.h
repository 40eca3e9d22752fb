// Reader of Hugging Face safetensors files, single and sharded. Used by ModelFile
// (engine/model_file.h) for models downloaded from the Hub as *.safetensors.
//
// Format: u64 little-endian header length N, N bytes of JSON
// {"name": {"dtype": "F16", "shape": [rows, cols], "data_offsets": [begin, end]}, ...,
//  "__metadata__": {"key": "value"}}, then the data; offsets count from the byte after the
// header. Shapes are row-major as in PyTorch (the last dimension is contiguous).
//
// Only F32, F16 and BF16 tensors are accepted; anything else is refused naming the tensor.
// Every length and offset is checked; errors name the file and the tensor or field. Tensor
// pointers point into the mapping, are not necessarily aligned, and live as long as the
// SafetensorsFile.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/status.h"
#include "engine/mapped_file.h"
#include "engine/tensor_type.h"

namespace supercluster::engine {

struct SafetensorsTensor {
  std::string name;
  TensorType type;              // kF32, kF16 or kBF16
  std::vector<uint64_t> shape;  // row-major, as in the file
  uint64_t byte_size = 0;
  uint64_t element_count = 0;
  const uint8_t* data = nullptr;
};

class SafetensorsFile {
 public:
  static constexpr uint64_t kMaxHeaderBytes = 100 << 20;  // as the reference implementation

  static base::Result<std::unique_ptr<SafetensorsFile>> Open(const std::string& path);
  // Parses `bytes`, which must outlive the result; `name` starts every error message.
  static base::Result<std::unique_ptr<SafetensorsFile>> Parse(std::string name,
                                                              std::span<const uint8_t> bytes);

  const std::string& name() const { return name_; }
  uint64_t file_size() const { return bytes_.size(); }
  const std::vector<SafetensorsTensor>& tensors() const { return tensors_; }  // sorted by name
  const SafetensorsTensor* FindTensor(std::string_view name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  SafetensorsFile() = default;
  base::Status ParseHeader();

  std::string name_;
  std::unique_ptr<MappedFile> mapping_;
  std::span<const uint8_t> bytes_;
  std::vector<SafetensorsTensor> tensors_;
  std::unordered_map<std::string_view, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

// A model as Hugging Face stores it: one model.safetensors, or shards listed by
// model.safetensors.index.json ({"weight_map": {tensor: shard file}}), with config.json
// and tokenizer.json beside them.
class SafetensorsModel {
 public:
  // `path`: a .safetensors file, an *.index.json, or a directory holding either
  // (the index is preferred).
  static base::Result<std::unique_ptr<SafetensorsModel>> Open(const std::string& path);

  const std::vector<std::unique_ptr<SafetensorsFile>>& shards() const { return shards_; }
  // Every tensor of every shard, in name order.
  const std::vector<const SafetensorsTensor*>& tensors() const { return tensors_; }
  const SafetensorsTensor* FindTensor(std::string_view name) const;
  uint64_t total_file_bytes() const;
  const std::string& directory() const { return directory_; }
  // Paths of config.json and tokenizer.json beside the weights; empty when absent.
  const std::string& config_json_path() const { return config_json_path_; }
  const std::string& tokenizer_json_path() const { return tokenizer_json_path_; }

 private:
  SafetensorsModel() = default;
  base::Status OpenIndex(const std::string& index_path);
  base::Status IndexTensors();

  std::string directory_;
  std::vector<std::unique_ptr<SafetensorsFile>> shards_;
  std::vector<const SafetensorsTensor*> tensors_;
  std::unordered_map<std::string_view, const SafetensorsTensor*> index_;
  std::string config_json_path_;
  std::string tokenizer_json_path_;
};

}  // namespace supercluster::engine
