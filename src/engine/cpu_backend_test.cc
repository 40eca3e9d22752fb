// The CPU forward pass against an independent PyTorch implementation (tests/data/forward,
// tools/reference): the logits of every position of every fixture model, in every weight
// type, within the fixture's tolerance, on both kernel paths; greedy decoding reproduces the
// reference's tokens; and batching (prefill in pieces, decode steps, several sequences in
// one step) gives the same logits bit for bit as one sequence alone.
#include "engine/cpu_backend.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "engine/forward_fixture.h"
#include "engine/model_synth.h"

namespace supercluster::engine {
namespace {

class TempDir {
 public:
  TempDir() {
    char pattern[] = "/tmp/sc-forward-XXXXXX";
    path_ = ::mkdtemp(pattern);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::unique_ptr<CpuBackend> Load(const std::string& path, const kernels::Kernels* kernels,
                                 int threads = 2) {
  auto model = ModelFile::Open(path);
  EXPECT_TRUE(model.ok()) << model.status().ToString();
  if (!model.ok()) return nullptr;
  CpuBackendOptions options;
  options.threads = threads;
  options.kernels = kernels;
  options.kv_cache_bytes = 64 << 20;
  auto backend = CpuBackend::Create(std::move(*model), options);
  EXPECT_TRUE(backend.ok()) << backend.status().ToString();
  return backend.ok() ? std::move(*backend) : nullptr;
}

// All positions' logits of `tokens` in one prefill.
std::vector<float> AllLogits(CpuBackend& backend, SequenceId id, std::span<const TokenId> tokens) {
  EXPECT_TRUE(backend.AddSequence(id, static_cast<int32_t>(tokens.size()) + 16).ok());
  ForwardSlice slice{id, tokens, 0, /*all_logits=*/true};
  std::vector<float> logits;
  base::Status status = backend.Forward(std::span<const ForwardSlice>(&slice, 1), &logits);
  EXPECT_TRUE(status.ok()) << status.ToString();
  return logits;
}

struct FixtureCase {
  std::string file;
  kernels::KernelPath path;
};

std::vector<FixtureCase> Cases() {
  std::vector<FixtureCase> cases;
  auto files = ListForwardFixtures(ForwardFixtureDirectory());
  if (!files.ok()) return cases;
  for (const std::string& file : *files) {
    cases.push_back({file, kernels::KernelPath::kPortable});
    cases.push_back({file, kernels::KernelPath::kAvx2});
  }
  return cases;
}

class ForwardConformanceTest : public ::testing::TestWithParam<FixtureCase> {};

TEST_P(ForwardConformanceTest, LogitsAndGreedyTokensMatchTheReference) {
  const kernels::Kernels* kernels = kernels::KernelsFor(GetParam().path);
  if (kernels == nullptr) GTEST_SKIP() << "this CPU cannot run the AVX2 kernels";
  auto fixture = LoadForwardFixture(GetParam().file);
  ASSERT_TRUE(fixture.ok()) << fixture.status().ToString();
  TempDir dir;
  auto model_path = SynthesizeFixtureModel(*fixture, dir.path());
  ASSERT_TRUE(model_path.ok()) << model_path.status().ToString();
  std::unique_ptr<CpuBackend> backend = Load(*model_path, kernels);
  ASSERT_NE(backend, nullptr);

  std::vector<float> logits = AllLogits(*backend, 1, fixture->tokens);
  size_t vocab = fixture->vocab_size;
  ASSERT_EQ(logits.size(), fixture->tokens.size() * vocab);
  double worst = 0;
  for (size_t position = 0; position < fixture->tokens.size(); ++position) {
    double error = MaxErrorRelativeToRowMax(
        fixture->logits[position], std::span<const float>(logits.data() + position * vocab, vocab));
    worst = std::max(worst, error);
    EXPECT_LE(error, fixture->tolerance) << "position " << position;
  }
  RecordProperty("worst_relative_error", std::to_string(worst));

  // Greedy continuation, one decode step at a time.
  size_t must_match = ComparableGreedyTokens(*fixture, fixture->tolerance);
  std::vector<TokenId> generated;
  TokenId next = static_cast<TokenId>(
      std::max_element(logits.end() - static_cast<ptrdiff_t>(vocab), logits.end()) -
      (logits.end() - static_cast<ptrdiff_t>(vocab)));
  int32_t position = static_cast<int32_t>(fixture->tokens.size());
  for (size_t step = 0; step < must_match; ++step) {
    generated.push_back(next);
    ForwardSlice slice{1, std::span<const TokenId>(&generated.back(), 1), position++, false};
    std::vector<float> row;
    ASSERT_TRUE(backend->Forward(std::span<const ForwardSlice>(&slice, 1), &row).ok());
    next = static_cast<TokenId>(std::max_element(row.begin(), row.end()) - row.begin());
  }
  EXPECT_EQ(generated, std::vector<TokenId>(fixture->greedy_tokens.begin(),
                                            fixture->greedy_tokens.begin() +
                                                static_cast<ptrdiff_t>(must_match)));
}

INSTANTIATE_TEST_SUITE_P(Fixtures, ForwardConformanceTest, ::testing::ValuesIn(Cases()),
                         [](const ::testing::TestParamInfo<FixtureCase>& info) {
                           std::string name = std::filesystem::path(info.param.file).stem();
                           for (char& c : name) {
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           }
                           return name + "_" + kernels::KernelPathName(info.param.path);
                         });

TEST(CpuBackendTest, FixturesExist) { EXPECT_GE(Cases().size(), 2u * 9); }

// A model for the batching tests: the GQA shape in Q8_0 (the quantized MatMul path).
class CpuBackendBatchingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto shape = FindSynthShape("test-llama3");
    ASSERT_TRUE(shape.ok());
    SynthOptions options;
    options.shape = *shape;
    options.type = TensorType::kQ8_0;
    options.seed = 5;
    path_ = dir_.path() + "/model.gguf";
    ASSERT_TRUE(WriteSynthModel(options, path_).ok());
  }
  TempDir dir_;
  std::string path_;
};

TEST_F(CpuBackendBatchingTest, PiecewisePrefillAndDecodeEqualOnePrefillBitForBit) {
  std::unique_ptr<CpuBackend> backend = Load(path_, &kernels::DefaultKernels());
  ASSERT_NE(backend, nullptr);
  std::vector<TokenId> tokens = {1, 17, 200, 33, 45, 9, 101, 7, 250, 64, 3, 88};
  std::vector<float> whole = AllLogits(*backend, 1, tokens);
  size_t vocab = static_cast<size_t>(backend->shape().vocab_size);

  ASSERT_TRUE(backend->AddSequence(2, 32).ok());
  std::vector<float> pieces;
  size_t start = 0;
  for (size_t length : {5u, 1u, 4u, 1u, 1u}) {
    ForwardSlice slice{2, std::span<const TokenId>(tokens).subspan(start, length),
                       static_cast<int32_t>(start), true};
    std::vector<float> logits;
    ASSERT_TRUE(backend->Forward(std::span<const ForwardSlice>(&slice, 1), &logits).ok());
    pieces.insert(pieces.end(), logits.begin(), logits.end());
    start += length;
  }
  ASSERT_EQ(pieces.size(), whole.size());
  EXPECT_TRUE(std::equal(pieces.begin(), pieces.end(), whole.begin()))
      << "a split prefill changed the logits";
  (void)vocab;
}

TEST_F(CpuBackendBatchingTest, SequencesInOneStepEqualEachAlone) {
  std::unique_ptr<CpuBackend> backend = Load(path_, &kernels::DefaultKernels());
  ASSERT_NE(backend, nullptr);
  std::vector<std::vector<TokenId>> prompts = {{1, 5, 9}, {1, 77, 78, 79, 80}, {1, 300}};
  std::vector<std::vector<float>> alone;
  for (size_t i = 0; i < prompts.size(); ++i) {
    alone.push_back(AllLogits(*backend, 10 + i, prompts[i]));
  }
  std::vector<ForwardSlice> batch;
  for (size_t i = 0; i < prompts.size(); ++i) {
    ASSERT_TRUE(backend->AddSequence(20 + i, 16).ok());
    batch.push_back({20 + i, prompts[i], 0, true});
  }
  std::vector<float> together;
  ASSERT_TRUE(backend->Forward(batch, &together).ok());
  std::vector<float> expected;
  for (const auto& logits : alone) expected.insert(expected.end(), logits.begin(), logits.end());
  ASSERT_EQ(together.size(), expected.size());
  EXPECT_TRUE(std::equal(together.begin(), together.end(), expected.begin()));
}

TEST_F(CpuBackendBatchingTest, BudgetAndBadSlicesAreRefused) {
  auto model = ModelFile::Open(path_);
  ASSERT_TRUE(model.ok());
  CpuBackendOptions options;
  options.threads = 1;
  // test-llama3: 2 layers x (K and V) x 2 KV heads x 16 dims x 4 bytes per token.
  constexpr size_t kPerToken = 2 * 2 * 2 * 16 * 4;
  constexpr int32_t fits = 20;
  options.kv_cache_bytes = kPerToken * fits;
  auto backend = CpuBackend::Create(std::move(*model), options);
  ASSERT_TRUE(backend.ok());
  size_t per_token = (*backend)->shape().kv_bytes_per_token;
  ASSERT_EQ(per_token, kPerToken);
  ASSERT_TRUE((*backend)->AddSequence(1, fits).ok());
  EXPECT_EQ((*backend)->AddSequence(2, 1).code(), base::StatusCode::kResourceExhausted);
  EXPECT_EQ((*backend)->kv_bytes_in_use(), static_cast<size_t>(fits) * per_token);
  (*backend)->RemoveSequence(1);
  EXPECT_EQ((*backend)->kv_bytes_in_use(), 0u);
  EXPECT_EQ((*backend)->AddSequence(3, fits + 1).code(), base::StatusCode::kInvalidArgument);

  ASSERT_TRUE((*backend)->AddSequence(4, 4).ok());
  std::vector<TokenId> tokens = {1, 2};
  std::vector<float> logits;
  ForwardSlice wrong_start{4, tokens, 1, false};
  EXPECT_FALSE((*backend)->Forward(std::span<const ForwardSlice>(&wrong_start, 1), &logits).ok());
  ForwardSlice unknown{99, tokens, 0, false};
  EXPECT_FALSE((*backend)->Forward(std::span<const ForwardSlice>(&unknown, 1), &logits).ok());
  std::vector<TokenId> bad_token = {100000};
  ForwardSlice out_of_vocab{4, bad_token, 0, false};
  EXPECT_FALSE((*backend)->Forward(std::span<const ForwardSlice>(&out_of_vocab, 1), &logits).ok());
  std::vector<TokenId> too_many = {1, 2, 3, 4, 5};
  ForwardSlice overflow{4, too_many, 0, false};
  EXPECT_FALSE((*backend)->Forward(std::span<const ForwardSlice>(&overflow, 1), &logits).ok());
  ForwardSlice good{4, tokens, 0, false};
  EXPECT_TRUE((*backend)->Forward(std::span<const ForwardSlice>(&good, 1), &logits).ok())
      << "refused steps left the cache as it was";
}

TEST(CpuBackendLoadTest, EverySynthShapeAndTypeLoads) {
  TempDir dir;
  for (const std::string& name : SynthShapeNames()) {
    if (name == "1b") continue;  // 2 GB; the benchmark loads it
    auto shape = FindSynthShape(name);
    ASSERT_TRUE(shape.ok());
    for (TensorType type : {TensorType::kF32, TensorType::kF16, TensorType::kBF16,
                            TensorType::kQ8_0, TensorType::kQ4_0}) {
      SynthOptions options;
      options.shape = *shape;
      options.type = type;
      std::string path = dir.path() + "/" + name + ".gguf";
      ASSERT_TRUE(WriteSynthModel(options, path).ok());
      auto model = ModelFile::Open(path);
      ASSERT_TRUE(model.ok());
      auto backend = CpuBackend::Create(std::move(*model), CpuBackendOptions{});
      EXPECT_TRUE(backend.ok()) << name << " " << TensorTypeName(type) << ": "
                                << backend.status().ToString();
    }
  }
}

}  // namespace
}  // namespace supercluster::engine
