// Hostile GGUF input: truncation anywhere, random corruption, and each specific lie a file
// can tell (counts, lengths, shapes, types, offsets, duplicates). Every one must give an
// error naming the file and the field, never a crash or an out-of-bounds read (run this
// binary under ASan/UBSan: `make asan`).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sys/resource.h>

#include <cstring>
#include <memory>
#include <random>

#include "engine/gguf_file.h"
#include "engine/gguf_test_files.h"
#include "engine/gguf_writer.h"

namespace supercluster::engine {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

// Parses a copy of `bytes` in a heap block of exactly that size, so that a read past the end
// is a heap overflow the sanitizers report. On success touches every tensor's first and
// last byte and every metadata value.
base::Status ParseExactCopy(const std::string& name, const std::string& bytes) {
  std::unique_ptr<uint8_t[]> copy(new uint8_t[bytes.size() + (bytes.empty() ? 1 : 0)]);
  std::memcpy(copy.get(), bytes.data(), bytes.size());
  auto file = GgufFile::Parse(name, {copy.get(), bytes.size()});
  if (!file.ok()) return file.status();
  volatile uint8_t sink = 0;
  for (const GgufTensorInfo& tensor : (*file)->tensors()) {
    sink = sink + tensor.data[0] + tensor.data[tensor.byte_size - 1];
  }
  for (const auto& [key, value] : (*file)->metadata()) {
    if (value.type() == GgufValueType::kArray && value.size() > 0) {
      GgufValue last = value.at(value.size() - 1);
      sink = sink + static_cast<uint8_t>(last.as_uint64());
    }
    sink = sink + static_cast<uint8_t>(key.size());
  }
  return base::Status::Ok();
}

std::string Serialize(const GgufWriter& writer) {
  auto bytes = writer.Serialize();
  EXPECT_TRUE(bytes.ok());
  return bytes.ok() ? *bytes : std::string();
}

std::string ErrorOf(const GgufWriter& writer) {
  base::Status status = ParseExactCopy("model.gguf", Serialize(writer));
  EXPECT_FALSE(status.ok()) << "a hostile file was accepted";
  return status.message();
}

GgufWriter::Tensor RawTensor(std::string name, uint32_t type, std::vector<uint64_t> shape,
                             uint64_t byte_size, std::optional<uint64_t> offset = {}) {
  GgufWriter::Tensor tensor;
  tensor.name = std::move(name);
  tensor.type_id = type;
  tensor.shape = std::move(shape);
  tensor.byte_size = byte_size;
  tensor.offset = offset;
  return tensor;
}

TEST(GgufHostileTest, EveryTruncationIsAnError) {
  std::string bytes = Serialize(testing::SampleGgufWriter());
  ASSERT_TRUE(ParseExactCopy("model.gguf", bytes).ok());
  ASSERT_GT(bytes.size(), 500u);
  for (int i = 0; i < 50; ++i) {
    size_t length = bytes.size() * i / 50;
    base::Status status = ParseExactCopy("model.gguf", bytes.substr(0, length));
    ASSERT_FALSE(status.ok()) << "truncated at " << length << " of " << bytes.size();
    EXPECT_THAT(status.message(), StartsWith("model.gguf: ")) << length;
  }
  // The last byte matters too (it belongs to the last tensor's data).
  EXPECT_THAT(ParseExactCopy("model.gguf", bytes.substr(0, bytes.size() - 1)).message(),
              HasSubstr("tensor 'c': data"));
}

TEST(GgufHostileTest, RandomCorruptionNeverCrashes) {
  std::string original = Serialize(testing::SampleGgufWriter());
  std::mt19937_64 random(20261126);
  int accepted = 0;
  for (int iteration = 0; iteration < 4000; ++iteration) {
    std::string bytes = original;
    int flips = 1 + static_cast<int>(random() % 8);
    for (int f = 0; f < flips; ++f) {
      size_t at = random() % std::min<size_t>(bytes.size(), 2048);
      bytes[at] = static_cast<char>(random() % 4 == 0 ? 0xff : random());
    }
    if (ParseExactCopy("fuzzed.gguf", bytes).ok()) ++accepted;
  }
  // Flips in tensor data or string contents leave a valid file; most flips do not.
  EXPECT_GT(accepted, 0);
  EXPECT_LT(accepted, 4000);
}

TEST(GgufHostileTest, WrongMagicAndEmptyFile) {
  std::string bytes = Serialize(testing::SampleGgufWriter());
  bytes[0] = 'X';
  EXPECT_EQ(ParseExactCopy("model.gguf", bytes).message(),
            "model.gguf: not a GGUF file: magic is 'XGUF', want 'GGUF'");
  EXPECT_THAT(ParseExactCopy("model.gguf", "").message(), HasSubstr("model.gguf: magic: needs 4 bytes"));
}

TEST(GgufHostileTest, AbsurdCounts) {
  std::string bytes = Serialize(testing::SampleGgufWriter());
  std::string tensors = bytes;
  uint64_t huge = 1ull << 60;
  std::memcpy(tensors.data() + 8, &huge, 8);
  EXPECT_THAT(ParseExactCopy("model.gguf", tensors).message(),
              HasSubstr("model.gguf: tensor count 1152921504606846976 is more than the file's"));
  std::string keys = bytes;
  std::memcpy(keys.data() + 16, &huge, 8);
  EXPECT_THAT(ParseExactCopy("model.gguf", keys).message(),
              HasSubstr("model.gguf: metadata key count 1152921504606846976 is more than"));
}

TEST(GgufHostileTest, StringLengthBeyondTheFile) {
  GgufWriter writer;
  GgufEncodedValue lie{GgufValueType::kString, {}};
  uint64_t length = 1ull << 40;
  lie.payload.append(reinterpret_cast<const char*>(&length), 8);
  lie.payload += "abc";
  writer.Add("general.name", lie);
  EXPECT_THAT(ErrorOf(writer),
              HasSubstr("model.gguf: metadata key 'general.name': string length 1099511627776"));
}

TEST(GgufHostileTest, ArrayLengthBeyondTheFile) {
  GgufWriter writer;
  GgufEncodedValue lie = GgufInt32Array({1, 2});
  uint64_t length = 1ull << 61;
  std::memcpy(lie.payload.data() + 4, &length, 8);
  writer.Add("tokenizer.ggml.token_type", lie);
  EXPECT_THAT(ErrorOf(writer), HasSubstr("metadata key 'tokenizer.ggml.token_type': array length "
                                         "2305843009213693952 of int32 goes past the end"));
}

TEST(GgufHostileTest, ArraysNestedTooDeep) {
  GgufEncodedValue value = GgufInt32Array({1});
  for (int depth = 0; depth < 20; ++depth) value = GgufArray(GgufValueType::kArray, {value});
  GgufWriter writer;
  writer.Add("deep", value);
  EXPECT_THAT(ErrorOf(writer), HasSubstr("metadata key 'deep'[0][0][0][0][0][0][0][0]: arrays nested deeper"));
}

long PeakResidentKb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss;
}

