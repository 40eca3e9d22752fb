// The forward-pass fixtures (tests/data/forward) are consistent with today's model synth
// (the GGUF files it writes have the sha256 each fixture was made from, so the fixtures cannot
// silently drift from the synth code), cover the shapes and types issue 3 asks for, and are
// well-formed; the fixture loader rejects malformed fixtures; the synth test shapes have the
// features they exist for.
#include "engine/forward_fixture.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <cstring>
#include <map>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "engine/model_file.h"
#include "engine/model_synth.h"

namespace supercluster::engine {
namespace {

using ::testing::HasSubstr;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string WriteTemp(const std::string& name, const std::string& contents) {
  std::string path = ::testing::TempDir() + "/" + name;
  std::ofstream(path, std::ios::binary) << contents;
  return path;
}

std::vector<ForwardFixture> AllFixtures() {
  auto paths = ListForwardFixtures(ForwardFixtureDirectory());
  EXPECT_TRUE(paths.ok()) << paths.status().message();
  std::vector<ForwardFixture> fixtures;
  if (!paths.ok()) return fixtures;
  for (const std::string& path : *paths) {
    auto fixture = LoadForwardFixture(path);
    EXPECT_TRUE(fixture.ok()) << fixture.status().message();
    if (fixture.ok()) fixtures.push_back(*fixture);
  }
  return fixtures;
}

TEST(ForwardFixtureTest, CoverTheShapesAndTypesTheIssueAsksFor) {
  std::map<std::string, std::set<TensorType>> types_by_shape;
  for (const ForwardFixture& f : AllFixtures()) types_by_shape[f.shape].insert(f.type);
  ASSERT_GE(types_by_shape.size(), 3u);
  bool gqa = false, bias = false, tied = false, theta = false, rope_freqs = false, neox = false;
  for (const auto& [name, types] : types_by_shape) {
    for (TensorType type : {TensorType::kF32, TensorType::kF16, TensorType::kQ8_0}) {
      EXPECT_TRUE(types.count(type)) << name << " has no " << TensorTypeName(type) << " fixture";
    }
    auto shape = FindSynthShape(name);
    ASSERT_TRUE(shape.ok()) << shape.status().message();
    gqa |= shape->head_count_kv < shape->head_count;
    bias |= shape->qkv_bias;
    tied |= shape->tied_embeddings;
    theta |= shape->rope_freq_base != 10000.0f;
    rope_freqs |= shape->llama3_rope_factor > 0;
    neox |= shape->architecture == "qwen2";
  }
  EXPECT_TRUE(gqa && bias && tied && theta && rope_freqs && neox);
}

TEST(ForwardFixtureTest, TodaysSynthWritesTheFilesTheFixturesWereMadeFrom) {
  std::vector<ForwardFixture> fixtures = AllFixtures();
  ASSERT_FALSE(fixtures.empty());
  for (const ForwardFixture& f : fixtures) {
    auto path = SynthesizeFixtureModel(f, ::testing::TempDir());
    ASSERT_TRUE(path.ok()) << path.status().message();
    auto model = ModelFile::Open(*path);
    ASSERT_TRUE(model.ok()) << model.status().message();
    EXPECT_EQ((*model)->hyper_parameters().architecture, f.architecture) << f.path;
    EXPECT_EQ((*model)->hyper_parameters().vocab_size, f.vocab_size) << f.path;
    EXPECT_EQ((*model)->FindTensor("blk.0.attn_q.weight")->type, f.type) << f.path;
  }
}

TEST(ForwardFixtureTest, AreWellFormed) {
  for (const ForwardFixture& f : AllFixtures()) {
    SCOPED_TRACE(f.path);
    EXPECT_EQ(f.path.substr(f.path.rfind('/') + 1),
              f.shape + "-" + std::string(TensorTypeName(f.type)) + ".json");
    EXPECT_EQ(f.tokens.front(), 1) << "the prompt starts with BOS";
    EXPECT_GE(f.tokens.size(), 8u);
    EXPECT_EQ(f.greedy_tokens.size(), 8u);
    EXPECT_EQ(f.tolerance, ForwardTolerance(f.type));
    for (const std::vector<float>& row : f.logits) {
      auto [low, high] = std::minmax_element(row.begin(), row.end());
      EXPECT_GT(*high - *low, 0.1f) << "a row of logits is (nearly) constant";
    }
    // The first greedy token is the argmax of the last position's logits, with the recorded
    // margin over the runner-up: the logits and the continuation come from the same model.
    const std::vector<float>& last = f.logits.back();
    std::vector<float> sorted = last;
    std::sort(sorted.rbegin(), sorted.rend());
    EXPECT_EQ(std::max_element(last.begin(), last.end()) - last.begin(), f.greedy_tokens[0]);
    EXPECT_NEAR(sorted[0] - sorted[1], f.greedy_margins[0], 1e-5);
  }
}

TEST(ForwardFixtureTest, SameShapeDifferentTypesAgreeRoughly) {
  // The quantized files hold the f32 weights rounded, so their logits are close to the f32
  // fixture's: a fixture computed from the wrong file would not be.
  std::map<std::string, const ForwardFixture*> f32_by_shape;
  std::vector<ForwardFixture> fixtures = AllFixtures();
  for (const ForwardFixture& f : fixtures) {
    if (f.type == TensorType::kF32) f32_by_shape[f.shape] = &f;
  }
  for (const ForwardFixture& f : fixtures) {
    const ForwardFixture* base = f32_by_shape[f.shape];
    ASSERT_NE(base, nullptr) << f.shape;
    ASSERT_EQ(base->tokens, f.tokens);
    // Measured when the fixtures were made: f16 1e-3, bf16 1.1e-2, q8_0 1.6e-2, q4_0 0.30;
    // logits of a different model differ by more than 1.
    const std::map<TensorType, double> bounds = {{TensorType::kF32, 0.0},   {TensorType::kF16, 0.005},
                                                 {TensorType::kBF16, 0.05}, {TensorType::kQ8_0, 0.05},
                                                 {TensorType::kQ4_0, 0.6}};
    double bound = bounds.at(f.type);
    for (size_t p = 0; p < f.logits.size(); ++p) {
      EXPECT_LE(MaxErrorRelativeToRowMax(base->logits[p], f.logits[p]), bound) << f.path << " position " << p;
    }
  }
}

TEST(ForwardFixtureTest, MetricAndGreedyPrefix) {
  std::vector<float> expected = {1.0f, -4.0f, 2.0f};
  EXPECT_DOUBLE_EQ(MaxErrorRelativeToRowMax(expected, expected), 0.0);
  EXPECT_DOUBLE_EQ(MaxErrorRelativeToRowMax(expected, std::vector<float>{1.0f, -4.0f, 3.0f}), 0.25);
  EXPECT_TRUE(std::isinf(MaxErrorRelativeToRowMax(expected, std::vector<float>{NAN, -4.0f, 2.0f})));

  ForwardFixture f;
  f.logits = {{2.0f, -1.0f}};
  f.greedy_tokens = {0, 1, 0};
  f.greedy_margins = {0.5, 0.3, 0.01};
  EXPECT_EQ(ComparableGreedyTokens(f, 0.01), 2u);   // threshold 0.04
  EXPECT_EQ(ComparableGreedyTokens(f, 0.001), 3u);  // threshold 0.004
  EXPECT_EQ(ComparableGreedyTokens(f, 0.1), 1u);    // threshold 0.4
}

class ForwardFixtureLoaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto paths = ListForwardFixtures(ForwardFixtureDirectory());
    ASSERT_TRUE(paths.ok() && !paths->empty());
    valid_ = nlohmann::json::parse(ReadAll(paths->front()));
  }

