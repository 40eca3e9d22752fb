// ModelFile over GGUF: the synthesized Llama models read back with the right
// hyper-parameters, tensor table, parameter count and data; synthesis is deterministic in
// the seed; missing or malformed hyper-parameter keys are named.
#include "engine/model_file.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <cmath>
#include <fstream>
#include <limits>
#include <set>

#include "engine/gguf_file.h"
#include "engine/gguf_writer.h"
#include "engine/model_synth.h"
#include "engine/model_tokenizer.h"

namespace supercluster::engine {
namespace {

using ::testing::HasSubstr;

std::string TempPath(const std::string& name) { return ::testing::TempDir() + "/" + name; }

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

std::string Synth(TensorType type, uint64_t seed, const std::string& name) {
  SynthOptions options{*FindSynthShape("tiny"), type, seed};
  std::string path = TempPath(name);
  base::Status written = WriteSynthModel(options, path);
  EXPECT_TRUE(written.ok()) << written.message();
  return path;
}

TEST(ModelSynthTest, ShapesAndParameterCounts) {
  auto one_b = FindSynthShape("1b");
  ASSERT_TRUE(one_b.ok());
  // TinyLlama-1.1B: 1,100,048,384 parameters.
  EXPECT_EQ(SynthParameterCount(*one_b), 1100048384u);
  EXPECT_THAT(FindSynthShape("7b").status().message(), HasSubstr("unknown model shape '7b'"));
  SynthOptions options{*FindSynthShape("tiny"), TensorType::kQ6_K, 1};
  EXPECT_FALSE(WriteSynthModel(options, TempPath("q6k.gguf")).ok());
}

class SynthTypeTest : public ::testing::TestWithParam<TensorType> {};

TEST_P(SynthTypeTest, ReadsBackAsTheShapeSays) {
  TensorType type = GetParam();
  std::string path = Synth(type, 42, "synth_" + std::string(TensorTypeName(type)) + ".gguf");
  auto model = ModelFile::Open(path);
  ASSERT_TRUE(model.ok()) << model.status().message();
  const ModelFile& m = **model;
  SynthShape shape = *FindSynthShape("tiny");
  const ModelHyperParameters& h = m.hyper_parameters();
  EXPECT_EQ(m.format(), ModelFile::Format::kGguf);
  EXPECT_EQ(h.architecture, "llama");
  EXPECT_EQ(h.embedding_length, shape.embedding_length);
  EXPECT_EQ(h.block_count, shape.block_count);
  EXPECT_EQ(h.head_count, shape.head_count);
  EXPECT_EQ(h.head_count_kv, shape.head_count_kv);
  EXPECT_EQ(h.feed_forward_length, shape.feed_forward_length);
  EXPECT_EQ(h.vocab_size, shape.vocab_size);
  EXPECT_EQ(h.context_length, shape.context_length);
  EXPECT_EQ(h.rope_dimension_count, shape.embedding_length / shape.head_count);
  EXPECT_EQ(h.rope_freq_base, 10000.0f);
  EXPECT_FLOAT_EQ(h.rms_norm_epsilon, 1e-5f);
  EXPECT_FALSE(h.tie_word_embeddings);
  EXPECT_EQ(m.tensors().size(), 3u + 9u * shape.block_count);
  EXPECT_EQ(m.parameter_count(), SynthParameterCount(shape));
  EXPECT_EQ(m.file_bytes(), std::filesystem::file_size(path));

  const ModelTensor* q = m.FindTensor("blk.1.attn_q.weight");
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q->type, type);
  EXPECT_EQ(q->shape, (std::vector<uint64_t>{64, 64}));
  const ModelTensor* k = m.FindTensor("blk.0.attn_k.weight");
  EXPECT_EQ(k->shape, (std::vector<uint64_t>{64, 32}));  // 2 kv heads of 16
  const ModelTensor* down = m.FindTensor("blk.0.ffn_down.weight");
  EXPECT_EQ(down->shape, (std::vector<uint64_t>{192, 64}));
  const ModelTensor* norm = m.FindTensor("output_norm.weight");
  EXPECT_EQ(norm->type, TensorType::kF32);
  std::vector<float> row(64);
  ASSERT_TRUE(DequantizeRow(norm->type, norm->data, 64, row.data()).ok());
  EXPECT_EQ(row[63], 1.0f);
  // Weights are small noise within 1/sqrt(columns) (plus quantization error), not zeros.
  ASSERT_TRUE(DequantizeRow(q->type, q->data + *RowByteSize(type, 64) * 5, 64, row.data()).ok());
  float max_abs = 0;
  for (float value : row) max_abs = std::max(max_abs, std::fabs(value));
  EXPECT_GT(max_abs, 0.05f);
  EXPECT_LT(max_abs, 0.14f);

