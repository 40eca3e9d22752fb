// safetensors reader: a file whose every byte is written out here from the format spec
// (huggingface/safetensors README), sharded models with an index, config.json, and hostile
// headers (each error names the file and the tensor or field; never a crash).
#include "engine/safetensors_file.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include "engine/model_file.h"

namespace supercluster::engine {
namespace {

using ::testing::HasSubstr;

std::span<const uint8_t> Bytes(const std::string& text) {
  return {reinterpret_cast<const uint8_t*>(text.data()), text.size()};
}

// 8-byte little-endian header length, the JSON header, the data.
std::string Build(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  uint64_t length = header.size();
  std::memcpy(out.data(), &length, 8);
  return out + header + data;
}

base::Status ParseExactCopy(const std::string& name, const std::string& bytes) {
  std::unique_ptr<uint8_t[]> copy(new uint8_t[bytes.size() + 1]);
  std::memcpy(copy.get(), bytes.data(), bytes.size());
  auto file = SafetensorsFile::Parse(name, {copy.get(), bytes.size()});
  if (!file.ok()) return file.status();
  volatile uint8_t sink = 0;
  for (const SafetensorsTensor& tensor : (*file)->tensors()) {
    if (tensor.byte_size > 0) sink = sink + tensor.data[0] + tensor.data[tensor.byte_size - 1];
  }
  return base::Status::Ok();
}

constexpr char kHeader[] =
    R"({"w":{"dtype":"F16","shape":[2,2],"data_offsets":[0,8]},)"
    R"("b":{"dtype":"BF16","shape":[2],"data_offsets":[8,12]},)"
    R"("s":{"dtype":"F32","shape":[],"data_offsets":[12,16]},"__metadata__":{"format":"pt"}})";

TEST(SafetensorsFileTest, ReadsAFileWrittenByHand) {
  // Header length 196 = 0xc4, then the header, then 16 bytes of data: f16 1, 2, -1, 0.5;
  // bf16 1, -3; f32 0.25.
  std::string file("\xc4\0\0\0\0\0\0\0", 8);
  file += kHeader;
  ASSERT_EQ(file.size(), 8u + 196u);
  file += std::string("\x00\x3c\x00\x40\x00\xbc\x00\x38", 8);
  file += std::string("\x80\x3f\x40\xc0", 4);
  file += std::string("\x00\x00\x80\x3e", 4);
  auto parsed = SafetensorsFile::Parse("model.safetensors", Bytes(file));
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  const SafetensorsFile& f = **parsed;
  ASSERT_EQ(f.tensors().size(), 3u);
  EXPECT_EQ(f.tensors()[0].name, "b");  // sorted by name
  EXPECT_EQ(f.metadata().at("format"), "pt");
  const SafetensorsTensor* w = f.FindTensor("w");
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->type, TensorType::kF16);
  EXPECT_EQ(w->shape, (std::vector<uint64_t>{2, 2}));
  EXPECT_EQ(w->byte_size, 8u);
  EXPECT_EQ(w->data, reinterpret_cast<const uint8_t*>(file.data()) + 8 + 196);
  float values[4];
  ASSERT_TRUE(DequantizeRow(w->type, w->data, 4, values).ok());
  EXPECT_THAT(values, ::testing::ElementsAre(1.0f, 2.0f, -1.0f, 0.5f));
  const SafetensorsTensor* b = f.FindTensor("b");
  ASSERT_TRUE(DequantizeRow(b->type, b->data, 2, values).ok());
  EXPECT_EQ(values[0], 1.0f);
  EXPECT_EQ(values[1], -3.0f);
  const SafetensorsTensor* s = f.FindTensor("s");
  EXPECT_TRUE(s->shape.empty());
  EXPECT_EQ(s->element_count, 1u);
  ASSERT_TRUE(DequantizeRow(s->type, s->data, 1, values).ok());
  EXPECT_EQ(values[0], 0.25f);
}

TEST(SafetensorsFileTest, MissingMetadataIsFine) {
  auto parsed = SafetensorsFile::Parse(
      "m.safetensors", Bytes(Build(R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})",
                                   std::string(4, '\0'))));
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  EXPECT_TRUE((*parsed)->metadata().empty());
}

std::string ErrorOf(const std::string& header, const std::string& data = std::string(16, '\0')) {
  base::Status status = ParseExactCopy("model.safetensors", Build(header, data));
  EXPECT_FALSE(status.ok()) << header;
  return status.message();
}

