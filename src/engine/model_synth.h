// Writes random-weight Llama-shaped GGUF files: test inputs for the readers, the forward
// pass and the loader benchmarks when no real model is at hand. Used by
// `supercluster model synth` and by tests.
//
// The file is deterministic in (shape, type, seed). It is self-contained: llama.* keys,
// general.architecture = llama, and a minimal SentencePiece-style ("llama") vocabulary of
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
};

// "tiny" (64-dim, 2 layers, ~100k parameters, for tests) and "1b" (TinyLlama-1.1B's
// shape: 2048-dim, 22 layers, 32 heads, 4 kv heads, ffn 5632, vocab 32000).
base::Result<SynthShape> FindSynthShape(const std::string& name);
std::vector<std::string> SynthShapeNames();

struct SynthOptions {
  SynthShape shape;
  TensorType type = TensorType::kF16;  // for the matrices; norms are always f32
  uint64_t seed = 1;
};

// Parameter count of the model `shape` describes.
uint64_t SynthParameterCount(const SynthShape& shape);

// Writes the model to `path`. Types: f32, f16, bf16, q8_0, q4_0. `progress` as for
// GgufWriter::WriteFile.
base::Status WriteSynthModel(const SynthOptions& options, const std::string& path,
                             const std::function<void(uint64_t done, uint64_t total)>& progress = {});

}  // namespace supercluster::engine
