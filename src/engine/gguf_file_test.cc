// GGUF reader and writer: every value type round-trips, typed getters check types, tensor
// data points into the file, versions and alignment, and an independent parser
// (npm @huggingface/gguf) agrees with ours both ways.
#include "engine/gguf_file.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "engine/gguf_test_files.h"
#include "engine/gguf_writer.h"
#include "engine/model_synth.h"

namespace supercluster::engine {
namespace {

using ::testing::HasSubstr;

std::span<const uint8_t> Bytes(const std::string& text) {
  return {reinterpret_cast<const uint8_t*>(text.data()), text.size()};
}

std::string SampleFile(uint32_t version = 3) {
  auto bytes = testing::SampleGgufWriter(version).Serialize();
  EXPECT_TRUE(bytes.ok());
  return *bytes;
}

TEST(GgufFileTest, ReadsEveryValueType) {
  std::string bytes = SampleFile();
  auto file = GgufFile::Parse("sample.gguf", Bytes(bytes));
  ASSERT_TRUE(file.ok()) << file.status().message();
  const GgufFile& f = **file;
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.metadata().size(), 16u);
  EXPECT_EQ(f.metadata()[0].first, "general.architecture");
  EXPECT_EQ(*f.GetString("general.architecture"), "llama");
  EXPECT_EQ(*f.GetUint32("test.u8"), 200u);
  EXPECT_EQ(*f.GetInt32("test.i8"), -100);
  EXPECT_EQ(*f.GetUint32("test.u16"), 60000u);
  EXPECT_EQ(*f.GetInt32("test.i16"), -30000);
  EXPECT_EQ(*f.GetUint32("test.u32"), 4000000000u);
  EXPECT_EQ(*f.GetInt32("test.i32"), -2000000000);
  EXPECT_EQ(*f.GetFloat32("test.f32"), 0.25f);
  EXPECT_EQ(*f.GetBool("test.bool"), true);
  EXPECT_EQ(*f.GetString("test.string"), "h\xc3\xa9llo");
  EXPECT_EQ(*f.GetUint64("test.u64"), 1ull << 40);
  EXPECT_EQ(f.Find("test.i64")->as_int64(), -(1ll << 40));
  EXPECT_EQ(*f.GetFloat32("test.f64"), -1.5f);
  auto strings = f.GetStringArray("test.strings");
  ASSERT_TRUE(strings.ok());
  EXPECT_THAT(*strings, ::testing::ElementsAre("one", "", "three"));
  EXPECT_THAT(*f.GetFloat32Array("test.floats"), ::testing::ElementsAre(1.0f, -2.5f));
  auto nested = f.GetArray("test.nested");
  ASSERT_TRUE(nested.ok());
  ASSERT_EQ((*nested)->size(), 3u);
  EXPECT_EQ((*nested)->element_type(), GgufValueType::kArray);
  GgufValue ints = (*nested)->at(0);
  EXPECT_EQ(ints.element_type(), GgufValueType::kInt32);
  ASSERT_EQ(ints.size(), 3u);
  EXPECT_EQ(ints.at(2).as_int64(), 3);
  EXPECT_EQ((*nested)->at(1).at(0).as_string(), "x");
  EXPECT_EQ((*nested)->at(2).size(), 0u);
}

TEST(GgufFileTest, TypedGettersNameTheKey) {
  std::string bytes = SampleFile();
  auto file = GgufFile::Parse("sample.gguf", Bytes(bytes));
  ASSERT_TRUE(file.ok());
  auto wrong = (*file)->GetUint32("test.string");
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.status().message(),
            "sample.gguf: metadata key 'test.string' is string, want a non-negative integer");
  EXPECT_THAT((*file)->GetUint32("test.i8").status().message(), HasSubstr("'test.i8' is int8"));
  EXPECT_THAT((*file)->GetUint32("test.u64").status().message(),
              HasSubstr("'test.u64': 1099511627776 does not fit in 32 bits"));
  EXPECT_THAT((*file)->GetInt32("test.u32").status().message(), HasSubstr("'test.u32'"));
  EXPECT_THAT((*file)->GetStringArray("test.floats").status().message(),
              HasSubstr("'test.floats' is array of float32, want array of string"));
  EXPECT_THAT((*file)->GetFloat32("test.bool").status().message(), HasSubstr("'test.bool' is bool"));
  auto missing = (*file)->GetString("no.such.key");
  EXPECT_EQ(missing.status().code(), base::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr("'no.such.key' is missing"));
}