TEST(GgufHostileTest, NestedArrayCountsAllocateNothingAhead) {
  // Arrays nested 8 deep, each level claiming as many sub-arrays as the rest of the 1 MiB
  // file could hold, then zeros. The reader allocated 112 bytes per claimed element at each
  // level before the nesting check refused the 9th: 77 times the file's size.
  const uint64_t size = 1 << 20;
  std::string payload;
  for (uint64_t level = 0; level < 8; ++level) {
    uint32_t element_type = static_cast<uint32_t>(GgufValueType::kArray);
    uint64_t claim = (size - 12 * (level + 1)) / 12 - 1;
    payload.append(reinterpret_cast<const char*>(&element_type), 4);
    payload.append(reinterpret_cast<const char*>(&claim), 8);
  }
  payload.resize(size, '\0');
  GgufWriter writer;
  writer.Add("k", GgufEncodedValue{GgufValueType::kArray, payload});
  std::string bytes = Serialize(writer);
  long before = PeakResidentKb();
  EXPECT_THAT(ParseExactCopy("model.gguf", bytes).message(),
              HasSubstr("metadata key 'k'[0][0][0][0][0][0][0][0]: arrays nested deeper than 8"));
  // The peak only grows, so a process that peaked higher earlier could hide an overrun
  // (ctest runs each test in a process of its own); it cannot fail spuriously. Before the
  // fix it grew by about 78 MB; the copy of the file takes 1.
  EXPECT_LT(PeakResidentKb() - before, 16 * 1024) << "peak resident KB before: " << before;
}