TEST(SafetensorsHostileTest, HeaderLength) {
  EXPECT_THAT(ParseExactCopy("model.safetensors", "\x01\x02").message(),
              HasSubstr("model.safetensors: header length: the file is 2 bytes"));
  std::string beyond = Build("{}", "");
  beyond[0] = 100;
  EXPECT_EQ(ParseExactCopy("model.safetensors", beyond).message(),
            "model.safetensors: header length 100 goes past the end of the file (10 bytes)");
  std::string absurd = Build("{}", "");
  uint64_t huge = 1ull << 62;
  std::memcpy(absurd.data(), &huge, 8);
  EXPECT_THAT(ParseExactCopy("model.safetensors", absurd).message(),
              HasSubstr("header length 4611686018427387904 is over the limit"));
}

TEST(SafetensorsHostileTest, HeaderNotAnObject) {
  EXPECT_EQ(ErrorOf("{\"a\":"), "model.safetensors: header is not valid JSON");
  EXPECT_EQ(ErrorOf("[1,2]"), "model.safetensors: header is not a JSON object");
  EXPECT_EQ(ErrorOf(R"({"t":5})"), "model.safetensors: tensor 't': is not an object");
  EXPECT_THAT(ErrorOf(R"({"__metadata__":{"k":1}})"), HasSubstr("'__metadata__' key 'k' is not a string"));
  // Deep nesting is an error (or parses), never a stack overflow.
  std::string deep = R"({"t":)" + std::string(100000, '[') + std::string(100000, ']') + "}";
  EXPECT_THAT(ErrorOf(deep), HasSubstr("tensor 't'"));
}

TEST(SafetensorsHostileTest, UnsupportedDtype) {
  EXPECT_EQ(ErrorOf(R"({"tok":{"dtype":"I64","shape":[2],"data_offsets":[0,16]}})"),
            "model.safetensors: tensor 'tok': dtype 'I64' is not supported (F32, F16 and BF16 are)");
  EXPECT_THAT(ErrorOf(R"({"t":{"shape":[2],"data_offsets":[0,16]}})"), HasSubstr("tensor 't': 'dtype' missing"));
}

TEST(SafetensorsHostileTest, BadShapes) {
  EXPECT_THAT(ErrorOf(R"({"t":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})"),
              HasSubstr("tensor 't': 'shape' holds a value that is not a non-negative integer"));
  EXPECT_THAT(ErrorOf(R"({"t":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}})"),
              HasSubstr("tensor 't': 'shape' element count overflows"));
  EXPECT_THAT(ErrorOf(R"({"t":{"dtype":"F32","shape":[2305843009213693952,4],"data_offsets":[0,4]}})"),
              HasSubstr("tensor 't': byte size overflows"));
  EXPECT_EQ(ErrorOf(R"({"t":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})"),
            "model.safetensors: tensor 't': 'data_offsets' span 8 bytes but the F32 shape needs 12");
}

TEST(SafetensorsHostileTest, BadOffsets) {
  EXPECT_THAT(ErrorOf(R"({"t":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}})"),
              HasSubstr("tensor 't': 'data_offsets' [8, 4) ends before it begins"));
  EXPECT_EQ(ErrorOf(R"({"t":{"dtype":"F32","shape":[8],"data_offsets":[0,32]}})"),
            "model.safetensors: tensor 't': 'data_offsets' [0, 32) extends past the end of the "
            "data (16 bytes)");
  EXPECT_THAT(ErrorOf(R"({"t":{"dtype":"F32","shape":[1],"data_offsets":[0]}})"),
              HasSubstr("tensor 't': 'data_offsets' must be [begin, end]"));
  EXPECT_THAT(ErrorOf(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                      R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})"),
              HasSubstr("tensor 'b': 'data_offsets' [4, 12) overlap tensor 'a'"));
}

TEST(SafetensorsHostileTest, DuplicateNames) {
  // JSON parsers keep one of two equal keys (nlohmann the last), so the first was dropped.
  EXPECT_EQ(ErrorOf(R"({"t":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                    R"("u":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},)"
                    R"("t":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})"),
            "model.safetensors: tensor 't': appears twice in the header");
  EXPECT_EQ(ErrorOf(R"({"__metadata__":{},"__metadata__":{"format":"pt"}})"),
            "model.safetensors: '__metadata__': appears twice in the header");
  // Equal keys in different objects are not duplicates.
  std::string nested = Build(R"({"__metadata__":{"t":"x"},"t":{"dtype":"F32","shape":[1],)"
                             R"("data_offsets":[0,4]}})", std::string(4, '\0'));
  EXPECT_TRUE(ParseExactCopy("m", nested).ok());
}

TEST(SafetensorsHostileTest, TruncationAndCorruption) {
  std::string file = Build(kHeader, std::string(16, '\x11'));
  ASSERT_TRUE(ParseExactCopy("m", file).ok());
  for (int i = 0; i < 50; ++i) {
    size_t length = file.size() * i / 50;
    EXPECT_FALSE(ParseExactCopy("m", file.substr(0, length)).ok()) << length;
  }
  std::mt19937_64 random(1126);
  for (int iteration = 0; iteration < 3000; ++iteration) {
    std::string bytes = file;
    for (int f = 0; f < 3; ++f) bytes[random() % bytes.size()] = static_cast<char>(random());
    (void)ParseExactCopy("m", bytes);  // must not crash or read out of bounds
  }
}