TEST(GgufFileTest, TensorDataPointsIntoTheFile) {
  std::string bytes = SampleFile();
  auto file = GgufFile::Parse("sample.gguf", Bytes(bytes));
  ASSERT_TRUE(file.ok());
  const GgufFile& f = **file;
  ASSERT_EQ(f.tensors().size(), 3u);
  EXPECT_EQ(f.data_section_offset() % 32, 0u);
  const GgufTensorInfo* a = f.FindTensor("a");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->type, TensorType::kF32);
  EXPECT_EQ(a->shape, (std::vector<uint64_t>{8, 4}));
  EXPECT_EQ(a->byte_size, 128u);
  EXPECT_EQ(a->offset, 0u);
  EXPECT_EQ(a->data, reinterpret_cast<const uint8_t*>(bytes.data()) + f.data_section_offset());
  float value;
  std::memcpy(&value, a->data + 4 * 31, 4);
  EXPECT_EQ(value, 31.0f);
  const GgufTensorInfo* b = f.FindTensor("b");
  EXPECT_EQ(b->offset, 128u);
  float ones[32];
  ASSERT_TRUE(DequantizeRow(b->type, b->data, 32, ones).ok());
  EXPECT_EQ(ones[17], 1.0f);
  const GgufTensorInfo* c = f.FindTensor("c");
  EXPECT_EQ(c->offset, 192u);  // 128 + 64 bytes of f16
  EXPECT_EQ(c->byte_size, 34u);
  float q[32];
  ASSERT_TRUE(DequantizeRow(c->type, c->data, 32, q).ok());
  EXPECT_EQ(q[0], -16.0f);
  EXPECT_EQ(q[31], 15.0f);
  EXPECT_EQ(f.FindTensor("d"), nullptr);
}

TEST(GgufFileTest, Version2IsReadAndVersion1Refused) {
  std::string v2 = SampleFile(2);
  auto file = GgufFile::Parse("v2.gguf", Bytes(v2));
  ASSERT_TRUE(file.ok()) << file.status().message();
  EXPECT_EQ((*file)->version(), 2u);
  std::string v1 = SampleFile(1);
  auto refused = GgufFile::Parse("v1.gguf", Bytes(v1));
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused.status().message(), HasSubstr("v1.gguf: GGUF version 1 is not supported"));
  std::string v4 = SampleFile(4);
  EXPECT_THAT(GgufFile::Parse("v4.gguf", Bytes(v4)).status().message(),
              HasSubstr("GGUF version 4 is not supported"));
}

TEST(GgufFileTest, BigEndianIsRefused) {
  std::string bytes = SampleFile();
  // A big-endian writer stores the version (and every other number) byte-swapped.
  bytes[4] = 0; bytes[5] = 0; bytes[6] = 0; bytes[7] = 3;
  auto file = GgufFile::Parse("be.gguf", Bytes(bytes));
  ASSERT_FALSE(file.ok());
  EXPECT_THAT(file.status().message(), HasSubstr("be.gguf: big-endian GGUF"));
}

