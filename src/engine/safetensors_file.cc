#include "engine/safetensors_file.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <unordered_set>

namespace supercluster::engine {
namespace {

using nlohmann::json;

base::Result<TensorType> DtypeToType(const std::string& dtype) {
  if (dtype == "F32") return TensorType::kF32;
  if (dtype == "F16") return TensorType::kF16;
  if (dtype == "BF16") return TensorType::kBF16;
  return base::InvalidArgument("dtype '" + dtype + "' is not supported (F32, F16 and BF16 are)");
}

std::string Quoted(std::string_view text) { return "'" + std::string(text) + "'"; }

// A SAX pass over a JSON object that stops at the first top-level key seen before: the DOM
// parse keeps only the last of two equal keys, so a tensor named twice lost its first entry
// in silence. (nlohmann's parser callback could see the keys too, but in 3.11 it rescans the
// parent object at each object's end: quadratic in the tensors, 14 minutes for 200,000.)
class RepeatedKeyFinder : public nlohmann::json_sax<json> {
 public:
  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t&) override { return true; }
  bool binary(binary_t&) override { return true; }
  bool start_object(std::size_t) override { return ++depth_, true; }
  bool end_object() override { return --depth_, true; }
  bool start_array(std::size_t) override { return ++depth_, true; }
  bool end_array() override { return --depth_, true; }
  bool key(string_t& key) override {
    if (depth_ != 1 || keys_.insert(key).second) return true;
    repeated = key;
    return false;  // enough
  }
  bool parse_error(std::size_t, const std::string&, const json::exception&) override {
    return false;
  }

  std::optional<std::string> repeated;

 private:
  int depth_ = 0;
  std::unordered_set<std::string> keys_;
};

}  // namespace

base::Result<std::unique_ptr<SafetensorsFile>> SafetensorsFile::Open(const std::string& path) {
  SC_ASSIGN_OR_RETURN(std::unique_ptr<MappedFile> mapping, MappedFile::Open(path));
  std::span<const uint8_t> bytes = mapping->bytes();
  SC_ASSIGN_OR_RETURN(std::unique_ptr<SafetensorsFile> file, Parse(path, bytes));
  file->mapping_ = std::move(mapping);
  return file;
}

base::Result<std::unique_ptr<SafetensorsFile>> SafetensorsFile::Parse(
    std::string name, std::span<const uint8_t> bytes) {
  std::unique_ptr<SafetensorsFile> file(new SafetensorsFile());
  file->name_ = std::move(name);
  file->bytes_ = bytes;
  SC_RETURN_IF_ERROR(file->ParseHeader());
  return file;
}

