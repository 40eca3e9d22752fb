#include "engine/model_synth.h"

#include <cmath>
#include <cstdio>
#include <cstring>

#include "engine/gguf_writer.h"

namespace supercluster::engine {
namespace {

const SynthShape kShapes[] = {
    {"tiny", 64, 2, 4, 2, 192, 512, 256},
    {"1b", 2048, 22, 32, 4, 5632, 32000, 2048},
    // name, dim, layers, heads, kv heads, ffn, vocab, context, arch, theta, eps, tied, bias,
    // noisy norms, llama3 rope factor and original context.
    {"test-llama3", 64, 2, 4, 2, 128, 320, 256, "llama", 500000.0f, 1e-5f, false, false, true, 8.0f, 64},
    {"test-qwen2", 96, 2, 6, 2, 128, 300, 256, "qwen2", 1000000.0f, 1e-6f, true, true, true, 0.0f},
    {"test-tied", 64, 2, 4, 4, 128, 288, 256, "llama", 10000.0f, 1e-5f, true, false, true, 0.0f},
};

// How a tensor's values are drawn: uniform noise scaled by 1/sqrt(row length), all ones
// (the norms of "tiny" and "1b"), or uniform in [0.5, 1.5) (norms of the test shapes, so a
// forward pass that ignores a norm weight gives wrong logits).
enum class NormInit { kNoise, kOnes, kAroundOne };

uint64_t SplitMix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// Bijective base-26 spelling of n: 0 -> "a", 25 -> "z", 26 -> "aa".
std::string LetterWord(uint64_t n) {
  std::string word;
  ++n;
  while (n > 0) {
    --n;
    word.insert(word.begin(), static_cast<char>('a' + n % 26));
    n /= 26;
  }
  return word;
}

void AddVocabulary(GgufWriter& writer, uint32_t vocab_size) {
  std::vector<std::string> tokens;
  std::vector<float> scores;
  std::vector<int32_t> types;  // llama.cpp token types: 1 normal, 2 unknown, 3 control, 6 byte
  tokens = {"<unk>", "<s>", "</s>"};
  types = {2, 3, 3};
  for (int byte = 0; byte < 256; ++byte) {
    char piece[8];
    std::snprintf(piece, sizeof(piece), "<0x%02X>", byte);
    tokens.push_back(piece);
    types.push_back(6);
  }
  for (uint64_t k = 0; tokens.size() < vocab_size; ++k) {
    tokens.push_back((k % 2 == 0 ? "\xe2\x96\x81" : "") + LetterWord(k / 2));  // "▁" + word
    types.push_back(1);
  }
  tokens.resize(vocab_size);
  types.resize(vocab_size);
  for (uint32_t i = 0; i < vocab_size; ++i) scores.push_back(i < 259 ? 0.0f : -static_cast<float>(i - 259));
  writer.Add("tokenizer.ggml.model", GgufString("llama"));
  writer.Add("tokenizer.ggml.tokens", GgufStringArray(tokens));
  writer.Add("tokenizer.ggml.scores", GgufFloat32Array(scores));
  writer.Add("tokenizer.ggml.token_type", GgufInt32Array(types));
  writer.Add("tokenizer.ggml.unknown_token_id", GgufUint32(0));
  writer.Add("tokenizer.ggml.bos_token_id", GgufUint32(1));
  writer.Add("tokenizer.ggml.eos_token_id", GgufUint32(2));
  writer.Add("tokenizer.ggml.add_bos_token", GgufBool(true));
}

uint32_t FileType(TensorType type) {
  switch (type) {
    case TensorType::kF32: return 0;
    case TensorType::kF16: return 1;
    case TensorType::kQ4_0: return 2;
    case TensorType::kQ8_0: return 7;
    case TensorType::kBF16: return 32;
    default: return 0;
  }
}

}  // namespace

base::Result<SynthShape> FindSynthShape(const std::string& name) {
  for (const SynthShape& shape : kShapes) {
    if (shape.name == name) return shape;
  }
  std::string known;
  for (const SynthShape& shape : kShapes) known += (known.empty() ? "" : ", ") + shape.name;
  return base::InvalidArgument("unknown model shape '" + name + "' (known: " + known + ")");
}

std::vector<std::string> SynthShapeNames() {
  std::vector<std::string> names;
  for (const SynthShape& shape : kShapes) names.push_back(shape.name);
  return names;
}

uint64_t SynthParameterCount(const SynthShape& s) {
  uint64_t dim = s.embedding_length;
  uint64_t kv_dim = dim / s.head_count * s.head_count_kv;
  uint64_t per_layer = 2 * dim + 2 * dim * dim + 2 * dim * kv_dim + 3 * dim * s.feed_forward_length;
  if (s.qkv_bias) per_layer += dim + 2 * kv_dim;
  uint64_t head = s.tied_embeddings ? 0 : dim * s.vocab_size;
  uint64_t rope_freqs = s.llama3_rope_factor > 0 ? dim / s.head_count / 2 : 0;
  return dim * s.vocab_size + head + dim + s.block_count * per_layer + rope_freqs;
}

std::vector<float> SynthRopeFrequencyFactors(const SynthShape& s) {
  std::vector<float> factors;
  if (s.llama3_rope_factor <= 0) return factors;
  // Llama 3.1's rule (its config.json rope_scaling): wavelengths shorter than
  // original_context / high_freq_factor keep their frequency, longer than
  // original_context / low_freq_factor are slowed by `factor`, and those between blend.
  const double factor = s.llama3_rope_factor, low = 1.0, high = 4.0;
  const double original = s.llama3_rope_original_context;
  const uint32_t head_dim = s.embedding_length / s.head_count;
  for (uint32_t i = 0; i < head_dim / 2; ++i) {
    double frequency = std::pow(static_cast<double>(s.rope_freq_base), -2.0 * i / head_dim);
    double wavelength = 2 * M_PI / frequency;
    double value;
    if (wavelength < original / high) {
      value = 1.0;
    } else if (wavelength > original / low) {
      value = factor;
    } else {
      double smooth = (original / wavelength - low) / (high - low);
      value = 1.0 / ((1.0 - smooth) / factor + smooth);
    }
    factors.push_back(static_cast<float>(value));
  }
  return factors;
}

base::Status WriteSynthModel(const SynthOptions& options, const std::string& path,
                             const std::function<void(uint64_t, uint64_t)>& progress) {
  const SynthShape& s = options.shape;
  TensorType type = options.type;
  if (type != TensorType::kF32 && type != TensorType::kF16 && type != TensorType::kBF16 &&
      type != TensorType::kQ8_0 && type != TensorType::kQ4_0) {
    return base::InvalidArgument("model synth writes f32, f16, bf16, q8_0 or q4_0, not " +
                                 std::string(TensorTypeName(type)));
  }
  if (s.architecture != "llama" && s.architecture != "qwen2") {
    return base::InvalidArgument("model synth writes architectures llama and qwen2, not " + s.architecture);
  }
  if (s.head_count == 0 || s.head_count_kv == 0 || s.embedding_length % s.head_count != 0 ||
      s.head_count % s.head_count_kv != 0) {
    return base::InvalidArgument("model shape '" + s.name + "': heads do not divide the dimension");
  }
  GgufWriter writer;
  const std::string arch = s.architecture + ".";
  writer.Add("general.architecture", GgufString(s.architecture));
  writer.Add("general.name", GgufString("supercluster-synth-" + s.name));
  writer.Add("general.file_type", GgufUint32(FileType(type)));
  writer.Add("general.quantization_version", GgufUint32(2));
  writer.Add(arch + "context_length", GgufUint32(s.context_length));
  writer.Add(arch + "embedding_length", GgufUint32(s.embedding_length));
  writer.Add(arch + "block_count", GgufUint32(s.block_count));
  writer.Add(arch + "feed_forward_length", GgufUint32(s.feed_forward_length));
  writer.Add(arch + "rope.dimension_count", GgufUint32(s.embedding_length / s.head_count));
  writer.Add(arch + "attention.head_count", GgufUint32(s.head_count));
  writer.Add(arch + "attention.head_count_kv", GgufUint32(s.head_count_kv));
  writer.Add(arch + "attention.layer_norm_rms_epsilon", GgufFloat32(s.rms_norm_epsilon));
  writer.Add(arch + "rope.freq_base", GgufFloat32(s.rope_freq_base));
  writer.Add(arch + "vocab_size", GgufUint32(s.vocab_size));
  AddVocabulary(writer, s.vocab_size);

  uint64_t tensor_number = 0;
  // Each tensor gets its own random stream, so a tensor's values do not depend on the type
  // or on the tensors before it.
  auto add = [&](const std::string& name, TensorType tensor_type, uint64_t columns, uint64_t rows,
                 NormInit init) -> base::Status {
    uint64_t stream = options.seed * 0x100000001b3ull + (++tensor_number);
    float scale = 1.0f / std::sqrt(static_cast<float>(columns));
    std::vector<uint64_t> shape = rows == 1 ? std::vector<uint64_t>{columns}
                                            : std::vector<uint64_t>{columns, rows};
    return writer.AddTensor(
        name, tensor_type, shape, [=](uint8_t* out, uint64_t) -> base::Status {
          uint64_t state = stream;
          SC_ASSIGN_OR_RETURN(uint64_t row_bytes, RowByteSize(tensor_type, columns));
          std::vector<float> row(columns);
          for (uint64_t r = 0; r < rows; ++r) {
            for (float& value : row) {
              // 24 random bits -> uniform in [-scale, scale).
              float unit = static_cast<float>(SplitMix64(state) >> 40) / 8388608.0f - 1.0f;
              value = init == NormInit::kOnes ? 1.0f
                      : init == NormInit::kAroundOne ? 1.0f + 0.5f * unit
                                                      : unit * scale;
            }
            SC_RETURN_IF_ERROR(QuantizeRow(tensor_type, row.data(), columns, out + r * row_bytes));
          }
          return base::Status::Ok();
        });
  };
  uint64_t dim = s.embedding_length;
  uint64_t kv_dim = dim / s.head_count * s.head_count_kv;
  uint64_t ffn = s.feed_forward_length;
  const NormInit noise = NormInit::kNoise;
  const NormInit norm = s.noisy_norms ? NormInit::kAroundOne : NormInit::kOnes;
  SC_RETURN_IF_ERROR(add("token_embd.weight", type, dim, s.vocab_size, noise));
  if (s.llama3_rope_factor > 0) {
    std::vector<float> factors = SynthRopeFrequencyFactors(s);
    std::string bytes(factors.size() * 4, '\0');
    std::memcpy(bytes.data(), factors.data(), bytes.size());  // little-endian hosts only
    SC_RETURN_IF_ERROR(writer.AddTensor("rope_freqs.weight", TensorType::kF32,
                                        {factors.size()}, std::move(bytes)));
  }
  for (uint32_t layer = 0; layer < s.block_count; ++layer) {
    std::string blk = "blk." + std::to_string(layer) + ".";
    SC_RETURN_IF_ERROR(add(blk + "attn_norm.weight", TensorType::kF32, dim, 1, norm));
    SC_RETURN_IF_ERROR(add(blk + "attn_q.weight", type, dim, dim, noise));
    SC_RETURN_IF_ERROR(add(blk + "attn_k.weight", type, dim, kv_dim, noise));
    SC_RETURN_IF_ERROR(add(blk + "attn_v.weight", type, dim, kv_dim, noise));
    if (s.qkv_bias) {  // 1-D tensors stay f32, as llama.cpp's converter keeps them
      SC_RETURN_IF_ERROR(add(blk + "attn_q.bias", TensorType::kF32, dim, 1, noise));
      SC_RETURN_IF_ERROR(add(blk + "attn_k.bias", TensorType::kF32, kv_dim, 1, noise));
      SC_RETURN_IF_ERROR(add(blk + "attn_v.bias", TensorType::kF32, kv_dim, 1, noise));
    }
    SC_RETURN_IF_ERROR(add(blk + "attn_output.weight", type, dim, dim, noise));
    SC_RETURN_IF_ERROR(add(blk + "ffn_norm.weight", TensorType::kF32, dim, 1, norm));
    SC_RETURN_IF_ERROR(add(blk + "ffn_gate.weight", type, dim, ffn, noise));
    SC_RETURN_IF_ERROR(add(blk + "ffn_up.weight", type, dim, ffn, noise));
    SC_RETURN_IF_ERROR(add(blk + "ffn_down.weight", type, ffn, dim, noise));
  }
  SC_RETURN_IF_ERROR(add("output_norm.weight", TensorType::kF32, dim, 1, norm));
  if (!s.tied_embeddings) {
    SC_RETURN_IF_ERROR(add("output.weight", type, dim, s.vocab_size, noise));
  }
  return writer.WriteFile(path, progress);
}

}  // namespace supercluster::engine
