// Writes random-weight Llama-shaped GGUF files: test inputs for the readers, the forward
// pass and the loader benchmarks when no real model is at hand. Used by
// `supercluster model synth` and by tests.
//
// The file is deterministic in (shape, type, seed). It is self-contained: "<arch>.*" keys
// (general.architecture = llama, or qwen2 for the Qwen2 test shape), and a minimal SentencePiece-style ("llama") vocabulary of
// the shape's vocab size: <unk>, <s>, </s>, the 256 byte tokens <0x00>..<0xFF>, then
// made-up pieces ("▁a", "a", "▁b", ... then longer letter strings) with decreasing scores.
// The vocabulary is enough to tokenize any text through byte fallback; the weights are
// noise, so what such a model says is noise too.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "base/status.h"
#include "engine/tensor_type.h"

namespace supercluster::engine {

struct SynthShape {
  std::string name;
  uint32_t embedding_length;
  uint32_t block_count;
  uint32_t head_count;
  uint32_t head_count_kv;
  uint32_t feed_forward_length;
  uint32_t vocab_size;
  uint32_t context_length;
  // The variations the forward-pass conformance shapes need. The defaults are what "tiny"
  // and "1b" have always been, so their files are unchanged.
  std::string architecture = "llama";  // "llama" (normal RoPE) or "qwen2" (NeoX RoPE)
  float rope_freq_base = 10000.0f;
  float rms_norm_epsilon = 1e-5f;
  bool tied_embeddings = false;  // no output.weight: the head uses token_embd.weight
  bool qkv_bias = false;         // blk.N.attn_{q,k,v}.bias (f32), as Qwen2 has
  bool noisy_norms = false;      // norm weights uniform in [0.5, 1.5) instead of all ones
  // > 0: a rope_freqs.weight tensor (f32, head_dim / 2 values) holding the frequency
  // factors of Llama 3.1's rope scaling rule for this factor (low_freq_factor 1,
  // high_freq_factor 4, original context below), as llama.cpp's converter writes for
  // Llama 3.1; RoPE divides each angle by its factor. Llama 3.1 itself has factor 8 and
  // original context 8192; a small original context makes the factors touch frequencies
  // that matter within a 16-token test sequence.
  float llama3_rope_factor = 0.0f;
  uint32_t llama3_rope_original_context = 8192;
};

// "tiny" (64-dim, 2 layers, ~100k parameters, for tests) and "1b" (TinyLlama-1.1B's
// shape: 2048-dim, 22 layers, 32 heads, 4 kv heads, ffn 5632, vocab 32000), plus the
// forward-pass conformance shapes (tests/data/forward, tools/reference), each < 1 MB in f32,
// all with head dimension 16 and norm weights that are not all ones:
//   "test-llama3": llama, 64-dim, 2 layers, 4 heads / 2 kv heads (GQA), ffn 128, vocab 320,
//                  rope theta 500000 and a rope_freqs tensor by Llama 3.1's rule (factor 8,
//                  original context 64).
//   "test-qwen2":  qwen2, 96-dim, 2 layers, 6 heads / 2 kv heads, ffn 128, vocab 300, QKV
//                  biases, NeoX RoPE, theta 1000000, rms eps 1e-6, tied embeddings.
//   "test-tied":   llama, 64-dim, 2 layers, 4 heads / 4 kv heads (plain multi-head),
//                  ffn 128, vocab 288, tied embeddings, theta 10000.
base::Result<SynthShape> FindSynthShape(const std::string& name);
std::vector<std::string> SynthShapeNames();

struct SynthOptions {
  SynthShape shape;
  TensorType type = TensorType::kF16;  // for the matrices; norms are always f32
  uint64_t seed = 1;
};

// Parameter count of the model `shape` describes.
uint64_t SynthParameterCount(const SynthShape& shape);

// Values of the rope_freqs.weight tensor for `shape` (empty when llama3_rope_factor is 0).
std::vector<float> SynthRopeFrequencyFactors(const SynthShape& shape);

// Writes the model to `path`. Types: f32, f16, bf16, q8_0, q4_0. `progress` as for
// GgufWriter::WriteFile.
base::Status WriteSynthModel(const SynthOptions& options, const std::string& path,
                             const std::function<void(uint64_t done, uint64_t total)>& progress = {});

}  // namespace supercluster::engine