// --- sharded models and config.json -----------------------------------------------------

class SafetensorsModelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) /
           ("st_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void Write(const std::string& name, const std::string& content) {
    std::ofstream(dir_ / name, std::ios::binary) << content;
  }
  void WriteShards() {
    Write("model-00001-of-00002.safetensors",
          Build(R"({"model.embed_tokens.weight":{"dtype":"F16","shape":[3,2],"data_offsets":[0,12]}})",
                std::string(12, '\0')));
    Write("model-00002-of-00002.safetensors",
          Build(R"({"lm_head.weight":{"dtype":"BF16","shape":[3,2],"data_offsets":[0,12]},)"
                R"("model.norm.weight":{"dtype":"F32","shape":[2],"data_offsets":[12,20]}})",
                std::string(20, '\0')));
  }
  std::filesystem::path dir_;
};

constexpr char kIndex[] = R"({"metadata":{"total_size":44},"weight_map":{
  "model.embed_tokens.weight":"model-00001-of-00002.safetensors",
  "lm_head.weight":"model-00002-of-00002.safetensors",
  "model.norm.weight":"model-00002-of-00002.safetensors"}})";

constexpr char kConfig[] = R"({"model_type":"llama","hidden_size":2,"num_hidden_layers":1,
  "num_attention_heads":1,"num_key_value_heads":1,"intermediate_size":4,"rms_norm_eps":1e-6,
  "rope_theta":500000.0,"vocab_size":3,"max_position_embeddings":128,"tie_word_embeddings":false,
  "rope_scaling":{"rope_type":"llama3","factor":8.0,"original_max_position_embeddings":64}})";

TEST_F(SafetensorsModelTest, ShardedModelWithConfig) {
  WriteShards();
  Write("model.safetensors.index.json", kIndex);
  Write("config.json", kConfig);
  Write("tokenizer.json", "{}");
  auto model = SafetensorsModel::Open(dir_.string());
  ASSERT_TRUE(model.ok()) << model.status().message();
  EXPECT_EQ((*model)->shards().size(), 2u);
  ASSERT_EQ((*model)->tensors().size(), 3u);
  EXPECT_EQ((*model)->tensors()[0]->name, "lm_head.weight");
  EXPECT_EQ((*model)->FindTensor("model.norm.weight")->type, TensorType::kF32);
  EXPECT_EQ((*model)->tokenizer_json_path(), (dir_ / "tokenizer.json").string());

  auto file = ModelFile::Open(dir_.string());
  ASSERT_TRUE(file.ok()) << file.status().message();
  const ModelHyperParameters& h = (*file)->hyper_parameters();
  EXPECT_EQ(h.architecture, "llama");
  EXPECT_EQ(h.embedding_length, 2u);
  EXPECT_EQ(h.vocab_size, 3u);
  EXPECT_EQ(h.context_length, 128u);
  EXPECT_FLOAT_EQ(h.rms_norm_epsilon, 1e-6f);
  EXPECT_EQ(h.rope_freq_base, 500000.0f);
  EXPECT_EQ(h.rope_scaling_type, "llama3");
  EXPECT_EQ(h.rope_scaling_factor, 8.0f);
  EXPECT_EQ(h.rope_scaling_original_context_length, 64u);
  EXPECT_EQ(h.rope_dimension_count, 2u);
  EXPECT_EQ((*file)->parameter_count(), 6u + 6u + 2u);
  // Hugging Face [out, in] = [3, 2] becomes innermost-first {2, 3}.
  EXPECT_EQ((*file)->FindTensor("lm_head.weight")->shape, (std::vector<uint64_t>{2, 3}));
  EXPECT_EQ((*file)->tokenizer_json_path(), (dir_ / "tokenizer.json").string());
}

TEST_F(SafetensorsModelTest, SingleFileWithoutConfigIsReadableButNotAModel) {
  Write("model.safetensors", Build(R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})",
                                   std::string(4, '\0')));
  auto model = SafetensorsModel::Open((dir_ / "model.safetensors").string());
  ASSERT_TRUE(model.ok()) << model.status().message();
  EXPECT_TRUE((*model)->config_json_path().empty());
  EXPECT_TRUE((*model)->tokenizer_json_path().empty());
  auto file = ModelFile::Open((dir_ / "model.safetensors").string());
  ASSERT_FALSE(file.ok());
  EXPECT_THAT(file.status().message(), HasSubstr("no config.json"));
}

