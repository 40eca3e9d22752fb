#include "engine/cpu_backend.h"

#include <cmath>
#include <cstring>
#include <mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "base/thread_pool.h"
#include "engine/tensor_type.h"

namespace supercluster::engine {
namespace {

using base::Result;
using base::Status;
using kernels::WeightMatrix;

Result<kernels::TensorType> KernelType(TensorType type, const std::string& name) {
  switch (type) {
    case TensorType::kF32: return kernels::TensorType::kF32;
    case TensorType::kF16: return kernels::TensorType::kF16;
    case TensorType::kBF16: return kernels::TensorType::kBF16;
    case TensorType::kQ8_0: return kernels::TensorType::kQ8_0;
    case TensorType::kQ4_0: return kernels::TensorType::kQ4_0;
    default:
      return base::InvalidArgument("tensor '" + name + "' has type " +
                                   std::string(TensorTypeName(type)) +
                                   ", which the CPU kernels do not run (f32, f16, bf16, q8_0, "
                                   "q4_0 are supported)");
  }
}

// The names of one architecture's tensors in one file format.
struct TensorNames {
  bool hugging_face = false;

  std::string Global(const std::string& gguf, const std::string& hf) const {
    return hugging_face ? hf : gguf;
  }
  std::string Layer(int layer, const std::string& gguf, const std::string& hf) const {
    return hugging_face ? "model.layers." + std::to_string(layer) + "." + hf
                        : "blk." + std::to_string(layer) + "." + gguf;
  }
};

struct Layer {
  std::vector<float> attention_norm, ffn_norm;
  WeightMatrix q, k, v, output, gate, up, down;
  std::vector<float> q_bias, k_bias, v_bias;  // empty when the model has none
};

// One sequence's KV cache: [layer][position][kv_dim] for K and for V, in F32.
struct SequenceCache {
  int32_t capacity = 0;
  int32_t length = 0;
  size_t bytes = 0;
  std::unique_ptr<float[]> keys, values;
};

}  // namespace

struct CpuBackend::Impl {
  std::unique_ptr<ModelFile> model;
  const kernels::Kernels* kernels = nullptr;
  std::unique_ptr<base::ThreadPool> pool;
  ModelShape shape;

  int dim = 0, layers = 0, heads = 0, kv_heads = 0, head_dim = 0, ffn = 0, vocab = 0;
  float epsilon = 1e-5f;
  kernels::RopeOrder rope_order = kernels::RopeOrder::kInterleaved;
  std::vector<float> inverse_frequencies;

  const ModelTensor* embedding = nullptr;
  std::vector<float> output_norm;
  WeightMatrix output;
  std::vector<Layer> blocks;

  size_t kv_budget = 0;
  mutable std::mutex kv_mutex;  // guards kv_in_use against Stats readers
  size_t kv_in_use = 0;
  std::unordered_map<SequenceId, SequenceCache> caches;

  // Per-step scratch, kept between steps so a decode step allocates nothing.
  std::vector<float> x, normed, q, k, v, attention, projected, gate, up, last_rows;
  std::vector<int32_t> positions;
  std::vector<SequenceCache*> row_cache;

  int kv_dim() const { return kv_heads * head_dim; }
  float* KeyAt(SequenceCache& cache, int layer, int32_t position) const {
    return cache.keys.get() + (static_cast<size_t>(layer) * cache.capacity + position) * kv_dim();
  }
  float* ValueAt(SequenceCache& cache, int layer, int32_t position) const {
    return cache.values.get() + (static_cast<size_t>(layer) * cache.capacity + position) * kv_dim();
  }

