// The hand-written pre-tokenizers against splits worked out from the regexes' semantics
// (first alternative that matches, greedy, with backtracking for (?!\S)).
#include "engine/bpe_pretokenizer.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace supercluster::engine {
namespace {

std::vector<std::string> Split(PreTokenizer kind, std::string_view text) {
  std::vector<std::string> pieces;
  for (std::string_view piece : PreTokenize(kind, text)) pieces.emplace_back(piece);
  return pieces;
}

using Pieces = std::vector<std::string>;

TEST(PreTokenizerTest, Gpt2) {
  const auto kind = PreTokenizer::kGpt2;
  EXPECT_EQ(Split(kind, "Hello world's  end\n\n"),
            (Pieces{"Hello", " world", "'s", " ", " end", "\n\n"}));
  EXPECT_EQ(Split(kind, "DON'T don't"), (Pieces{"DON", "'", "T", " don", "'t"}));
  EXPECT_EQ(Split(kind, "12345 abc,def"), (Pieces{"12345", " abc", ",", "def"}));
  EXPECT_EQ(Split(kind, "a\n\nb"), (Pieces{"a", "\n", "\n", "b"}));
  EXPECT_EQ(Split(kind, "x   "), (Pieces{"x", "   "}));
  EXPECT_EQ(Split(kind, " ?!"), (Pieces{" ?!"}));
  EXPECT_EQ(Split(kind, "caf\u00e9 \u4e2d\u6587"), (Pieces{"caf\u00e9", " \u4e2d\u6587"}));
  EXPECT_EQ(Split(kind, "\U0001F600\U0001F600 x"), (Pieces{"\U0001F600\U0001F600", " x"}));
  EXPECT_EQ(Split(kind, "a\xFF\xFE b"), (Pieces{"a", "\xFF\xFE", " b"}));
  EXPECT_TRUE(Split(kind, "").empty());
}

TEST(PreTokenizerTest, Llama3) {
  const auto kind = PreTokenizer::kLlama3;
  EXPECT_EQ(Split(kind, "Hello 12345 world\n\n  x"),
            (Pieces{"Hello", " ", "123", "45", " world", "\n\n", " ", " x"}));
  EXPECT_EQ(Split(kind, "DON'T don't"), (Pieces{"DON", "'T", " don", "'t"}));
  EXPECT_EQ(Split(kind, ",hello"), (Pieces{",hello"}));
  EXPECT_EQ(Split(kind, "hi!!\n\nthere"), (Pieces{"hi", "!!\n\n", "there"}));
  EXPECT_EQ(Split(kind, "a \n b"), (Pieces{"a", " \n", " b"}));
  EXPECT_EQ(Split(kind, "\tx"), (Pieces{"\tx"}));
  EXPECT_EQ(Split(kind, "\nx"), (Pieces{"\n", "x"}));
}

TEST(PreTokenizerTest, Qwen2SplitsDigitsOneByOne) {
  EXPECT_EQ(Split(PreTokenizer::kQwen2, "abc 2024"), (Pieces{"abc", " ", "2", "0", "2", "4"}));
}

TEST(PreTokenizerTest, PiecesAlwaysConcatenateToTheInput) {
  const std::string text = "mixed \t\n whitespace 'LL 'll \u00a0\u3000 \xC3 end\r\n\r\n  ";
  for (auto kind : {PreTokenizer::kGpt2, PreTokenizer::kLlama3, PreTokenizer::kQwen2}) {
    std::string joined;
    for (std::string_view piece : PreTokenize(kind, text)) {
      EXPECT_FALSE(piece.empty());
      joined += piece;
    }
    EXPECT_EQ(joined, text);
  }
}

TEST(PreTokenizerTest, Names) {
  EXPECT_EQ(*ParsePreTokenizer("default"), PreTokenizer::kGpt2);
  EXPECT_EQ(*ParsePreTokenizer("gpt2"), PreTokenizer::kGpt2);
  EXPECT_EQ(*ParsePreTokenizer("llama-bpe"), PreTokenizer::kLlama3);
  EXPECT_EQ(*ParsePreTokenizer("qwen2"), PreTokenizer::kQwen2);
  EXPECT_FALSE(ParsePreTokenizer("deepseek-coder").ok());
}

}  // namespace
}  // namespace supercluster::engine