  // Loads `json` written to a temp file; returns the error message ("" when it loads).
  std::string Load(const nlohmann::json& json) { return LoadText(json.dump()); }
  std::string LoadText(const std::string& text) {
    auto loaded = LoadForwardFixture(WriteTemp("fixture.json", text));
    return loaded.ok() ? "" : loaded.status().message();
  }

  nlohmann::json valid_;
};

TEST_F(ForwardFixtureLoaderTest, RejectsMalformedFixtures) {
  EXPECT_EQ(Load(valid_), "");
  EXPECT_THAT(LoadForwardFixture("/nonexistent/fixture.json").status().message(), HasSubstr("cannot open"));
  EXPECT_THAT(LoadText("{\"format\": "), HasSubstr("not a JSON object"));
  EXPECT_THAT(LoadText("[1, 2]"), HasSubstr("not a JSON object"));
  EXPECT_THAT(LoadText(""), HasSubstr("not a JSON object"));

  auto with = [&](const std::string& field, nlohmann::json value) {
    nlohmann::json copy = valid_;
    copy[field] = std::move(value);
    return Load(copy);
  };
  auto without = [&](const std::string& field) {
    nlohmann::json copy = valid_;
    copy.erase(field);
    return Load(copy);
  };
  for (const char* field : {"format", "shape", "type", "seed", "gguf_sha256", "gguf_bytes", "architecture",
                            "vocab_size", "tokens", "logits", "greedy_tokens", "greedy_margins", "tolerance"}) {
    EXPECT_THAT(without(field), HasSubstr(std::string("'") + field + "' is missing"));
  }
  EXPECT_THAT(with("format", "something-else/1"), HasSubstr("'format'"));
  EXPECT_THAT(with("type", "q6_K"), HasSubstr("'type'"));
  EXPECT_THAT(with("type", 8), HasSubstr("'type' is not a string"));
  EXPECT_THAT(with("seed", -1), HasSubstr("'seed'"));
  EXPECT_THAT(with("gguf_sha256", "ABC"), HasSubstr("'gguf_sha256'"));
  EXPECT_THAT(with("gguf_sha256", std::string(64, 'G')), HasSubstr("'gguf_sha256'"));
  EXPECT_THAT(with("vocab_size", 0), HasSubstr("'vocab_size'"));
  EXPECT_THAT(with("vocab_size", 1ull << 40), HasSubstr("'vocab_size'"));
  EXPECT_THAT(with("tokens", nlohmann::json::array()), HasSubstr("'tokens'"));
  EXPECT_THAT(with("tokens", {1, 2, valid_["vocab_size"].get<int>()}), HasSubstr("'tokens'"));
  EXPECT_THAT(with("tokens", {1, -2}), HasSubstr("'tokens'"));
  EXPECT_THAT(with("tokens", {1, "x"}), HasSubstr("'tokens'"));
  EXPECT_THAT(with("greedy_tokens", {1, 2}), HasSubstr("'greedy_margins'"));
  nlohmann::json margins = valid_["greedy_margins"];
  margins[0] = -1;
  EXPECT_THAT(with("greedy_margins", margins), HasSubstr("'greedy_margins'"));
  EXPECT_THAT(with("tolerance", 0), HasSubstr("'tolerance'"));
  EXPECT_THAT(with("tolerance", "1e-4"), HasSubstr("'tolerance'"));

  // The logits: bad base64, a length that is not tokens x vocab, a NaN.
  std::string logits = valid_["logits"].get<std::string>();
  EXPECT_THAT(with("logits", logits.substr(1)), HasSubstr("not valid base64"));
  EXPECT_THAT(with("logits", "!" + logits.substr(1)), HasSubstr("not valid base64"));
  EXPECT_THAT(with("logits", logits.substr(0, logits.size() - 8)), HasSubstr("bytes, expected"));
  EXPECT_THAT(with("logits", ""), HasSubstr("bytes, expected"));
  EXPECT_THAT(with("logits", "AADAfwAA" + logits.substr(8)), HasSubstr("non-finite value at position 0, token 0"));
  nlohmann::json longer = valid_["tokens"];
  longer.push_back(3);
  EXPECT_THAT(with("tokens", longer), HasSubstr("bytes, expected"));
}