  // The vocabulary: specials, 256 byte tokens, then made-up pieces.
  const GgufFile& gguf = *m.gguf();
  EXPECT_EQ(*gguf.GetString("tokenizer.ggml.model"), "llama");
  auto tokens = gguf.GetStringArray("tokenizer.ggml.tokens");
  ASSERT_TRUE(tokens.ok());
  ASSERT_EQ(tokens->size(), shape.vocab_size);
  EXPECT_EQ((*tokens)[1], "<s>");
  EXPECT_EQ((*tokens)[3 + 0x41], "<0x41>");
  EXPECT_EQ((*tokens)[259], "\xe2\x96\x81" "a");
  EXPECT_EQ(std::set<std::string_view>(tokens->begin(), tokens->end()).size(), tokens->size());
  EXPECT_EQ(gguf.GetFloat32Array("tokenizer.ggml.scores")->size(), shape.vocab_size);
  EXPECT_EQ((*gguf.GetInt32Array("tokenizer.ggml.token_type"))[10], 6);
  EXPECT_EQ(*gguf.GetUint32("tokenizer.ggml.eos_token_id"), 2u);
}

INSTANTIATE_TEST_SUITE_P(Types, SynthTypeTest,
                         ::testing::Values(TensorType::kF32, TensorType::kF16, TensorType::kBF16,
                                           TensorType::kQ8_0, TensorType::kQ4_0),
                         [](const auto& info) { return std::string(TensorTypeName(info.param)); });

TEST(ModelSynthTest, DeterministicInTheSeed) {
  std::string a = ReadAll(Synth(TensorType::kQ8_0, 7, "seed7a.gguf"));
  std::string b = ReadAll(Synth(TensorType::kQ8_0, 7, "seed7b.gguf"));
  std::string c = ReadAll(Synth(TensorType::kQ8_0, 8, "seed8.gguf"));
  EXPECT_EQ(a, b);
  ASSERT_EQ(a.size(), c.size());
  EXPECT_NE(a, c);
}

TEST(ModelFileTest, MissingAndMalformedHyperParameters) {
  GgufWriter writer;
  writer.Add("general.architecture", GgufString("llama"));
  writer.Add("llama.context_length", GgufUint32(16));
  std::string path = TempPath("no_hparams.gguf");
  ASSERT_TRUE(writer.WriteFile(path).ok());
  auto model = ModelFile::Open(path);
  ASSERT_FALSE(model.ok());
  EXPECT_EQ(model.status().message(), path + ": metadata key 'llama.embedding_length' is missing");

  GgufWriter wrong;
  wrong.Add("general.architecture", GgufUint32(1));
  ASSERT_TRUE(wrong.WriteFile(path).ok());
  EXPECT_THAT(ModelFile::Open(path).status().message(),
              HasSubstr("metadata key 'general.architecture' is uint32, want string"));

  GgufWriter heads;
  heads.Add("general.architecture", GgufString("llama"));
  for (const char* key : {"llama.context_length", "llama.embedding_length", "llama.block_count",
                          "llama.feed_forward_length"}) {
    heads.Add(key, GgufUint32(64));
  }
  heads.Add("llama.attention.head_count", GgufUint32(4));
  heads.Add("llama.attention.head_count_kv", GgufUint32(3));
  heads.Add("llama.attention.layer_norm_rms_epsilon", GgufFloat32(1e-5f));
  ASSERT_TRUE(heads.WriteFile(path).ok());
  EXPECT_THAT(ModelFile::Open(path).status().message(),
              HasSubstr("head count 4 is not a multiple of the key/value head count 3"));
}

// One file per test: ctest may run them at once.
std::string HyperParameterPath() {
  return TempPath(std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) +
                  ".gguf");
}