// An array of arrays: element type, count, then `count` empty uint8 arrays (12 bytes each).
GgufEncodedValue EmptyArrays(uint64_t count) {
  std::string payload(12, '\0');
  uint32_t element_type = static_cast<uint32_t>(GgufValueType::kArray);
  std::memcpy(payload.data(), &element_type, 4);
  std::memcpy(payload.data() + 4, &count, 8);
  payload.resize(12 + 12 * count, '\0');  // each: element type 0 (uint8), count 0
  return {GgufValueType::kArray, payload};
}

TEST(GgufHostileTest, TooManyNestedArrays) {
  // 2^20 nested arrays in one file at most (112 bytes of memory each), all keys together:
  // a file that really holds more is refused before they are parsed.
  GgufWriter writer;
  writer.Add("a", EmptyArrays(uint64_t{1} << 19));
  ASSERT_TRUE(ParseExactCopy("model.gguf", Serialize(writer)).ok());
  writer.Add("b", EmptyArrays((uint64_t{1} << 19) + 1));
  EXPECT_EQ(ErrorOf(writer), "model.gguf: metadata key 'b': array length 524289 of array: more "
                             "than the 1048576 nested arrays this reader takes in one file "
                             "(524288 before it)");
}

TEST(GgufHostileTest, UnknownValueType) {
  GgufWriter writer;
  writer.Add("odd", GgufEncodedValue{static_cast<GgufValueType>(13), "\x01"});
  EXPECT_THAT(ErrorOf(writer), HasSubstr("model.gguf: metadata key 'odd': unknown value type 13"));
  GgufWriter array_writer;
  GgufEncodedValue array = GgufInt32Array({});
  array.payload[0] = 77;
  array_writer.Add("odd", array);
  EXPECT_THAT(ErrorOf(array_writer), HasSubstr("metadata key 'odd': unknown array element type 77"));
}

TEST(GgufHostileTest, DuplicateKey) {
  GgufWriter writer;
  writer.Add("general.architecture", GgufString("llama"));
  writer.Add("general.architecture", GgufString("gpt2"));
  EXPECT_EQ(ErrorOf(writer), "model.gguf: metadata key 'general.architecture': appears twice");
}

TEST(GgufHostileTest, BadAlignment) {
  for (uint32_t alignment : {0u, 3u, 48u}) {
    GgufWriter writer;
    writer.Add("general.alignment", GgufUint32(alignment));
    EXPECT_THAT(ErrorOf(writer),
                HasSubstr("metadata key 'general.alignment': " + std::to_string(alignment) +
                          " is not a power of two"));
  }
  GgufWriter writer;
  writer.Add("general.alignment", GgufString("32"));
  EXPECT_THAT(ErrorOf(writer), HasSubstr("'general.alignment': must be an unsigned integer, not string"));
}

TEST(GgufHostileTest, TooManyDimensions) {
  GgufWriter writer;
  writer.AddRawTensor(RawTensor("blk.0.attn_q.weight", 0, {1, 1, 1, 1, 1}, 4));
  EXPECT_EQ(ErrorOf(writer),
            "model.gguf: tensor 'blk.0.attn_q.weight': dimension count 5 is not in 1..4");
  GgufWriter none;
  none.AddRawTensor(RawTensor("t", 0, {}, 4));
  EXPECT_THAT(ErrorOf(none), HasSubstr("tensor 't': dimension count 0"));
}

TEST(GgufHostileTest, ZeroOrAbsurdDimension) {
  GgufWriter writer;
  writer.AddRawTensor(RawTensor("t", 0, {4, 0}, 0));
  EXPECT_THAT(ErrorOf(writer), HasSubstr("model.gguf: tensor 't': dimension 1 is 0"));
  GgufWriter absurd;
  absurd.AddRawTensor(RawTensor("t", 0, {~0ull}, 0));
  EXPECT_THAT(ErrorOf(absurd), HasSubstr("tensor 't': dimension 0 is 18446744073709551615"));
}

