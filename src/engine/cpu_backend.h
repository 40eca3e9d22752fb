// CpuBackend: the Llama-family forward pass on the CPU (the ModelBackend the engine uses
// today). It reads the weights where the model file maps them (GGUF or safetensors, never
// copied or dequantized whole), runs every step's rows through the kernels in
// engine/kernels as one batch, and keeps each sequence's KV cache in F32 in host memory
// under a byte budget.
//
// Architectures (general.architecture): `llama` (and Mistral, TinyLlama: the same graph)
// and `qwen2` (Q/K/V biases). The forward pass is llama.cpp's definition of them:
//   x = token_embd[token]
//   per block: h = x + Wo * Attention(RoPE(Wq*n + bq), RoPE(Wk*n + bk), Wv*n + bv),
//                  n = RMSNorm(x) * attn_norm
//              x = h + Wdown * (silu(Wgate*m) * (Wup*m)),  m = RMSNorm(h) * ffn_norm
//   logits = Woutput * (RMSNorm(x) * output_norm)       (Woutput = token_embd when tied)
// Attention is causal, grouped-query (query head j uses KV head j / (heads / kv_heads)),
// scaled by 1/sqrt(head_dim). RoPE rotates pairs (2i, 2i+1) for GGUF `llama` files and
// pairs (i, i + d/2) (NeoX) for `qwen2` and for Hugging Face safetensors checkpoints, by
// position * theta^(-2i/d) / rope_freqs[i] (rope_freqs.weight: Llama 3.1's per-frequency
// factors, when the file has it).
//
// tests/data/forward holds logits from an independent PyTorch implementation
// (tools/reference) that cpu_backend_test.cc compares against.
#pragma once

#include <memory>

#include "base/status.h"
#include "engine/kernels/kernels.h"
#include "engine/model_backend.h"
#include "engine/model_file.h"

namespace supercluster::engine {

struct CpuBackendOptions {
  int threads = 0;                       // 0: one per CPU core
  size_t kv_cache_bytes = size_t{256} << 20;
  const kernels::Kernels* kernels = nullptr;  // nullptr: kernels::DefaultKernels()
};

class CpuBackend final : public ModelBackend {
 public:
  // Checks every tensor the architecture needs (present, shape, type) and fails naming the
  // first that is wrong. The model file stays mapped for the backend's life.
  static base::Result<std::unique_ptr<CpuBackend>> Create(std::unique_ptr<ModelFile> model,
                                                          const CpuBackendOptions& options);
  ~CpuBackend() override;

  const ModelShape& shape() const override;
  base::Status AddSequence(SequenceId sequence, int32_t capacity) override;
  void RemoveSequence(SequenceId sequence) override;
  size_t kv_bytes_in_use() const override;
  size_t kv_bytes_budget() const override;
  base::Status Forward(std::span<const ForwardSlice> batch, std::vector<float>* logits) override;

  const ModelFile& model() const;
  int thread_count() const;

 private:
  struct Impl;
  explicit CpuBackend(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace supercluster::engine