TEST(ForwardFixtureSynthTest, ADriftedSynthIsReported) {
  auto paths = ListForwardFixtures(ForwardFixtureDirectory());
  ASSERT_TRUE(paths.ok() && !paths->empty());
  auto fixture = LoadForwardFixture(paths->front());
  ASSERT_TRUE(fixture.ok());
  fixture->seed += 1;  // a different file than the fixture was made from
  EXPECT_THAT(SynthesizeFixtureModel(*fixture, ::testing::TempDir()).status().message(),
              HasSubstr("regenerate the fixtures"));
  fixture->shape = "no-such-shape";
  EXPECT_THAT(SynthesizeFixtureModel(*fixture, ::testing::TempDir()).status().message(),
              HasSubstr("unknown model shape 'no-such-shape'"));
}

TEST(ForwardFixtureSynthTest, TestShapesHaveWhatTheyExistFor) {
  for (const std::string& name : SynthShapeNames()) {
    if (name == "1b") continue;  // gigabytes; its parameter count is tested elsewhere
    SynthShape shape = *FindSynthShape(name);
    std::string path = ::testing::TempDir() + "/shape-" + name + ".gguf";
    ASSERT_TRUE(WriteSynthModel({shape, TensorType::kQ8_0, 5}, path).ok()) << name;
    auto opened = ModelFile::Open(path);
    ASSERT_TRUE(opened.ok()) << opened.status().message();
    const ModelFile& m = **opened;
    const ModelHyperParameters& h = m.hyper_parameters();
    SCOPED_TRACE(name);
    EXPECT_EQ(m.parameter_count(), SynthParameterCount(shape));
    EXPECT_EQ(h.architecture, shape.architecture);
    EXPECT_EQ(h.head_count_kv, shape.head_count_kv);
    EXPECT_EQ(h.rope_freq_base, shape.rope_freq_base);
    EXPECT_EQ(h.rms_norm_epsilon, shape.rms_norm_epsilon);
    EXPECT_EQ(h.tie_word_embeddings, shape.tied_embeddings);
    EXPECT_EQ(m.FindTensor("output.weight") == nullptr, shape.tied_embeddings);
    const ModelTensor* bias = m.FindTensor("blk.1.attn_k.bias");
    EXPECT_EQ(bias != nullptr, shape.qkv_bias);
    if (bias) {
      EXPECT_EQ(bias->type, TensorType::kF32);
      EXPECT_EQ(bias->shape, (std::vector<uint64_t>{shape.embedding_length / shape.head_count * shape.head_count_kv}));
    }
    // Norm weights: all ones for tiny, varied around one for the test shapes.
    const ModelTensor* norm = m.FindTensor("blk.0.ffn_norm.weight");
    ASSERT_NE(norm, nullptr);
    const float* values = reinterpret_cast<const float*>(norm->data);
    auto [low, high] = std::minmax_element(values, values + norm->element_count);
    if (shape.noisy_norms) {
      EXPECT_GE(*low, 0.5f);
      EXPECT_LT(*high, 1.5f);
      EXPECT_GT(*high - *low, 0.5f);
    } else {
      EXPECT_EQ(*low, 1.0f);
      EXPECT_EQ(*high, 1.0f);
    }
    const ModelTensor* rope_freqs = m.FindTensor("rope_freqs.weight");
    EXPECT_EQ(rope_freqs != nullptr, shape.llama3_rope_factor > 0);
    if (rope_freqs) {
      std::vector<float> expected = SynthRopeFrequencyFactors(shape);
      ASSERT_EQ(rope_freqs->element_count, expected.size());
      EXPECT_EQ(std::memcmp(rope_freqs->data, expected.data(), 4 * expected.size()), 0);
    }
  }
}

TEST(ForwardFixtureSynthTest, Llama3FrequencyFactors) {
  // Llama 3.1's own numbers (factor 8, original context 8192, theta 500000, head_dim 128):
  // the fastest rotations keep factor 1, the slowest get 8, and the band between blends.
  SynthShape shape = *FindSynthShape("test-llama3");
  shape.embedding_length = 128 * shape.head_count;
  shape.llama3_rope_original_context = 8192;
  std::vector<float> factors = SynthRopeFrequencyFactors(shape);
  ASSERT_EQ(factors.size(), 64u);
  EXPECT_EQ(factors.front(), 1.0f);
  EXPECT_EQ(factors.back(), 8.0f);
  int blended = 0;
  for (size_t i = 1; i < factors.size(); ++i) {
    EXPECT_GE(factors[i], factors[i - 1]);
    blended += factors[i] > 1.0f && factors[i] < 8.0f;
  }
  EXPECT_GT(blended, 0);
  shape.llama3_rope_factor = 0;
  EXPECT_TRUE(SynthRopeFrequencyFactors(shape).empty());
}

}  // namespace
}  // namespace supercluster::engine