TEST(GgufFileTest, AlignmentComesFromMetadata) {
  GgufWriter writer = testing::SampleGgufWriter();
  writer.SetAlignment(256);
  std::string bytes = *writer.Serialize();
  auto file = GgufFile::Parse("aligned.gguf", Bytes(bytes));
  ASSERT_TRUE(file.ok()) << file.status().message();
  EXPECT_EQ((*file)->alignment(), 256u);
  EXPECT_EQ((*file)->data_section_offset() % 256, 0u);
  EXPECT_EQ((*file)->FindTensor("b")->offset, 256u);
  EXPECT_EQ((*file)->FindTensor("c")->offset, 512u);
}

TEST(GgufFileTest, OpenMapsTheFile) {
  std::string path = ::testing::TempDir() + "/open_maps.gguf";
  ASSERT_TRUE(testing::SampleGgufWriter().WriteFile(path).ok());
  auto file = GgufFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status().message();
  EXPECT_EQ((*file)->file_size(), std::filesystem::file_size(path));
  EXPECT_EQ(*(*file)->GetString("general.architecture"), "llama");
  // The streamed file equals the in-memory serialization.
  std::ifstream in(path, std::ios::binary);
  std::string written((std::istreambuf_iterator<char>(in)), {});
  EXPECT_EQ(written, SampleFile());
  auto missing = GgufFile::Open(path + ".absent");
  EXPECT_EQ(missing.status().code(), base::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr(".absent"));
}

// --- the oracle: npm @huggingface/gguf, when installed -------------------------------------

std::string OracleScript() {
  return std::string(SUPERCLUSTER_SOURCE_DIR) + "/tests/oracles/gguf_oracle.mjs";
}

bool OracleInstalled() {
  return std::filesystem::exists(std::string(SUPERCLUSTER_SOURCE_DIR) +
                                 "/tests/oracles/node_modules/@huggingface/gguf/package.json") &&
         std::system("node --version > /dev/null 2>&1") == 0;
}

std::string RunCommand(const std::string& command) {
  std::string output;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return output;
  char buffer[4096];
  size_t got;
  while ((got = fread(buffer, 1, sizeof(buffer), pipe)) > 0) output.append(buffer, got);
  EXPECT_EQ(pclose(pipe), 0) << command;
  return output;
}

constexpr char kOracleMissing[] =
    "the GGUF oracle is not installed (scripts/install-deps runs npm ci --prefix tests/oracles)";

TEST(GgufOracleTest, IndependentParserAgreesWithOurs) {
  if (!OracleInstalled()) GTEST_SKIP() << kOracleMissing;
  std::string path = ::testing::TempDir() + "/oracle_read.gguf";
  GgufWriter writer = testing::SampleGgufWriter();
  writer.SetAlignment(64);
  ASSERT_TRUE(writer.WriteFile(path).ok());
  auto ours = GgufFile::Open(path);
  ASSERT_TRUE(ours.ok()) << ours.status().message();
  auto theirs = nlohmann::json::parse(RunCommand("node " + OracleScript() + " dump " + path));
  EXPECT_EQ(theirs["data_offset"], std::to_string((*ours)->data_section_offset()));
  const auto& metadata = theirs["metadata"];
  EXPECT_EQ(metadata["version"], 3);
  EXPECT_EQ(metadata["kv_count"], std::to_string((*ours)->metadata().size()));
  EXPECT_EQ(metadata["general.architecture"], "llama");
  EXPECT_EQ(metadata["general.alignment"], 64);
  EXPECT_EQ(metadata["test.u8"], 200);
  EXPECT_EQ(metadata["test.i16"], -30000);
  EXPECT_EQ(metadata["test.u32"], 4000000000u);
  EXPECT_EQ(metadata["test.f32"], 0.25);
  EXPECT_EQ(metadata["test.bool"], true);
  EXPECT_EQ(metadata["test.string"], "h\xc3\xa9llo");
  EXPECT_EQ(metadata["test.u64"], std::to_string(1ull << 40));
  EXPECT_EQ(metadata["test.i64"], std::to_string(-(1ll << 40)));
  EXPECT_EQ(metadata["test.strings"], nlohmann::json({"one", "", "three"}));
  EXPECT_EQ(metadata["test.nested"], nlohmann::json::parse(R"([[1,2,3],["x"],[]])"));
  ASSERT_EQ(theirs["tensors"].size(), (*ours)->tensors().size());
  for (const auto& tensor : theirs["tensors"]) {
    const GgufTensorInfo* mine = (*ours)->FindTensor(tensor["name"].get<std::string>());
    ASSERT_NE(mine, nullptr) << tensor["name"];
    EXPECT_EQ(tensor["type"], static_cast<int>(mine->type));
    EXPECT_EQ(tensor["offset"], std::to_string(mine->offset));
    std::vector<std::string> shape;
    for (uint64_t extent : mine->shape) shape.push_back(std::to_string(extent));
    EXPECT_EQ(tensor["shape"], nlohmann::json(shape));
  }
}