  Status LoadWeights();
  Result<WeightMatrix> Matrix(const std::string& name, int64_t in, int64_t out) const;
  Result<std::vector<float>> Vector(const std::string& name, int64_t size, bool optional) const;
  Status CheckBatch(std::span<const ForwardSlice> batch) const;
  void EmbedRows(std::span<const ForwardSlice> batch);
  void RunLayer(int layer, int64_t rows);
  void Attend(int layer, int64_t rows);
};

Result<WeightMatrix> CpuBackend::Impl::Matrix(const std::string& name, int64_t in,
                                              int64_t out) const {
  const ModelTensor* tensor = model->FindTensor(name);
  if (tensor == nullptr) return base::InvalidArgument("the model has no tensor '" + name + "'");
  if (tensor->shape.size() != 2 || tensor->shape[0] != static_cast<uint64_t>(in) ||
      tensor->shape[1] != static_cast<uint64_t>(out)) {
    return base::InvalidArgument("tensor '" + name + "' should be " + std::to_string(in) + " x " +
                                 std::to_string(out) + " (inner dimension first)");
  }
  SC_ASSIGN_OR_RETURN(kernels::TensorType type, KernelType(tensor->type, name));
  WeightMatrix matrix{type, tensor->data, out, in};
  SC_RETURN_IF_ERROR(kernels::CheckWeightMatrix(matrix, name.c_str()));
  return matrix;
}

Result<std::vector<float>> CpuBackend::Impl::Vector(const std::string& name, int64_t size,
                                                    bool optional) const {
  const ModelTensor* tensor = model->FindTensor(name);
  if (tensor == nullptr) {
    if (optional) return std::vector<float>();
    return base::InvalidArgument("the model has no tensor '" + name + "'");
  }
  if (tensor->shape.size() != 1 || tensor->shape[0] != static_cast<uint64_t>(size)) {
    return base::InvalidArgument("tensor '" + name + "' should hold " + std::to_string(size) +
                                 " values");
  }
  std::vector<float> values(static_cast<size_t>(size));
  SC_RETURN_IF_ERROR(DequantizeRow(tensor->type, tensor->data, static_cast<uint64_t>(size),
                                   values.data())
                         .WithContext("tensor '" + name + "'"));
  return values;
}

Status CpuBackend::Impl::LoadWeights() {
  const ModelHyperParameters& hyper = model->hyper_parameters();
  if (hyper.architecture != "llama" && hyper.architecture != "qwen2" &&
      hyper.architecture != "mistral") {
    return base::InvalidArgument("architecture '" + hyper.architecture +
                                 "' is not supported (llama, mistral and qwen2 are)");
  }
  dim = static_cast<int>(hyper.embedding_length);
  layers = static_cast<int>(hyper.block_count);
  heads = static_cast<int>(hyper.head_count);
  kv_heads = static_cast<int>(hyper.head_count_kv);
  ffn = static_cast<int>(hyper.feed_forward_length);
  vocab = static_cast<int>(hyper.vocab_size);
  epsilon = hyper.rms_norm_epsilon;
  if (dim <= 0 || layers <= 0 || heads <= 0 || kv_heads <= 0 || ffn <= 0 || vocab <= 0 ||
      dim % heads != 0 || heads % kv_heads != 0) {
    return base::InvalidArgument("inconsistent hyper-parameters: dim " + std::to_string(dim) +
                                 ", heads " + std::to_string(heads) + ", kv heads " +
                                 std::to_string(kv_heads));
  }
  head_dim = dim / heads;
  int rotary_dim = hyper.rope_dimension_count > 0 ? static_cast<int>(hyper.rope_dimension_count)
                                                  : head_dim;
  if (rotary_dim > head_dim || rotary_dim % 2 != 0) {
    return base::InvalidArgument("rope dimension " + std::to_string(rotary_dim) +
                                 " does not fit the head dimension " + std::to_string(head_dim));
  }

  TensorNames names;
  names.hugging_face = model->format() == ModelFile::Format::kSafetensors;
  // GGUF `llama` files carry Q/K permuted for the interleaved rotation; Hugging Face
  // checkpoints and `qwen2` use the NeoX halves.
  rope_order = (names.hugging_face || hyper.architecture == "qwen2")
                   ? kernels::RopeOrder::kNeox
                   : kernels::RopeOrder::kInterleaved;
  inverse_frequencies = kernels::RopeInverseFrequencies(rotary_dim, hyper.rope_freq_base);
  SC_ASSIGN_OR_RETURN(std::vector<float> rope_factors,
                      Vector(names.Global("rope_freqs.weight", "rope_freqs.weight"),
                             rotary_dim / 2, /*optional=*/true));
  if (!rope_factors.empty()) {
    for (size_t i = 0; i < inverse_frequencies.size(); ++i) {
      inverse_frequencies[i] /= rope_factors[i];
    }
  } else if (hyper.rope_scaling_type == "linear" && hyper.rope_scaling_factor > 0) {
    for (float& frequency : inverse_frequencies) frequency /= hyper.rope_scaling_factor;
  } else if (!hyper.rope_scaling_type.empty() && hyper.rope_scaling_type != "none") {
    return base::InvalidArgument("rope scaling '" + hyper.rope_scaling_type +
                                 "' is not supported without a rope_freqs tensor");
  }

  const std::string embedding_name = names.Global("token_embd.weight", "model.embed_tokens.weight");
  // Checked as a matrix: a tied head reads it as one.
  SC_ASSIGN_OR_RETURN(WeightMatrix embedding_matrix, Matrix(embedding_name, dim, vocab));
  embedding = model->FindTensor(embedding_name);
  SC_ASSIGN_OR_RETURN(output_norm, Vector(names.Global("output_norm.weight", "model.norm.weight"),
                                          dim, false));
  const std::string output_name = names.Global("output.weight", "lm_head.weight");
  if (model->FindTensor(output_name) != nullptr) {
    SC_ASSIGN_OR_RETURN(output, Matrix(output_name, dim, vocab));
  } else {
    output = embedding_matrix;  // tied: the head reuses the token embedding
  }

  int q_dim = heads * head_dim;
  for (int i = 0; i < layers; ++i) {
    Layer layer;
    SC_ASSIGN_OR_RETURN(layer.attention_norm,
                        Vector(names.Layer(i, "attn_norm.weight", "input_layernorm.weight"), dim,
                               false));
    SC_ASSIGN_OR_RETURN(layer.ffn_norm, Vector(names.Layer(i, "ffn_norm.weight",
                                                           "post_attention_layernorm.weight"),
                                               dim, false));
    SC_ASSIGN_OR_RETURN(layer.q, Matrix(names.Layer(i, "attn_q.weight", "self_attn.q_proj.weight"),
                                        dim, q_dim));
    SC_ASSIGN_OR_RETURN(layer.k, Matrix(names.Layer(i, "attn_k.weight", "self_attn.k_proj.weight"),
                                        dim, kv_dim()));
    SC_ASSIGN_OR_RETURN(layer.v, Matrix(names.Layer(i, "attn_v.weight", "self_attn.v_proj.weight"),
                                        dim, kv_dim()));
    SC_ASSIGN_OR_RETURN(layer.output, Matrix(names.Layer(i, "attn_output.weight",
                                                         "self_attn.o_proj.weight"),
                                             q_dim, dim));
    SC_ASSIGN_OR_RETURN(layer.gate, Matrix(names.Layer(i, "ffn_gate.weight", "mlp.gate_proj.weight"),
                                           dim, ffn));
    SC_ASSIGN_OR_RETURN(layer.up, Matrix(names.Layer(i, "ffn_up.weight", "mlp.up_proj.weight"),
                                         dim, ffn));
    SC_ASSIGN_OR_RETURN(layer.down, Matrix(names.Layer(i, "ffn_down.weight", "mlp.down_proj.weight"),
                                           ffn, dim));
    SC_ASSIGN_OR_RETURN(layer.q_bias, Vector(names.Layer(i, "attn_q.bias", "self_attn.q_proj.bias"),
                                             q_dim, true));
    SC_ASSIGN_OR_RETURN(layer.k_bias, Vector(names.Layer(i, "attn_k.bias", "self_attn.k_proj.bias"),
                                             kv_dim(), true));
    SC_ASSIGN_OR_RETURN(layer.v_bias, Vector(names.Layer(i, "attn_v.bias", "self_attn.v_proj.bias"),
                                             kv_dim(), true));
    blocks.push_back(std::move(layer));
  }

  shape.vocab_size = vocab;
  shape.context_length = static_cast<int32_t>(hyper.context_length);
  shape.kv_bytes_per_token = static_cast<size_t>(layers) * 2 * kv_dim() * sizeof(float);
  return Status::Ok();
}

Status CpuBackend::Impl::CheckBatch(std::span<const ForwardSlice> batch) const {
  std::unordered_set<SequenceId> seen;
  for (const ForwardSlice& slice : batch) {
    auto found = caches.find(slice.sequence);
    if (found == caches.end()) {
      return base::InvalidArgument("forward: unknown sequence " + std::to_string(slice.sequence));
    }
    if (!seen.insert(slice.sequence).second) {
      return base::InvalidArgument("forward: sequence " + std::to_string(slice.sequence) +
                                   " appears twice in one step");
    }
    const SequenceCache& cache = found->second;
    if (slice.tokens.empty() || slice.start_position != cache.length ||
        cache.length + static_cast<int64_t>(slice.tokens.size()) > cache.capacity) {
      return base::InvalidArgument("forward: sequence " + std::to_string(slice.sequence) +
                                   " slice does not fit its cache (at " +
                                   std::to_string(cache.length) + " of " +
                                   std::to_string(cache.capacity) + ")");
    }
    for (TokenId token : slice.tokens) {
      if (token < 0 || token >= vocab) {
        return base::InvalidArgument("forward: token " + std::to_string(token) +
                                     " is outside the vocabulary");
      }
    }
  }
  return Status::Ok();
}

void CpuBackend::Impl::EmbedRows(std::span<const ForwardSlice> batch) {
  uint64_t row_bytes = RowByteSize(embedding->type, static_cast<uint64_t>(dim)).value();
  size_t row = 0;
  for (const ForwardSlice& slice : batch) {
    SequenceCache* cache = &caches.at(slice.sequence);
    for (size_t i = 0; i < slice.tokens.size(); ++i, ++row) {
      const uint8_t* source = embedding->data + row_bytes * static_cast<uint64_t>(slice.tokens[i]);
      // Checked at load: the embedding's type dequantizes.
      (void)DequantizeRow(embedding->type, source, static_cast<uint64_t>(dim),
                          x.data() + row * static_cast<size_t>(dim));
      positions[row] = slice.start_position + static_cast<int32_t>(i);
      row_cache[row] = cache;
    }
  }
}

void CpuBackend::Impl::Attend(int layer, int64_t rows) {
  const int group = heads / kv_heads;
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  pool->ParallelFor(rows * heads, [&](int64_t begin, int64_t end) {
    std::vector<float> scores;
    for (int64_t index = begin; index < end; ++index) {
      int64_t row = index / heads;
      int head = static_cast<int>(index % heads);
      int kv_head = head / group;
      SequenceCache& cache = *row_cache[row];
      int32_t length = positions[row] + 1;  // causal: itself and everything before
      std::span<const float> query(q.data() + (row * heads + head) * head_dim,
                                   static_cast<size_t>(head_dim));
      scores.resize(static_cast<size_t>(length));
      for (int32_t j = 0; j < length; ++j) {
        std::span<const float> key(KeyAt(cache, layer, j) + kv_head * head_dim,
                                   static_cast<size_t>(head_dim));
        scores[j] = kernels->Dot(key, query) * scale;
      }
      kernels->Softmax(scores);
      std::span<float> out(attention.data() + (row * heads + head) * head_dim,
                           static_cast<size_t>(head_dim));
      std::fill(out.begin(), out.end(), 0.0f);
      for (int32_t j = 0; j < length; ++j) {
        std::span<const float> value(ValueAt(cache, layer, j) + kv_head * head_dim,
                                     static_cast<size_t>(head_dim));
        kernels->Axpy(scores[j], value, out);
      }
    }
  });
}

void CpuBackend::Impl::RunLayer(int layer_index, int64_t rows) {
  const Layer& layer = blocks[layer_index];
  const size_t d = static_cast<size_t>(dim);
  const size_t q_dim = static_cast<size_t>(heads * head_dim);
  const size_t kvd = static_cast<size_t>(kv_dim());
  auto span_of = [rows](std::vector<float>& buffer, size_t width) {
    return std::span<float>(buffer.data(), static_cast<size_t>(rows) * width);
  };

  // Attention.
  for (int64_t row = 0; row < rows; ++row) {
    kernels->RmsNorm(std::span<const float>(x.data() + row * d, d), layer.attention_norm,
                     epsilon, std::span<float>(normed.data() + row * d, d));
  }
  kernels->MatMul(layer.q, span_of(normed, d), span_of(q, q_dim), pool.get());
  kernels->MatMul(layer.k, span_of(normed, d), span_of(k, kvd), pool.get());
  kernels->MatMul(layer.v, span_of(normed, d), span_of(v, kvd), pool.get());
  for (int64_t row = 0; row < rows; ++row) {
    if (!layer.q_bias.empty()) {
      std::span<float> out(q.data() + row * q_dim, q_dim);
      kernels->Add(out, layer.q_bias, out);
    }
    if (!layer.k_bias.empty()) {
      std::span<float> out(k.data() + row * kvd, kvd);
      kernels->Add(out, layer.k_bias, out);
    }
    if (!layer.v_bias.empty()) {
      std::span<float> out(v.data() + row * kvd, kvd);
      kernels->Add(out, layer.v_bias, out);
    }
  }
  std::span<const int32_t> row_positions(positions.data(), static_cast<size_t>(rows));
  kernels->Rope(span_of(q, q_dim), row_positions, heads, head_dim, inverse_frequencies, rope_order);
  kernels->Rope(span_of(k, kvd), row_positions, kv_heads, head_dim, inverse_frequencies,
                rope_order);
  for (int64_t row = 0; row < rows; ++row) {
    SequenceCache& cache = *row_cache[row];
    std::memcpy(KeyAt(cache, layer_index, positions[row]), k.data() + row * kvd,
                kvd * sizeof(float));
    std::memcpy(ValueAt(cache, layer_index, positions[row]), v.data() + row * kvd,
                kvd * sizeof(float));
  }
  Attend(layer_index, rows);
  kernels->MatMul(layer.output, span_of(attention, q_dim), span_of(projected, d), pool.get());
  kernels->Add(span_of(x, d), span_of(projected, d), span_of(x, d));

  // Feed-forward (SwiGLU).
  const size_t f = static_cast<size_t>(ffn);
  for (int64_t row = 0; row < rows; ++row) {
    kernels->RmsNorm(std::span<const float>(x.data() + row * d, d), layer.ffn_norm, epsilon,
                     std::span<float>(normed.data() + row * d, d));
  }
  kernels->MatMul(layer.gate, span_of(normed, d), span_of(gate, f), pool.get());
  kernels->MatMul(layer.up, span_of(normed, d), span_of(up, f), pool.get());
  kernels->SiluMul(span_of(gate, f), span_of(up, f), span_of(gate, f));
  kernels->MatMul(layer.down, span_of(gate, f), span_of(projected, d), pool.get());
  kernels->Add(span_of(x, d), span_of(projected, d), span_of(x, d));
}

CpuBackend::CpuBackend(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
CpuBackend::~CpuBackend() {
  while (!impl_->caches.empty()) RemoveSequence(impl_->caches.begin()->first);
}

Result<std::unique_ptr<CpuBackend>> CpuBackend::Create(std::unique_ptr<ModelFile> model,
                                                       const CpuBackendOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->model = std::move(model);
  impl->kernels = options.kernels != nullptr ? options.kernels : &kernels::DefaultKernels();
  if (options.threads < 0) return base::InvalidArgument("threads must be >= 0");
  impl->kv_budget = options.kv_cache_bytes;
  SC_RETURN_IF_ERROR(impl->LoadWeights().WithContext(impl->model->path()));
  impl->pool = std::make_unique<base::ThreadPool>(options.threads);
  return std::unique_ptr<CpuBackend>(new CpuBackend(std::move(impl)));
}

const ModelShape& CpuBackend::shape() const { return impl_->shape; }
const ModelFile& CpuBackend::model() const { return *impl_->model; }
int CpuBackend::thread_count() const { return impl_->pool->thread_count(); }

Status CpuBackend::AddSequence(SequenceId sequence, int32_t capacity) {
  if (capacity <= 0 || capacity > impl_->shape.context_length) {
    return base::InvalidArgument("a sequence of " + std::to_string(capacity) +
                                 " tokens does not fit the model's context of " +
                                 std::to_string(impl_->shape.context_length));
  }
  if (impl_->caches.count(sequence) != 0) {
    return base::AlreadyExists("sequence " + std::to_string(sequence) + " already has a cache");
  }
  size_t bytes = static_cast<size_t>(capacity) * impl_->shape.kv_bytes_per_token;
  if (bytes > impl_->kv_budget) {
    return base::InvalidArgument("a sequence of " + std::to_string(capacity) + " tokens needs " +
                                 std::to_string(bytes >> 20) + " MiB of KV cache, more than the " +
                                 std::to_string(impl_->kv_budget >> 20) + " MiB budget");
  }
  {
    std::lock_guard lock(impl_->kv_mutex);
    if (impl_->kv_in_use + bytes > impl_->kv_budget) {
      return base::ResourceExhausted("the KV cache budget is in use");
    }
    impl_->kv_in_use += bytes;
  }
  SequenceCache cache;
  cache.capacity = capacity;
  cache.bytes = bytes;
  size_t floats = bytes / sizeof(float) / 2;
  // Not zero-filled: positions are written before they are read, and untouched pages cost
  // no memory until then.
  cache.keys.reset(new float[floats]);
  cache.values.reset(new float[floats]);
  impl_->caches.emplace(sequence, std::move(cache));
  return Status::Ok();
}

void CpuBackend::RemoveSequence(SequenceId sequence) {
  auto found = impl_->caches.find(sequence);
  if (found == impl_->caches.end()) return;
  SequenceCache& cache = found->second;
  // The cache holds a tenant's prompt and answer in another form: zero what was written
  // before the memory goes back to the allocator.
  for (int layer = 0; layer < impl_->layers; ++layer) {
    size_t used = static_cast<size_t>(cache.length) * impl_->kv_dim() * sizeof(float);
    std::memset(impl_->KeyAt(cache, layer, 0), 0, used);
    std::memset(impl_->ValueAt(cache, layer, 0), 0, used);
  }
  {
    std::lock_guard lock(impl_->kv_mutex);
    impl_->kv_in_use -= cache.bytes;
  }
  impl_->caches.erase(found);
}

size_t CpuBackend::kv_bytes_in_use() const {
  std::lock_guard lock(impl_->kv_mutex);
  return impl_->kv_in_use;
}

size_t CpuBackend::kv_bytes_budget() const { return impl_->kv_budget; }

Status CpuBackend::Forward(std::span<const ForwardSlice> batch, std::vector<float>* logits) {
  Impl& s = *impl_;
  SC_RETURN_IF_ERROR(s.CheckBatch(batch));
  int64_t rows = 0;
  int64_t logit_rows = 0;
  for (const ForwardSlice& slice : batch) {
    rows += static_cast<int64_t>(slice.tokens.size());
    logit_rows += slice.all_logits ? static_cast<int64_t>(slice.tokens.size()) : 1;
  }
  const size_t d = static_cast<size_t>(s.dim);
  auto grow = [rows](std::vector<float>& buffer, size_t width) {
    if (buffer.size() < static_cast<size_t>(rows) * width) buffer.resize(rows * width);
  };
  grow(s.x, d);
  grow(s.normed, d);
  grow(s.q, static_cast<size_t>(s.heads * s.head_dim));
  grow(s.k, static_cast<size_t>(s.kv_dim()));
  grow(s.v, static_cast<size_t>(s.kv_dim()));
  grow(s.attention, static_cast<size_t>(s.heads * s.head_dim));
  grow(s.projected, d);
  grow(s.gate, static_cast<size_t>(s.ffn));
  grow(s.up, static_cast<size_t>(s.ffn));
  s.positions.resize(static_cast<size_t>(rows));
  s.row_cache.resize(static_cast<size_t>(rows));

  s.EmbedRows(batch);
  for (int layer = 0; layer < s.layers; ++layer) s.RunLayer(layer, rows);

  // The rows whose logits are wanted: every row of an all_logits slice, else its last.
  s.last_rows.resize(static_cast<size_t>(logit_rows) * d);
  int64_t source = 0, target = 0;
  for (const ForwardSlice& slice : batch) {
    int64_t count = static_cast<int64_t>(slice.tokens.size());
    int64_t first = slice.all_logits ? source : source + count - 1;
    for (int64_t row = first; row < source + count; ++row, ++target) {
      s.kernels->RmsNorm(std::span<const float>(s.x.data() + row * d, d), s.output_norm,
                         s.epsilon, std::span<float>(s.last_rows.data() + target * d, d));
    }
    source += count;
    s.caches.at(slice.sequence).length += static_cast<int32_t>(count);
  }
  logits->resize(static_cast<size_t>(logit_rows) * static_cast<size_t>(s.vocab));
  s.kernels->MatMul(s.output, s.last_rows, *logits, s.pool.get());
  return Status::Ok();
}

}  // namespace supercluster::engine