// A GGUF file with llama hyper-parameters the checks accept and no tensors, with the keys in
// `changes` (of those or others) set to their values.
using Entries = std::vector<std::pair<std::string, GgufEncodedValue>>;
std::string HyperParameterFile(const Entries& changes) {
  Entries entries = {
      {"general.architecture", GgufString("llama")},
      {"llama.context_length", GgufUint32(64)},
      {"llama.embedding_length", GgufUint32(64)},
      {"llama.block_count", GgufUint32(1)},
      {"llama.feed_forward_length", GgufUint32(128)},
      {"llama.attention.head_count", GgufUint32(4)},
      {"llama.attention.layer_norm_rms_epsilon", GgufFloat32(1e-5f)},
      {"llama.rope.freq_base", GgufFloat32(10000.0f)}};
  for (const auto& change : changes) {
    auto found = std::find_if(entries.begin(), entries.end(),
                              [&](const auto& entry) { return entry.first == change.first; });
    if (found != entries.end()) {
      found->second = change.second;
    } else {
      entries.push_back(change);
    }
  }
  GgufWriter writer;
  for (auto& [name, entry] : entries) writer.Add(name, entry);
  std::string path = HyperParameterPath();
  EXPECT_TRUE(writer.WriteFile(path).ok());
  return path;
}

TEST(ModelFileTest, ContextLongerThanPositionsCanCount) {
  // 2^31 and more wrapped negative in the engine's int32 positions: every prompt was
  // refused as longer than a "-1-token context".
  std::string path = HyperParameterFile({{"llama.context_length", GgufUint32(0xFFFFFFFFu)}});
  EXPECT_EQ(ModelFile::Open(path).status().message(),
            path + ": metadata key 'llama.context_length' is 4294967295, over the 2147483647 "
                   "tokens of context the engine can count");
  std::string first_refused = HyperParameterFile({{"llama.context_length", GgufUint32(1u << 31)}});
  EXPECT_FALSE(ModelFile::Open(first_refused).ok());
  std::string largest_path = HyperParameterFile({{"llama.context_length", GgufUint32(INT32_MAX)}});
  auto largest = ModelFile::Open(largest_path);
  ASSERT_TRUE(largest.ok()) << largest.status().message();
  EXPECT_EQ((*largest)->hyper_parameters().context_length, static_cast<uint32_t>(INT32_MAX));
}

TEST(ModelFileTest, RopeDimensionsThatDoNotFitAHead) {
  // The head dimension of HyperParameterFile's model is 64 / 4 = 16. 2^31 went negative as
  // an int in the backend and aborted generation.
  for (uint32_t dimensions : {1u << 31, 0xFFFFFFFFu, 17u, 18u, 3u}) {
    std::string path = HyperParameterFile({{"llama.rope.dimension_count", GgufUint32(dimensions)}});
    EXPECT_EQ(ModelFile::Open(path).status().message(),
              path + ": metadata key 'llama.rope.dimension_count' is " +
                  std::to_string(dimensions) + "; want an even number up to the head dimension 16");
  }
  for (uint32_t dimensions : {16u, 8u, 2u}) {
    std::string path = HyperParameterFile({{"llama.rope.dimension_count", GgufUint32(dimensions)}});
    EXPECT_TRUE(ModelFile::Open(path).ok()) << dimensions;
  }
}

