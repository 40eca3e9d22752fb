// ModelFile over GGUF: the synthesized Llama models read back with the right
// hyper-parameters, tensor table, parameter count and data; synthesis is deterministic in
// the seed; missing or malformed hyper-parameter keys are named.
#include "engine/model_file.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <cmath>
#include <fstream>
#include <set>

#include "engine/gguf_file.h"
#include "engine/gguf_writer.h"
#include "engine/model_synth.h"

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

TEST(ModelFileTest, NeitherFormat) {
  std::string path = TempPath("notes.txt");
  std::ofstream(path) << "hello";
  EXPECT_THAT(ModelFile::Open(path).status().message(), HasSubstr("neither a GGUF file"));
  EXPECT_EQ(ModelFile::Open(TempPath("absent.gguf")).status().code(), base::StatusCode::kNotFound);
}

}  // namespace
}  // namespace supercluster::engine