base::Status SafetensorsFile::ParseHeader() {
  auto error = [&](const std::string& what) { return base::InvalidArgument(name_ + ": " + what); };
  if (bytes_.size() < 8) {
    return base::DataLoss(name_ + ": header length: the file is " + std::to_string(bytes_.size()) +
                          " bytes, too short for the 8-byte header length (truncated?)");
  }
  uint64_t header_bytes = 0;
  for (int i = 7; i >= 0; --i) header_bytes = (header_bytes << 8) | bytes_[i];
  if (header_bytes > kMaxHeaderBytes) {
    return error("header length " + std::to_string(header_bytes) + " is over the limit of " +
                 std::to_string(kMaxHeaderBytes) + " bytes");
  }
  if (header_bytes > bytes_.size() - 8) {
    return base::DataLoss(name_ + ": header length " + std::to_string(header_bytes) +
                          " goes past the end of the file (" + std::to_string(bytes_.size()) +
                          " bytes)");
  }
  std::string_view text(reinterpret_cast<const char*>(bytes_.data() + 8), header_bytes);
  json header = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (header.is_discarded()) return error("header is not valid JSON");
  if (!header.is_object()) return error("header is not a JSON object");
  RepeatedKeyFinder finder;
  json::sax_parse(text, &finder);
  if (finder.repeated) {
    bool metadata = *finder.repeated == "__metadata__";
    return error((metadata ? "" : "tensor ") + Quoted(*finder.repeated) +
                 ": appears twice in the header");
  }
  const uint64_t data_start = 8 + header_bytes;
  const uint64_t data_bytes = bytes_.size() - data_start;

  struct Range {
    uint64_t begin, end;
    size_t tensor;
  };
  std::vector<Range> ranges;
  for (const auto& [key, entry] : header.items()) {
    if (key == "__metadata__") {
      if (!entry.is_object()) return error("'__metadata__' is not an object");
      for (const auto& [meta_key, meta_value] : entry.items()) {
        if (!meta_value.is_string()) {
          return error("'__metadata__' key " + Quoted(meta_key) + " is not a string");
        }
        metadata_[meta_key] = meta_value.get<std::string>();
      }
      continue;
    }
    std::string field = "tensor " + Quoted(key);
    if (!entry.is_object()) return error(field + ": is not an object");
    auto dtype = entry.find("dtype");
    if (dtype == entry.end() || !dtype->is_string()) return error(field + ": 'dtype' missing or not a string");
    base::Result<TensorType> type = DtypeToType(dtype->get<std::string>());
    if (!type.ok()) return error(field + ": " + type.status().message());
    SafetensorsTensor tensor;
    tensor.name = key;
    tensor.type = *type;
    auto shape = entry.find("shape");
    if (shape == entry.end() || !shape->is_array()) return error(field + ": 'shape' missing or not an array");
    if (shape->size() > 8) return error(field + ": 'shape' has " + std::to_string(shape->size()) + " dimensions (at most 8)");
    uint64_t elements = 1;
    for (const json& extent : *shape) {
      if (!extent.is_number_unsigned()) return error(field + ": 'shape' holds a value that is not a non-negative integer");
      uint64_t value = extent.get<uint64_t>();
      if (__builtin_mul_overflow(elements, value, &elements)) return error(field + ": 'shape' element count overflows 64 bits");
      tensor.shape.push_back(value);
    }
    tensor.element_count = elements;
    uint64_t element_bytes = GetTensorTypeInfo(tensor.type).block_bytes;
    if (__builtin_mul_overflow(elements, element_bytes, &tensor.byte_size)) {
      return error(field + ": byte size overflows 64 bits");
    }
    auto offsets = entry.find("data_offsets");
    if (offsets == entry.end() || !offsets->is_array() || offsets->size() != 2 ||
        !(*offsets)[0].is_number_unsigned() || !(*offsets)[1].is_number_unsigned()) {
      return error(field + ": 'data_offsets' must be [begin, end] of non-negative integers");
    }
    uint64_t begin = (*offsets)[0].get<uint64_t>();
    uint64_t end = (*offsets)[1].get<uint64_t>();
    if (begin > end) {
      return error(field + ": 'data_offsets' [" + std::to_string(begin) + ", " +
                   std::to_string(end) + ") ends before it begins");
    }
    if (end > data_bytes) {
      return base::DataLoss(name_ + ": " + field + ": 'data_offsets' [" + std::to_string(begin) +
                            ", " + std::to_string(end) + ") extends past the end of the data (" +
                            std::to_string(data_bytes) + " bytes)");
    }
    if (end - begin != tensor.byte_size) {
      return error(field + ": 'data_offsets' span " + std::to_string(end - begin) +
                   " bytes but the " + dtype->get<std::string>() + " shape needs " +
                   std::to_string(tensor.byte_size));
    }
    tensor.data = bytes_.data() + data_start + begin;
    ranges.push_back({begin, end, tensors_.size()});
    tensors_.push_back(std::move(tensor));
  }
  std::sort(ranges.begin(), ranges.end(),
            [](const Range& a, const Range& b) { return a.begin < b.begin || (a.begin == b.begin && a.end < b.end); });
  for (size_t i = 1; i < ranges.size(); ++i) {
    if (ranges[i].begin < ranges[i - 1].end) {
      return error("tensor " + Quoted(tensors_[ranges[i].tensor].name) + ": 'data_offsets' [" +
                   std::to_string(ranges[i].begin) + ", " + std::to_string(ranges[i].end) +
                   ") overlap tensor " + Quoted(tensors_[ranges[i - 1].tensor].name));
    }
  }
  std::sort(tensors_.begin(), tensors_.end(),
            [](const SafetensorsTensor& a, const SafetensorsTensor& b) { return a.name < b.name; });
  for (size_t i = 0; i < tensors_.size(); ++i) index_.emplace(tensors_[i].name, i);
  return base::Status::Ok();
}

const SafetensorsTensor* SafetensorsFile::FindTensor(std::string_view name) const {
  auto found = index_.find(name);
  return found == index_.end() ? nullptr : &tensors_[found->second];
}

