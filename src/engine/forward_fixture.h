// Forward-pass conformance fixtures: the logits an independent PyTorch reference
// (tools/reference/llama_reference.py) computes for random-weight models that
// `supercluster model synth` writes. Each fixture, tests/data/forward/<shape>-<type>.json
// (made by tools/reference/make_fixtures.py; see SOURCE.md there), names the synth shape,
// weight type and seed, the sha256 of the GGUF file they produce, a token sequence (BOS
// first), the float64 reference's logits of every position (stored as float32), its 8 greedy
// (argmax) continuation tokens and the tolerance an engine must meet.
//
// Test-only (linked by engine_forward_fixture_test and the forward-pass test, never by the
// binaries). The forward-pass test does, for each fixture:
//   path = SynthesizeFixtureModel(fixture, temp_dir)   // fails if the synth code drifted
//   logits = engine forward pass over fixture.tokens, every position, in one prefill
//   for each position p: MaxErrorRelativeToRowMax(fixture.logits[p], logits[p]) <= fixture.tolerance
//   greedy decoding from fixture.tokens equals the first ComparableGreedyTokens(fixture)
//   tokens of fixture.greedy_tokens.
//
// Conventions the reference follows (llama.cpp's): see tools/reference/llama_reference.py.
// In short: GGUF ne[0] is the input (contiguous) dimension of a weight, so ne = [in, out] is
// an [out, in] matrix; RoPE rotates pairs (2i, 2i+1) for architecture "llama" and pairs
// (i, i + n_rot/2) for "qwen2", with angle p * base^(-2i/n_rot) / rope_freqs[i]; query head j
// reads key/value head j / (head_count / head_count_kv); softmax scale 1/sqrt(head_dim); the
// head is output.weight, or token_embd.weight when the file has none.
//
// Tolerances (the fixture's `tolerance`, the same as ForwardTolerance(type)), on the metric
// max_i |engine_i - reference_i| / max_i |reference_i| for each position's row of logits:
//   f32   1e-4   float32 arithmetic measures ~5e-7. Keep the KV cache in f32 for F32 models:
//                an f16 KV cache alone measures ~5e-4 and fails.
//   f16   4e-3   These cover an engine that does what llama.cpp's CPU backend does: the
//   bf16  2e-2   input of each weight matmul rounded to the weight's dot-product type (f16,
//   q8_0  6e-2   bf16, or Q8_0 blocks for Q8_0 and Q4_0 weights), float32 arithmetic, K/V
//   q4_0  6e-2   possibly in f16. The reference simulates that on every fixture (`measured`
//                in the JSON; worst cases f16 1.6e-3, bf16 7.6e-3, q8_0 2.5e-2, q4_0 2.5e-2)
//                and the tolerances are at least 2x the worst. The reference logits are
//                always computed on the SAME quantized weights (dequantized exactly), so
//                the tolerance is only the engine's own arithmetic. The quantized tolerances
//                are loose by nature (activation quantization); the f32 fixtures are the
//                precise check of the architecture, and a wrong block layout or scale in a
//                quantized kernel still gives errors of order 1.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "base/status.h"
#include "engine/tensor_type.h"

namespace supercluster::engine {

struct ForwardFixture {
  std::string path;          // the JSON file it came from
  std::string shape;         // a SynthShape name ("test-qwen2")
  TensorType type = TensorType::kF32;
  uint64_t seed = 0;
  std::string gguf_sha256;   // 64 lower-case hex digits
  uint64_t gguf_bytes = 0;
  std::string architecture;  // "llama" or "qwen2"
  uint32_t vocab_size = 0;
  std::vector<int32_t> tokens;              // the prompt, BOS first
  std::vector<std::vector<float>> logits;   // [position][vocab], one row per token
  std::vector<int32_t> greedy_tokens;       // argmax continuation after `tokens`
  std::vector<double> greedy_margins;       // best minus second-best logit at each step
  double tolerance = 0;                     // see the table above
};

// Parses and checks a fixture: every field present with the right type, the format tag,
// the type name, the sha256 spelling, tokens and greedy tokens within the vocabulary, the
// logits a whole [tokens][vocab] array of finite floats. Errors name the file and the field.
base::Result<ForwardFixture> LoadForwardFixture(const std::string& path);

// The *.json files in `directory`, sorted by name.
base::Result<std::vector<std::string>> ListForwardFixtures(const std::string& directory);

// The tolerance for weight type `type` (table above); 0 for types without fixtures.
double ForwardTolerance(TensorType type);

// max_i |actual_i - expected_i| / max_i |expected_i|. Precondition: same non-zero size and
// expected not all zero. A NaN in `actual` gives infinity (never passes a tolerance).
double MaxErrorRelativeToRowMax(std::span<const float> expected, std::span<const float> actual);

// How many leading greedy tokens an engine within `tolerance` must reproduce: up to (not
// including) the first step whose margin is below 2 * tolerance * (largest |logit| of the
// fixture), where an engine's rounding may legitimately pick the runner-up.
size_t ComparableGreedyTokens(const ForwardFixture& fixture, double tolerance);

// Writes the fixture's model with WriteSynthModel into `directory` and checks that its
// sha256 and size are the fixture's. Returns the GGUF file's path.
base::Result<std::string> SynthesizeFixtureModel(const ForwardFixture& fixture,
                                                 const std::string& directory);

// Lower-case hex sha256 of a file's contents.
base::Result<std::string> Sha256OfFile(const std::string& path);

#ifdef SUPERCLUSTER_SOURCE_DIR
// tests/data/forward in the source tree (test targets define SUPERCLUSTER_SOURCE_DIR).
inline std::string ForwardFixtureDirectory() {
  return std::string(SUPERCLUSTER_SOURCE_DIR) + "/tests/data/forward";
}
#endif

}  // namespace supercluster::engine