TEST(GgufHostileTest, ElementCountOverflow) {
  GgufWriter writer;
  writer.AddRawTensor(RawTensor("t", 0, {1ull << 31, 1ull << 31, 1ull << 31}, 0));
  EXPECT_THAT(ErrorOf(writer), HasSubstr("tensor 't': shape: element count overflows 64 bits"));
  GgufWriter bytes;  // the elements fit, the f32 byte size does not
  bytes.AddRawTensor(RawTensor("t", 0, {1ull << 31, 1ull << 31, 2}, 0));
  EXPECT_THAT(ErrorOf(bytes), HasSubstr("tensor 't': f32 shape: byte size overflows"));
}

TEST(GgufHostileTest, UnknownTypeAndPartialBlock) {
  GgufWriter writer;
  writer.AddRawTensor(RawTensor("t", 99, {32}, 32));
  EXPECT_EQ(ErrorOf(writer), "model.gguf: tensor 't': unknown or unsupported tensor type id 99");
  GgufWriter partial;
  partial.AddRawTensor(RawTensor("t", static_cast<uint32_t>(TensorType::kQ8_0), {33}, 36));
  EXPECT_THAT(ErrorOf(partial), HasSubstr("tensor 't': q8_0 shape: a row of 33 q8_0 values is not a whole"));
}

TEST(GgufHostileTest, MisalignedOffset) {
  GgufWriter writer;
  writer.AddRawTensor(RawTensor("t", 0, {4}, 16, 8));
  EXPECT_EQ(ErrorOf(writer),
            "model.gguf: tensor 't': data offset 8 is not a multiple of the alignment 32");
}

TEST(GgufHostileTest, OverlappingTensors) {
  GgufWriter writer;
  writer.AddRawTensor(RawTensor("first", 0, {16}, 64, 0));
  writer.AddRawTensor(RawTensor("second", 0, {16}, 64, 32));
  EXPECT_THAT(ErrorOf(writer), HasSubstr("model.gguf: tensor 'second': data at offset 32 overlaps "
                                         "tensor 'first' (data offsets [0, 64))"));
}

TEST(GgufHostileTest, DataPastTheEnd) {
  GgufWriter writer;
  writer.AddRawTensor(RawTensor("blk.3.attn_q.weight", 0, {8}, 32));
  std::string bytes = Serialize(writer);
  bytes.resize(bytes.size() - 1);  // the data section ends one byte early
  size_t data_start = bytes.size() + 1 - 32;
  EXPECT_EQ(ParseExactCopy("model.gguf", bytes).message(),
            "model.gguf: tensor 'blk.3.attn_q.weight': data [" + std::to_string(data_start) + ", " +
                std::to_string(data_start + 32) + ") extends past the end of the file (" +
                std::to_string(bytes.size()) + " bytes)");
  // An offset so large that data start + offset overflows 64 bits: patch the tensor info.
  GgufWriter far;
  far.AddRawTensor(RawTensor("far_tensor", 0, {8}, 32));
  std::string far_bytes = Serialize(far);
  size_t offset_at = far_bytes.find("far_tensor") + 10 + 4 + 8 + 4;
  uint64_t far_offset = ~uint64_t{31};
  std::memcpy(far_bytes.data() + offset_at, &far_offset, 8);
  EXPECT_EQ(ParseExactCopy("model.gguf", far_bytes).message(),
            "model.gguf: tensor 'far_tensor': data at data offset " + std::to_string(far_offset) +
                " extends past the end of the file (" + std::to_string(far_bytes.size()) + " bytes)");
}

TEST(GgufHostileTest, DuplicateTensor) {
  GgufWriter writer;
  writer.AddRawTensor(RawTensor("a", 0, {8}, 32));
  writer.AddRawTensor(RawTensor("a", 0, {8}, 32));
  EXPECT_EQ(ErrorOf(writer), "model.gguf: tensor 'a': appears twice");
}

}  // namespace
}  // namespace supercluster::engine