TEST(ModelFileTest, NormEpsilonAndRopeBaseThatArithmeticCannotUse) {
  // Read unchecked, these gave garbage text with exit 0.
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  const std::string epsilon = "llama.attention.layer_norm_rms_epsilon";
  for (auto [value, text] : {std::pair{nan, "nan"}, {-1e-5f, "-1e-05"}, {inf, "inf"}}) {
    std::string path = HyperParameterFile({{epsilon, GgufFloat32(value)}});
    EXPECT_EQ(ModelFile::Open(path).status().message(),
              path + ": metadata key '" + epsilon + "' is " + text + "; want a finite number >= 0");
  }
  EXPECT_TRUE(ModelFile::Open(HyperParameterFile({{epsilon, GgufFloat32(0.0f)}})).ok());
  for (auto [value, text] :
       {std::pair{0.0f, "0"}, {-10000.0f, "-10000"}, {nan, "nan"}, {inf, "inf"}}) {
    std::string path = HyperParameterFile({{"llama.rope.freq_base", GgufFloat32(value)}});
    EXPECT_EQ(ModelFile::Open(path).status().message(),
              path + ": metadata key 'llama.rope.freq_base' is " + text +
                  "; want a finite number > 0");
  }
}

TEST(ModelFileTest, TokenIdsOutsideTheVocabulary) {
  // Ids were cast to int32 unchecked: 0xFFFFFFF0 was reported as -16, 0xFFFFFFFF became
  // "no token" in silence, and an id just past the vocabulary passed until Tokenizer::Build.
  auto vocab_with = [](const char* key, uint32_t id) {
    auto model = ModelFile::Open(HyperParameterFile(
        {{"tokenizer.ggml.model", GgufString("llama")},
         {"tokenizer.ggml.tokens", GgufStringArray({"<unk>", "<s>", "</s>", "a"})},
         {key, GgufUint32(id)}}));
    EXPECT_TRUE(model.ok()) << model.status().message();
    return LoadTokenizerVocab(**model);
  };
  std::string path = HyperParameterPath();
  EXPECT_EQ(vocab_with("tokenizer.ggml.bos_token_id", 0xFFFFFFF0u).status().message(),
            path + ": tokenizer.ggml.bos_token_id 4294967280 is not a token id: "
                   "tokenizer.ggml.tokens has 4 tokens");
  EXPECT_EQ(vocab_with("tokenizer.ggml.eos_token_id", 0xFFFFFFFFu).status().message(),
            path + ": tokenizer.ggml.eos_token_id 4294967295 is not a token id: "
                   "tokenizer.ggml.tokens has 4 tokens");
  EXPECT_THAT(vocab_with("tokenizer.ggml.unknown_token_id", 4).status().message(),
              HasSubstr("tokenizer.ggml.unknown_token_id 4 is not a token id"));
  EXPECT_THAT(vocab_with("tokenizer.ggml.padding_token_id", 1u << 31).status().message(),
              HasSubstr("tokenizer.ggml.padding_token_id 2147483648 is not a token id"));
  auto last = vocab_with("tokenizer.ggml.eos_token_id", 3);
  ASSERT_TRUE(last.ok()) << last.status().message();
  EXPECT_EQ(last->eos_id, 3);
}

TEST(ModelFileTest, NeitherFormat) {
  std::string path = TempPath("notes.txt");
  std::ofstream(path) << "hello";
  EXPECT_THAT(ModelFile::Open(path).status().message(), HasSubstr("neither a GGUF file"));
  EXPECT_EQ(ModelFile::Open(TempPath("absent.gguf")).status().code(), base::StatusCode::kNotFound);
}

}  // namespace
}  // namespace supercluster::engine
