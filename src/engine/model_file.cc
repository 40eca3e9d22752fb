#include "engine/model_file.h"

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "engine/gguf_file.h"
#include "engine/safetensors_file.h"

namespace supercluster::engine {
namespace {

using nlohmann::json;

// Shortest text that reads back as `value` ("1e-05", "nan", "-inf").
std::string FormatFloat(float value) {
  char buffer[32];
  auto [end, error] = std::to_chars(buffer, buffer + sizeof(buffer), value);
  return error == std::errc() ? std::string(buffer, end) : std::to_string(value);
}

bool StartsWithGgufMagic(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char magic[4] = {};
  return in.read(magic, 4) && std::memcmp(magic, "GGUF", 4) == 0;
}

// Reads an optional metadata key into `out`; absent keeps the default.
template <typename T, typename Getter>
base::Status Optional(const GgufFile& file, const std::string& key, Getter get, T& out) {
  if (file.Find(key) == nullptr) return base::Status::Ok();
  SC_ASSIGN_OR_RETURN(out, (file.*get)(key));
  return base::Status::Ok();
}

base::Result<uint32_t> JsonUint32(const std::string& name, const json& config, const char* key) {
  auto found = config.find(key);
  if (found == config.end() || found->is_null()) {
    return base::InvalidArgument(name + ": required key '" + key + "' is missing");
  }
  if (!found->is_number_unsigned() || found->get<uint64_t>() > UINT32_MAX) {
    return base::InvalidArgument(name + ": key '" + key + "' is not an unsigned 32-bit integer");
  }
  return found->get<uint32_t>();
}

base::Result<float> JsonFloat(const std::string& name, const json& config, const char* key) {
  auto found = config.find(key);
  if (found == config.end() || found->is_null()) {
    return base::InvalidArgument(name + ": required key '" + key + "' is missing");
  }
  if (!found->is_number()) return base::InvalidArgument(name + ": key '" + key + "' is not a number");
  return found->get<float>();
}

}  // namespace

base::Result<ModelHyperParameters> ParseLlamaConfigJson(const std::string& name,
                                                        std::string_view text) {
  json config = json::parse(text, nullptr, false);
  if (config.is_discarded() || !config.is_object()) {
    return base::InvalidArgument(name + ": not a JSON object");
  }
  ModelHyperParameters hyper;
  auto model_type = config.find("model_type");
  if (model_type == config.end() || !model_type->is_string()) {
    return base::InvalidArgument(name + ": required key 'model_type' is missing or not a string");
  }
  hyper.architecture = model_type->get<std::string>();
  SC_ASSIGN_OR_RETURN(hyper.embedding_length, JsonUint32(name, config, "hidden_size"));
  SC_ASSIGN_OR_RETURN(hyper.block_count, JsonUint32(name, config, "num_hidden_layers"));
  SC_ASSIGN_OR_RETURN(hyper.head_count, JsonUint32(name, config, "num_attention_heads"));
  SC_ASSIGN_OR_RETURN(hyper.feed_forward_length, JsonUint32(name, config, "intermediate_size"));
  SC_ASSIGN_OR_RETURN(hyper.vocab_size, JsonUint32(name, config, "vocab_size"));
  SC_ASSIGN_OR_RETURN(hyper.context_length, JsonUint32(name, config, "max_position_embeddings"));
  SC_ASSIGN_OR_RETURN(hyper.rms_norm_epsilon, JsonFloat(name, config, "rms_norm_eps"));
  hyper.head_count_kv = hyper.head_count;
  if (config.contains("num_key_value_heads") && !config["num_key_value_heads"].is_null()) {
    SC_ASSIGN_OR_RETURN(hyper.head_count_kv, JsonUint32(name, config, "num_key_value_heads"));
  }
  if (config.contains("rope_theta")) {
    SC_ASSIGN_OR_RETURN(hyper.rope_freq_base, JsonFloat(name, config, "rope_theta"));
  }
  if (config.contains("head_dim") && !config["head_dim"].is_null()) {
    SC_ASSIGN_OR_RETURN(hyper.rope_dimension_count, JsonUint32(name, config, "head_dim"));
  }
  if (auto tie = config.find("tie_word_embeddings"); tie != config.end()) {
    if (!tie->is_boolean()) return base::InvalidArgument(name + ": key 'tie_word_embeddings' is not a boolean");
    hyper.tie_word_embeddings = tie->get<bool>();
  }
  if (auto scaling = config.find("rope_scaling"); scaling != config.end() && !scaling->is_null()) {
    if (!scaling->is_object()) return base::InvalidArgument(name + ": key 'rope_scaling' is not an object");
    auto type = scaling->find("rope_type");
    if (type == scaling->end()) type = scaling->find("type");
    if (type == scaling->end() || !type->is_string()) {
      return base::InvalidArgument(name + ": key 'rope_scaling' has no string 'rope_type' or 'type'");
    }
    hyper.rope_scaling_type = type->get<std::string>();
    if (scaling->contains("factor")) {
      SC_ASSIGN_OR_RETURN(hyper.rope_scaling_factor, JsonFloat(name + ": rope_scaling", *scaling, "factor"));
    }
    if (scaling->contains("original_max_position_embeddings")) {
      SC_ASSIGN_OR_RETURN(hyper.rope_scaling_original_context_length,
                          JsonUint32(name + ": rope_scaling", *scaling, "original_max_position_embeddings"));
    }
  }
  return hyper;
}

ModelFile::~ModelFile() = default;

base::Result<std::unique_ptr<ModelFile>> ModelFile::Open(const std::string& path) {
  std::unique_ptr<ModelFile> model(new ModelFile());
  model->path_ = path;
  std::error_code ignored;
  if (!std::filesystem::exists(path, ignored)) return base::NotFound(path + ": no such file or directory");
  if (!std::filesystem::is_directory(path, ignored) && StartsWithGgufMagic(path)) {
    model->format_ = Format::kGguf;
    SC_RETURN_IF_ERROR(model->LoadGguf());
  } else if (std::filesystem::is_directory(path, ignored) || path.ends_with(".safetensors") ||
             path.ends_with(".index.json")) {
    model->format_ = Format::kSafetensors;
    SC_RETURN_IF_ERROR(model->LoadSafetensors());
  } else {
    return base::InvalidArgument(path + ": neither a GGUF file (no 'GGUF' magic) nor a .safetensors "
                                 "file, index or directory");
  }
  for (size_t i = 0; i < model->tensors_.size(); ++i) model->index_.emplace(model->tensors_[i].name, i);
  SC_RETURN_IF_ERROR(model->CheckHyperParameters());
  ModelHyperParameters& hyper = model->hyper_;
  if (hyper.rope_dimension_count == 0) hyper.rope_dimension_count = hyper.embedding_length / hyper.head_count;
  return model;
}

base::Status ModelFile::LoadGguf() {
  SC_ASSIGN_OR_RETURN(gguf_, GgufFile::Open(path_));
  const GgufFile& file = *gguf_;
  SC_ASSIGN_OR_RETURN(hyper_.architecture, file.GetString("general.architecture"));
  const std::string arch = hyper_.architecture + ".";
  SC_ASSIGN_OR_RETURN(hyper_.context_length, file.GetUint32(arch + "context_length"));
  SC_ASSIGN_OR_RETURN(hyper_.embedding_length, file.GetUint32(arch + "embedding_length"));
  SC_ASSIGN_OR_RETURN(hyper_.block_count, file.GetUint32(arch + "block_count"));
  SC_ASSIGN_OR_RETURN(hyper_.feed_forward_length, file.GetUint32(arch + "feed_forward_length"));
  SC_ASSIGN_OR_RETURN(hyper_.head_count, file.GetUint32(arch + "attention.head_count"));
  SC_ASSIGN_OR_RETURN(hyper_.rms_norm_epsilon, file.GetFloat32(arch + "attention.layer_norm_rms_epsilon"));
  hyper_.head_count_kv = hyper_.head_count;
  SC_RETURN_IF_ERROR(Optional(file, arch + "attention.head_count_kv", &GgufFile::GetUint32, hyper_.head_count_kv));
  SC_RETURN_IF_ERROR(Optional(file, arch + "rope.freq_base", &GgufFile::GetFloat32, hyper_.rope_freq_base));
  SC_RETURN_IF_ERROR(Optional(file, arch + "rope.dimension_count", &GgufFile::GetUint32, hyper_.rope_dimension_count));
  SC_RETURN_IF_ERROR(Optional(file, arch + "rope.scaling.type", &GgufFile::GetString, hyper_.rope_scaling_type));
  SC_RETURN_IF_ERROR(Optional(file, arch + "rope.scaling.factor", &GgufFile::GetFloat32, hyper_.rope_scaling_factor));
  SC_RETURN_IF_ERROR(Optional(file, arch + "rope.scaling.original_context_length", &GgufFile::GetUint32,
                              hyper_.rope_scaling_original_context_length));
  if (hyper_.rope_scaling_type == "none") hyper_.rope_scaling_type.clear();
  if (file.Find(arch + "vocab_size") != nullptr) {
    SC_ASSIGN_OR_RETURN(hyper_.vocab_size, file.GetUint32(arch + "vocab_size"));
  } else if (const GgufValue* tokens = file.Find("tokenizer.ggml.tokens");
             tokens != nullptr && tokens->type() == GgufValueType::kArray) {
    hyper_.vocab_size = static_cast<uint32_t>(std::min<uint64_t>(tokens->size(), UINT32_MAX));
  } else if (const GgufTensorInfo* embedding = file.FindTensor("token_embd.weight");
             embedding != nullptr && embedding->shape.size() == 2) {
    hyper_.vocab_size = static_cast<uint32_t>(std::min<uint64_t>(embedding->shape[1], UINT32_MAX));
  }
  hyper_.tie_word_embeddings = file.FindTensor("output.weight") == nullptr;
  for (const GgufTensorInfo& info : file.tensors()) {
    tensors_.push_back({std::string(info.name), info.type, info.shape, info.element_count,
                        info.byte_size, info.data});
  }
  return base::Status::Ok();
}

base::Status ModelFile::LoadSafetensors() {
  SC_ASSIGN_OR_RETURN(safetensors_, SafetensorsModel::Open(path_));
  const std::string& config_path = safetensors_->config_json_path();
  if (config_path.empty()) {
    return base::NotFound(path_ + ": no config.json beside the safetensors weights (in " +
                          safetensors_->directory() + "); it holds the hyper-parameters");
  }
  std::ifstream in(config_path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  SC_ASSIGN_OR_RETURN(hyper_, ParseLlamaConfigJson(config_path, text.str()));
  for (const SafetensorsTensor* tensor : safetensors_->tensors()) {
    std::vector<uint64_t> shape(tensor->shape.rbegin(), tensor->shape.rend());
    tensors_.push_back({tensor->name, tensor->type, std::move(shape), tensor->element_count,
                        tensor->byte_size, tensor->data});
  }
  return base::Status::Ok();
}

base::Status ModelFile::CheckHyperParameters() const {
  const ModelHyperParameters& h = hyper_;
  auto bad = [&](const std::string& what) { return base::InvalidArgument(path_ + ": " + what); };
  if (h.embedding_length == 0 || h.block_count == 0 || h.head_count == 0 || h.context_length == 0 ||
      h.feed_forward_length == 0) {
    return bad("hyper-parameters: embedding length, layers, heads, context and feed-forward length must all be non-zero");
  }
  if (h.head_count_kv == 0 || h.head_count % h.head_count_kv != 0) {
    return bad("hyper-parameters: attention head count " + std::to_string(h.head_count) +
               " is not a multiple of the key/value head count " + std::to_string(h.head_count_kv));
  }
  if (h.rope_dimension_count == 0 && h.embedding_length % h.head_count != 0) {
    return bad("hyper-parameters: embedding length " + std::to_string(h.embedding_length) +
               " is not a multiple of the head count " + std::to_string(h.head_count));
  }
  // Token positions are int32 in the engine (the KV cache, the forward pass): a longer
  // context wrapped negative there and every prompt was refused as too long.
  if (h.context_length > static_cast<uint32_t>(INT32_MAX)) {
    return bad(Key("context_length", "max_position_embeddings") + " is " +
               std::to_string(h.context_length) + ", over the " + std::to_string(INT32_MAX) +
               " tokens of context the engine can count");
  }
  // The rotary part of each head: pairs of dimensions, at most the head's. Checked here in
  // the file's own unsigned numbers: cast to int in the backend, 2^31 went negative, passed
  // its check and aborted generation (std::length_error).
  if (h.rope_dimension_count != 0 && h.embedding_length % h.head_count == 0 &&
      (h.rope_dimension_count > h.embedding_length / h.head_count ||
       h.rope_dimension_count % 2 != 0)) {
    return bad(Key("rope.dimension_count", "head_dim") + " is " +
               std::to_string(h.rope_dimension_count) +
               "; want an even number up to the head dimension " +
               std::to_string(h.embedding_length / h.head_count));
  }
  // These two only enter arithmetic: a NaN, an infinity or the wrong sign gave garbage text,
  // not an error. An epsilon of 0 is plain RMS normalization.
  if (!std::isfinite(h.rms_norm_epsilon) || h.rms_norm_epsilon < 0) {
    return bad(Key("attention.layer_norm_rms_epsilon", "rms_norm_eps") + " is " +
               FormatFloat(h.rms_norm_epsilon) + "; want a finite number >= 0");
  }
  if (!std::isfinite(h.rope_freq_base) || h.rope_freq_base <= 0) {
    return bad(Key("rope.freq_base", "rope_theta") + " is " + FormatFloat(h.rope_freq_base) +
               "; want a finite number > 0");
  }
  return base::Status::Ok();
}

std::string ModelFile::Key(const char* gguf_key, const char* config_key) const {
  if (format_ == Format::kGguf) {
    return "metadata key '" + hyper_.architecture + "." + gguf_key + "'";
  }
  return "config.json key '" + std::string(config_key) + "'";
}

const ModelTensor* ModelFile::FindTensor(std::string_view name) const {
  auto found = index_.find(name);
  return found == index_.end() ? nullptr : &tensors_[found->second];
}

uint64_t ModelFile::parameter_count() const {
  uint64_t total = 0;
  for (const ModelTensor& tensor : tensors_) total += tensor.element_count;
  return total;
}

uint64_t ModelFile::file_bytes() const {
  return gguf_ ? gguf_->file_size() : safetensors_->total_file_bytes();
}

std::string ModelFile::tokenizer_json_path() const {
  return safetensors_ ? safetensors_->tokenizer_json_path() : std::string();
}

}  // namespace supercluster::engine
