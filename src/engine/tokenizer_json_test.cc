// Hugging Face tokenizer.json loading: both merge forms, added tokens, the pre-tokenizer
// kind, and clear errors for files we can not use.
#include "engine/tokenizer_json.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "engine/bpe_byte_level.h"
#include "engine/tokenizer.h"

namespace supercluster::engine {
namespace {

using nlohmann::json;

// A byte-level tokenizer.json: the 256 byte characters (id = byte), "he" (256),
// "hel" (257), and the special token <|eot|> (258).
json MakeTokenizerJson(const json& merges, const json& pre_tokenizer) {
  json vocab = json::object();
  for (int byte = 0; byte < 256; ++byte) vocab[ByteLevelCharacter(static_cast<uint8_t>(byte))] = byte;
  vocab["he"] = 256;
  vocab["hel"] = 257;
  return {
      {"version", "1.0"},
      {"added_tokens",
       json::array({{{"id", 258}, {"content", "<|eot|>"}, {"special", true}},
                    {{"id", 259}, {"content", "<tool>"}, {"special", false}}})},
      {"pre_tokenizer", pre_tokenizer},
      {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", merges}}},
  };
}

const json kLlama3PreTokenizer = {
    {"type", "Sequence"},
    {"pretokenizers",
     json::array({{{"type", "Split"},
                   {"pattern",
                    {{"Regex",
                      "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
                      "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"}}},
                   {"behavior", "Isolated"}},
                  {{"type", "ByteLevel"}, {"use_regex", false}}})}};
const json kGpt2PreTokenizer = {{"type", "ByteLevel"}, {"add_prefix_space", false}};

TEST(TokenizerJsonTest, ReadsBothMergeFormsAndAddedTokens) {
  for (const json& merges : {json::array({"h e", "he l"}),
                             json::array({json::array({"h", "e"}), json::array({"he", "l"})})}) {
    auto vocab = ParseTokenizerJson(MakeTokenizerJson(merges, kLlama3PreTokenizer).dump());
    ASSERT_TRUE(vocab.ok()) << vocab.status().ToString();
    EXPECT_EQ(vocab->model, TokenizerModel::kByteLevelBpe);
    EXPECT_EQ(vocab->pre_tokenizer, "llama-bpe");
    EXPECT_EQ(vocab->tokens.size(), 260u);
    EXPECT_EQ(vocab->merges, (std::vector<std::string>{"h e", "he l"}));
    EXPECT_EQ(vocab->types[258], TokenType::kControl);
    EXPECT_EQ(vocab->types[259], TokenType::kUserDefined);
    auto tokenizer = Tokenizer::Build(*vocab);
    ASSERT_TRUE(tokenizer.ok()) << tokenizer.status().ToString();
    EXPECT_EQ((*tokenizer)->Encode("hello<|eot|>", {.parse_special = true}),
              (std::vector<TokenId>{257, 'l', 'o', 258}));
    EXPECT_EQ((*tokenizer)->Encode("a<tool>", {}), (std::vector<TokenId>{'a', 259}));
    EXPECT_EQ((*tokenizer)->Decode({{'a', 259, 258}}), "a<tool>");
  }
}

TEST(TokenizerJsonTest, RecognisesPreTokenizers) {
  auto gpt2 = ParseTokenizerJson(MakeTokenizerJson(json::array(), kGpt2PreTokenizer).dump());
  ASSERT_TRUE(gpt2.ok()) << gpt2.status().ToString();
  EXPECT_EQ(gpt2->pre_tokenizer, "gpt2");
  json qwen = kLlama3PreTokenizer;
  std::string regex = qwen["pretokenizers"][0]["pattern"]["Regex"];
  regex.replace(regex.find("\\p{N}{1,3}"), 10, "\\p{N}");
  qwen["pretokenizers"][0]["pattern"]["Regex"] = regex;
  auto qwen2 = ParseTokenizerJson(MakeTokenizerJson(json::array(), qwen).dump());
  ASSERT_TRUE(qwen2.ok()) << qwen2.status().ToString();
  EXPECT_EQ(qwen2->pre_tokenizer, "qwen2");
}

void ExpectError(const std::string& text, const std::string& expected_part) {
  auto vocab = ParseTokenizerJson(text, "model/tokenizer.json");
  ASSERT_FALSE(vocab.ok()) << expected_part;
  EXPECT_NE(vocab.status().message().find(expected_part), std::string::npos)
      << vocab.status().message();
  EXPECT_NE(vocab.status().message().find("model/tokenizer.json"), std::string::npos);
}

TEST(TokenizerJsonTest, RejectsFilesItCannotUse) {
  ExpectError("{not json", "not a JSON object");
  ExpectError("[1, 2]", "not a JSON object");
  ExpectError("{}", "no 'model' object");
  ExpectError(R"({"model": {"type": "Unigram", "vocab": []}})", "model.type is not \"BPE\"");
  ExpectError(R"({"model": {"type": 7}})", "model.type is not \"BPE\"");
  ExpectError(R"({"model": {"type": "BPE", "byte_fallback": true, "vocab": {}}})",
              "byte_fallback");
  ExpectError(R"({"pre_tokenizer": {"type": "ByteLevel"}, "model": {"vocab": {"a": 1}}})",
              "no token has id 0");
  ExpectError(R"({"pre_tokenizer": {"type": "ByteLevel"}, "model": {"vocab": {"a": -1}}})",
              "not an integer");
  ExpectError(R"({"pre_tokenizer": {"type": "ByteLevel"}, "model": {"vocab": {"a": "0"}}})",
              "not an integer");
  ExpectError(R"({"pre_tokenizer": {"type": "ByteLevel"},
                  "model": {"vocab": {"a": 0}, "merges": [["a"]]}})",
              "model.merges[0] is neither");
  ExpectError(R"({"pre_tokenizer": {"type": "ByteLevel"}, "model": {"vocab": {"a": 0}},
                  "added_tokens": [{"id": 1}]})",
              "lacks content or id");
  ExpectError(R"({"pre_tokenizer": {"type": "Split", "pattern": {"Regex": "\\w+"}},
                  "model": {"vocab": {"a": 0}}})",
              "is not one this engine implements");
  ExpectError(R"({"pre_tokenizer": {"type": "Whitespace"}, "model": {"vocab": {"a": 0}}})",
              "pre_tokenizer is not");
  auto missing = LoadTokenizerJsonFile("/nonexistent/tokenizer.json");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), base::StatusCode::kNotFound);
}

}  // namespace
}  // namespace supercluster::engine