TEST(GgufOracleTest, IndependentParserAgreesOnASynthesizedModel) {
  if (!OracleInstalled()) GTEST_SKIP() << kOracleMissing;
  std::string path = ::testing::TempDir() + "/oracle_synth.gguf";
  SynthOptions options{*FindSynthShape("tiny"), TensorType::kQ4_0, 9};
  ASSERT_TRUE(WriteSynthModel(options, path).ok());
  auto ours = GgufFile::Open(path);
  ASSERT_TRUE(ours.ok()) << ours.status().message();
  auto theirs = nlohmann::json::parse(RunCommand("node " + OracleScript() + " dump " + path));
  EXPECT_EQ(theirs["data_offset"], std::to_string((*ours)->data_section_offset()));
  const auto& metadata = theirs["metadata"];
  EXPECT_EQ(metadata["llama.block_count"], 2);
  EXPECT_EQ(metadata["llama.attention.head_count_kv"], 2);
  EXPECT_EQ(metadata["tokenizer.ggml.model"], "llama");
  auto tokens = (*ours)->GetStringArray("tokenizer.ggml.tokens");
  ASSERT_TRUE(tokens.ok());
  ASSERT_EQ(metadata["tokenizer.ggml.tokens"].size(), tokens->size());
  EXPECT_EQ(metadata["tokenizer.ggml.tokens"][300], std::string((*tokens)[300]));
  ASSERT_EQ(theirs["tensors"].size(), (*ours)->tensors().size());
  for (size_t i = 0; i < (*ours)->tensors().size(); ++i) {
    const GgufTensorInfo& mine = (*ours)->tensors()[i];
    const auto& tensor = theirs["tensors"][i];
    EXPECT_EQ(tensor["name"], std::string(mine.name));
    EXPECT_EQ(tensor["type"], static_cast<int>(mine.type));
    EXPECT_EQ(tensor["offset"], std::to_string(mine.offset));
    EXPECT_EQ(tensor["shape"].size(), mine.shape.size());
  }
}

TEST(GgufOracleTest, WeReadWhatTheIndependentWriterWrote) {
  if (!OracleInstalled()) GTEST_SKIP() << kOracleMissing;
  std::string path = ::testing::TempDir() + "/oracle_written.gguf";
  RunCommand("node " + OracleScript() + " write " + path);
  auto file = GgufFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status().message();
  EXPECT_EQ(*(*file)->GetString("general.architecture"), "llama");
  EXPECT_EQ(*(*file)->GetUint32("llama.context_length"), 4096u);
  EXPECT_EQ(*(*file)->GetFloat32("llama.rope.freq_base"), 0.5f);
  EXPECT_EQ(*(*file)->GetBool("oracle.flag"), true);
  EXPECT_THAT(*(*file)->GetStringArray("oracle.tokens"), ::testing::ElementsAre("<s>", "h\xc3\xa9"));
  EXPECT_THAT(*(*file)->GetInt32Array("oracle.ids"), ::testing::ElementsAre(-1, 7));
  EXPECT_TRUE((*file)->tensors().empty());
}

}  // namespace
}  // namespace supercluster::engine