base::Result<std::unique_ptr<SafetensorsModel>> SafetensorsModel::Open(const std::string& path) {
  namespace fs = std::filesystem;
  std::unique_ptr<SafetensorsModel> model(new SafetensorsModel());
  std::error_code ignored;
  fs::path weights = path;
  if (fs::is_directory(weights, ignored)) {
    if (fs::exists(weights / "model.safetensors.index.json", ignored)) {
      weights /= "model.safetensors.index.json";
    } else if (fs::exists(weights / "model.safetensors", ignored)) {
      weights /= "model.safetensors";
    } else {
      return base::NotFound(path + ": holds neither model.safetensors.index.json nor model.safetensors");
    }
  }
  model->directory_ = weights.parent_path().string();
  if (model->directory_.empty()) model->directory_ = ".";
  std::string name = weights.filename().string();
  if (name.size() >= 11 && name.ends_with(".index.json")) {
    SC_RETURN_IF_ERROR(model->OpenIndex(weights.string()));
  } else {
    SC_ASSIGN_OR_RETURN(std::unique_ptr<SafetensorsFile> file, SafetensorsFile::Open(weights.string()));
    model->shards_.push_back(std::move(file));
    SC_RETURN_IF_ERROR(model->IndexTensors());
  }
  fs::path directory = model->directory_;
  if (fs::is_regular_file(directory / "config.json", ignored)) {
    model->config_json_path_ = (directory / "config.json").string();
  }
  if (fs::is_regular_file(directory / "tokenizer.json", ignored)) {
    model->tokenizer_json_path_ = (directory / "tokenizer.json").string();
  }
  return model;
}

base::Status SafetensorsModel::OpenIndex(const std::string& index_path) {
  std::ifstream in(index_path, std::ios::binary);
  if (!in) return base::NotFound(index_path + ": cannot open");
  std::stringstream text;
  text << in.rdbuf();
  json index = json::parse(text.str(), nullptr, false);
  if (index.is_discarded() || !index.is_object()) {
    return base::InvalidArgument(index_path + ": not a JSON object");
  }
  auto weight_map = index.find("weight_map");
  if (weight_map == index.end() || !weight_map->is_object() || weight_map->empty()) {
    return base::InvalidArgument(index_path + ": 'weight_map' missing, empty or not an object");
  }
  std::map<std::string, size_t> shard_of_file;
  std::vector<std::pair<std::string, size_t>> wanted;  // tensor, shard
  for (const auto& [tensor, file] : weight_map->items()) {
    if (!file.is_string()) {
      return base::InvalidArgument(index_path + ": 'weight_map' entry '" + tensor + "' is not a file name");
    }
    std::string shard = file.get<std::string>();
    // Shards live beside the index: a path elsewhere is refused rather than followed.
    if (shard.empty() || shard.find('/') != std::string::npos || shard == "." || shard == "..") {
      return base::InvalidArgument(index_path + ": 'weight_map' entry '" + tensor +
                                   "' names '" + shard + "', not a file beside the index");
    }
    auto [at, added] = shard_of_file.emplace(shard, shards_.size());
    if (added) {
      SC_ASSIGN_OR_RETURN(std::unique_ptr<SafetensorsFile> opened,
                          SafetensorsFile::Open(directory_ + "/" + shard));
      shards_.push_back(std::move(opened));
    }
    wanted.emplace_back(tensor, at->second);
  }
  for (const auto& [tensor, shard] : wanted) {
    if (shards_[shard]->FindTensor(tensor) == nullptr) {
      return base::InvalidArgument(index_path + ": 'weight_map' puts tensor '" + tensor + "' in " +
                                   shards_[shard]->name() + ", which does not hold it");
    }
  }
  return IndexTensors();
}

base::Status SafetensorsModel::IndexTensors() {
  for (const auto& shard : shards_) {
    for (const SafetensorsTensor& tensor : shard->tensors()) {
      if (!index_.emplace(tensor.name, &tensor).second) {
        return base::InvalidArgument(shard->name() + ": tensor '" + tensor.name +
                                     "' is also in another shard");
      }
      tensors_.push_back(&tensor);
    }
  }
  std::sort(tensors_.begin(), tensors_.end(),
            [](const SafetensorsTensor* a, const SafetensorsTensor* b) { return a->name < b->name; });
  return base::Status::Ok();
}

const SafetensorsTensor* SafetensorsModel::FindTensor(std::string_view name) const {
  auto found = index_.find(name);
  return found == index_.end() ? nullptr : found->second;
}

uint64_t SafetensorsModel::total_file_bytes() const {
  uint64_t total = 0;
  for (const auto& shard : shards_) total += shard->file_size();
  return total;
}

}  // namespace supercluster::engine
