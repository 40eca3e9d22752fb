// A model file seen independently of its format: the architecture's hyper-parameters and a
// table of tensors pointing into the mapped file(s). What the forward pass, the tokenizer
// glue and `supercluster model info` use; they never parse GGUF or safetensors themselves.
//
// GGUF: hyper-parameters from the "<arch>.*" metadata keys. safetensors: from config.json
// beside the weights (Hugging Face names). Tensor names are kept as the file has them
// (GGUF "blk.0.attn_q.weight", Hugging Face "model.layers.0.self_attn.q_proj.weight");
// shapes are normalized to innermost-first (GGUF order: shape[0] values are contiguous),
// so a Hugging Face [out, in] weight appears as {in, out}.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/status.h"
#include "engine/tensor_type.h"

namespace supercluster::engine {

class GgufFile;
class SafetensorsModel;

struct ModelHyperParameters {
  std::string architecture;  // "llama"
  uint32_t context_length = 0;
  uint32_t embedding_length = 0;     // model dimension
  uint32_t block_count = 0;          // layers
  uint32_t feed_forward_length = 0;
  uint32_t head_count = 0;
  uint32_t head_count_kv = 0;        // = head_count when the file does not say
  uint32_t vocab_size = 0;
  uint32_t rope_dimension_count = 0; // = embedding_length / head_count when absent
  float rope_freq_base = 10000.0f;
  float rms_norm_epsilon = 1e-5f;
  std::string rope_scaling_type;     // "" (none), "linear", "yarn", "llama3", ...
  float rope_scaling_factor = 1.0f;
  uint32_t rope_scaling_original_context_length = 0;
  bool tie_word_embeddings = false;  // output projection shares the token embedding
};

struct ModelTensor {
  std::string name;
  TensorType type;
  std::vector<uint64_t> shape;  // innermost first
  uint64_t element_count = 0;
  uint64_t byte_size = 0;
  const uint8_t* data = nullptr;  // into the mapping; not necessarily aligned for safetensors
};

class ModelFile {
 public:
  enum class Format { kGguf, kSafetensors };

  // Opens a .gguf file, a .safetensors file, a model.safetensors.index.json, or a directory
  // holding safetensors weights and config.json. The format is chosen by content for files
  // (the GGUF magic) and by name for directories and index files.
  static base::Result<std::unique_ptr<ModelFile>> Open(const std::string& path);
  ~ModelFile();

  Format format() const { return format_; }
  const std::string& path() const { return path_; }
  const ModelHyperParameters& hyper_parameters() const { return hyper_; }
  const std::vector<ModelTensor>& tensors() const { return tensors_; }
  const ModelTensor* FindTensor(std::string_view name) const;
  uint64_t parameter_count() const;
  uint64_t file_bytes() const;  // all shards together

  // The format-specific readers, for what this view does not cover (the tokenizer's
  // vocabulary in GGUF metadata). Exactly one is non-null.
  const GgufFile* gguf() const { return gguf_.get(); }
  const SafetensorsModel* safetensors() const { return safetensors_.get(); }
  // tokenizer.json beside safetensors weights; empty for GGUF or when absent.
  std::string tokenizer_json_path() const;

 private:
  ModelFile() = default;
  base::Status LoadGguf();
  base::Status LoadSafetensors();
  base::Status CheckHyperParameters() const;
  // Where a hyper-parameter came from, for messages: "metadata key 'llama.<gguf_key>'" or
  // "config.json key '<config_key>'".
  std::string Key(const char* gguf_key, const char* config_key) const;

  Format format_ = Format::kGguf;
  std::string path_;
  ModelHyperParameters hyper_;
  std::vector<ModelTensor> tensors_;
  std::unordered_map<std::string_view, size_t> index_;
  std::unique_ptr<GgufFile> gguf_;
  std::unique_ptr<SafetensorsModel> safetensors_;
};

// Parses a Hugging Face config.json for a Llama-family model (text: the file's contents,
// name: for messages). Missing required keys are errors naming the key.
base::Result<ModelHyperParameters> ParseLlamaConfigJson(const std::string& name,
                                                        std::string_view text);

}  // namespace supercluster::engine
