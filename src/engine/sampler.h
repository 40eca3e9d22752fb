// Choosing the next token from a row of logits: greedy, or sampled with temperature,
// top-k, top-p and min-p, after a repetition penalty. What the scheduler calls once per
// sequence per decode step.
//
// Order of operations (the one llama.cpp's default chain uses, so settings mean the same
// thing to users of either): repetition penalty on the logits of recently generated tokens
// -> top-k -> softmax at the temperature -> min-p -> top-p -> a draw from what is left.
// Temperature 0 means greedy (argmax; ties go to the lowest id) and ignores the other
// filters except the penalty.
//
// Deterministic: the same parameters, seed and logits give the same tokens on every run
// and platform (the random numbers come from a fixed SplitMix64 stream, not from <random>'s
// implementation-defined distributions).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "base/status.h"

namespace supercluster::engine {

struct SamplingParams {
  float temperature = 0.0f;         // 0: greedy
  int32_t top_k = 0;                // 0: off
  float top_p = 1.0f;               // 1: off
  float min_p = 0.0f;               // 0: off
  float repetition_penalty = 1.0f;  // 1: off; > 1 discourages repeats
  int32_t repetition_window = 64;   // how many recent tokens the penalty looks at
  uint64_t seed = 0;

  // kInvalidArgument naming the field: temperature < 0, top_p outside (0, 1], min_p outside
  // [0, 1), penalty <= 0, negative top_k or window, a non-finite value.
  base::Status Validate() const;
};

class Sampler {
 public:
  // Precondition: params.Validate() is OK.
  explicit Sampler(const SamplingParams& params);

  // Picks a token from `logits` (one per vocabulary entry). `recent` are the tokens the
  // penalty applies to (the caller passes the sequence so far; the last
  // repetition_window of them count). Precondition: logits is not empty.
  int32_t Sample(std::span<const float> logits, std::span<const int32_t> recent);

 private:
  double NextUniform();  // in [0, 1)

  SamplingParams params_;
  uint64_t state_;
  std::vector<std::pair<float, int32_t>> candidates_;  // reused between calls
};

}  // namespace supercluster::engine
