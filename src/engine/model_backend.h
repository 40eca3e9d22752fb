// ModelBackend: the seam between the scheduler (engine.h), which decides what runs when,
// and the code that runs a model's forward pass on some device and keeps its KV cache.
// The CPU backend (cpu_backend.h) is the one implementation today; a CUDA backend and a
// paged KV cache arrive behind this same interface, so the scheduler does not change.
//
// One forward step takes any mix of sequences: some prefilling many prompt tokens, others
// decoding one token each. Their rows are processed as one batch (the weight matrices are
// read once per step for all of them), each attending only to its own KV cache.
//
// Not thread-safe: one scheduler thread drives a backend. Only shape(), kv_bytes_in_use()
// and kv_bytes_budget() may also be called from other threads (for statistics).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "base/status.h"
#include "engine/tokenizer_vocab.h"

namespace supercluster::engine {

using SequenceId = uint64_t;

struct ModelShape {
  int32_t vocab_size = 0;
  int32_t context_length = 0;      // the longest sequence the model supports
  size_t kv_bytes_per_token = 0;   // K and V of every layer for one position
};

// One sequence's part of a forward step: `tokens` at positions start_position,
// start_position + 1, ...; the sequence's KV cache must hold exactly start_position tokens.
struct ForwardSlice {
  SequenceId sequence = 0;
  std::span<const TokenId> tokens;
  int32_t start_position = 0;
  bool all_logits = false;  // logits of every token (tests), or of the last one only
};

class ModelBackend {
 public:
  virtual ~ModelBackend() = default;

  virtual const ModelShape& shape() const = 0;

  // Reserves KV cache for a sequence of up to `capacity` tokens. kResourceExhausted when the
  // budget cannot hold it now (the caller may wait for others to finish);
  // kInvalidArgument when it never could (longer than the context or the whole budget).
  virtual base::Status AddSequence(SequenceId sequence, int32_t capacity) = 0;
  // Frees the sequence's KV cache. Unknown ids are ignored.
  virtual void RemoveSequence(SequenceId sequence) = 0;
  virtual size_t kv_bytes_in_use() const = 0;
  virtual size_t kv_bytes_budget() const = 0;

  // Runs one step: appends every slice's tokens to its KV cache and writes the logits rows
  // (vocab_size floats each), slice by slice in order: all of a slice's tokens' rows when
  // all_logits, else its last token's row. On error the caches are unchanged.
  virtual base::Status Forward(std::span<const ForwardSlice> batch, std::vector<float>* logits) = 0;
};

}  // namespace supercluster::engine