TEST_F(SafetensorsModelTest, BadIndexes) {
  WriteShards();
  Write("a.index.json", R"({"weight_map":{"lm_head.weight":"missing.safetensors"}})");
  EXPECT_THAT(SafetensorsModel::Open((dir_ / "a.index.json").string()).status().message(),
              HasSubstr("missing.safetensors"));
  Write("b.index.json", R"({"weight_map":{"lm_head.weight":"model-00001-of-00002.safetensors"}})");
  EXPECT_THAT(SafetensorsModel::Open((dir_ / "b.index.json").string()).status().message(),
              HasSubstr("puts tensor 'lm_head.weight' in"));
  Write("c.index.json", R"({"weight_map":{"x":"../etc/passwd"}})");
  EXPECT_THAT(SafetensorsModel::Open((dir_ / "c.index.json").string()).status().message(),
              HasSubstr("not a file beside the index"));
  Write("d.index.json", R"({"weights":{}})");
  EXPECT_THAT(SafetensorsModel::Open((dir_ / "d.index.json").string()).status().message(),
              HasSubstr("'weight_map' missing"));
  Write("e.index.json", R"(["not", "an", "object"])");
  EXPECT_THAT(SafetensorsModel::Open((dir_ / "e.index.json").string()).status().message(),
              HasSubstr("not a JSON object"));
  // The same tensor in two shards.
  Write("dup.safetensors", Build(R"({"model.norm.weight":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
                                 std::string(8, '\0')));
  Write("f.index.json", R"({"weight_map":{"model.norm.weight":"dup.safetensors",
      "lm_head.weight":"model-00002-of-00002.safetensors"}})");
  EXPECT_THAT(SafetensorsModel::Open((dir_ / "f.index.json").string()).status().message(),
              HasSubstr("tensor 'model.norm.weight' is also in another shard"));
}

TEST_F(SafetensorsModelTest, HyperParametersTheEngineCannotUseAreNamedByTheirConfigKey) {
  WriteShards();
  Write("model.safetensors.index.json", kIndex);
  struct Case {
    const char* from;
    const char* to;
    const char* error;
  } cases[] = {
      {R"("max_position_embeddings":128)", R"("max_position_embeddings":4294967295)",
       ": config.json key 'max_position_embeddings' is 4294967295, over the 2147483647 tokens"},
      {R"("rms_norm_eps":1e-6)", R"("rms_norm_eps":-1e-6)",
       ": config.json key 'rms_norm_eps' is -1e-06; want a finite number >= 0"},
      {R"("rope_theta":500000.0)", R"("rope_theta":0)",
       ": config.json key 'rope_theta' is 0; want a finite number > 0"},
      {R"("rope_theta":500000.0)", R"("rope_theta":-1.0)",
       ": config.json key 'rope_theta' is -1; want a finite number > 0"},
  };
  for (const Case& c : cases) {
    std::string config = kConfig;
    config.replace(config.find(c.from), std::strlen(c.from), c.to);
    Write("config.json", config);
    EXPECT_THAT(ModelFile::Open(dir_.string()).status().message(), HasSubstr(c.error)) << c.to;
  }
}

TEST(LlamaConfigTest, MissingRequiredKeysAreNamed) {
  for (const char* key : {"hidden_size", "num_hidden_layers", "num_attention_heads",
                          "intermediate_size", "vocab_size", "max_position_embeddings",
                          "rms_norm_eps"}) {
    std::string text = kConfig;
    std::string quoted = std::string("\"") + key + "\"";
    text.replace(text.find(quoted), quoted.size(), "\"renamed_key\"");
    auto parsed = ParseLlamaConfigJson("config.json", text);
    ASSERT_FALSE(parsed.ok()) << key;
    EXPECT_EQ(parsed.status().message(), std::string("config.json: required key '") + key + "' is missing");
  }
  auto defaults = ParseLlamaConfigJson(
      "config.json", R"({"model_type":"llama","hidden_size":8,"num_hidden_layers":1,
      "num_attention_heads":2,"intermediate_size":4,"rms_norm_eps":1e-5,"vocab_size":3,
      "max_position_embeddings":16,"rope_scaling":null})");
  ASSERT_TRUE(defaults.ok()) << defaults.status().message();
  EXPECT_EQ(defaults->head_count_kv, 2u);
  EXPECT_EQ(defaults->rope_freq_base, 10000.0f);
  EXPECT_TRUE(defaults->rope_scaling_type.empty());
  EXPECT_THAT(ParseLlamaConfigJson("config.json", R"({"model_type":"llama","hidden_size":"big"})")
                  .status().message(),
              HasSubstr("'hidden_size' is not an unsigned 32-bit integer"));
  EXPECT_THAT(ParseLlamaConfigJson("config.json", "[]").status().message(), HasSubstr("not a JSON object"));
}

}  // namespace
}  // namespace supercluster::engine
