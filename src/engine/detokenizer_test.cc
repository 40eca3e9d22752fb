// The incremental detokenizer: it never returns half a character, holds back bytes of a
// character split across tokens, replaces impossible bytes at once and a truncated tail at
// Flush(), and its output equals Decode() of the same ids.
#include "engine/detokenizer.h"

#include <gtest/gtest.h>

#include "engine/bpe_byte_level.h"
#include "engine/unicode.h"

namespace supercluster::engine {
namespace {

constexpr TokenId kBos = 0, kFirstByte = 1;

// SentencePiece-style: <s>, the byte tokens, then "▁", "▁hi" and the pieces it is merged
// from (all scores 0).
std::unique_ptr<Tokenizer> SentencePieceTokenizer() {
  TokenizerVocab vocab;
  vocab.model = TokenizerModel::kSentencePieceBpe;
  vocab.tokens.push_back("<s>");
  vocab.types.push_back(TokenType::kControl);
  for (int byte = 0; byte < 256; ++byte) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", byte);
    vocab.tokens.push_back(name);
    vocab.types.push_back(TokenType::kByte);
  }
  for (const char* piece : {"\u2581", "\u2581hi", "h", "i", "\u2581h"}) {
    vocab.tokens.push_back(piece);
    vocab.types.push_back(TokenType::kNormal);
  }
  vocab.bos_id = kBos;
  auto built = Tokenizer::Build(vocab);
  EXPECT_TRUE(built.ok()) << built.status().ToString();
  return std::move(built).value();
}

// Byte-level: the 256 byte characters (id = byte) and one merge, "a" + the first byte of 中,
// whose token therefore ends in the middle of a character.
std::unique_ptr<Tokenizer> ByteLevelTokenizer() {
  TokenizerVocab vocab;
  vocab.model = TokenizerModel::kByteLevelBpe;
  for (int byte = 0; byte < 256; ++byte) {
    vocab.tokens.push_back(ByteLevelCharacter(static_cast<uint8_t>(byte)));
  }
  vocab.tokens.push_back("a" + ByteLevelCharacter(0xE4));
  vocab.merges.push_back("a " + ByteLevelCharacter(0xE4));
  auto built = Tokenizer::Build(vocab);
  EXPECT_TRUE(built.ok()) << built.status().ToString();
  return std::move(built).value();
}

std::vector<std::string> Stream(const Tokenizer& tokenizer, const std::vector<TokenId>& ids) {
  Detokenizer detokenizer(tokenizer);
  std::vector<std::string> outputs;
  for (TokenId id : ids) outputs.push_back(detokenizer.Add(id));
  outputs.push_back(detokenizer.Flush());
  return outputs;
}

using Outputs = std::vector<std::string>;

TEST(DetokenizerTest, AnAnswerAfterAPromptKeepsItsLeadingSpace) {
  auto tokenizer = SentencePieceTokenizer();
  const TokenId hi = kFirstByte + 256 + 1;  // "▁hi"
  // At the start of a text SentencePiece drops the dummy-prefix space...
  EXPECT_EQ(Stream(*tokenizer, {hi}), (Outputs{"hi", ""}));
  // ...but after a prompt with text the answer goes on from it: " hi". A prompt of only
  // control tokens (<s>) leaves the answer at the start.
  for (auto [prompt, want] : {std::pair<std::vector<TokenId>, std::string>{{kBos, hi}, " hi"},
                              {{kBos}, "hi"}}) {
    Detokenizer detokenizer(*tokenizer);
    detokenizer.ContinueAfter(prompt);
    EXPECT_EQ(detokenizer.Add(hi), want);
  }
}

TEST(DetokenizerTest, EmojiSplitIntoByteFallbackTokens) {
  auto tokenizer = SentencePieceTokenizer();
  const TokenId space = tokenizer->FindPiece("\u2581"), hi = tokenizer->FindPiece("\u2581hi");
  // <s> ▁hi ▁ <F0><9F><98><80>: "hi 😀"; the dummy-prefix space of ▁hi is dropped.
  const std::vector<TokenId> ids = {kBos,           hi,
                                    space,          kFirstByte + 0xF0,
                                    kFirstByte + 0x9F, kFirstByte + 0x98,
                                    kFirstByte + 0x80};
  EXPECT_EQ(Stream(*tokenizer, ids), (Outputs{"", "hi", " ", "", "", "", "\U0001F600", ""}));
  EXPECT_EQ(tokenizer->Decode(ids), "hi \U0001F600");
  EXPECT_EQ(tokenizer->Encode("hi \U0001F600", {.add_bos = true}), ids);
}

TEST(DetokenizerTest, CjkSplitAcrossByteLevelPieces) {
  auto tokenizer = ByteLevelTokenizer();
  const TokenId a_and_lead = 256;
  // "a中文": a+E4 | B8 | AD | E6 | 96 | 87
  const std::vector<TokenId> ids = tokenizer->Encode("a\u4e2d\u6587", {});
  ASSERT_EQ(ids, (std::vector<TokenId>{a_and_lead, 0xB8, 0xAD, 0xE6, 0x96, 0x87}));
  EXPECT_EQ(Stream(*tokenizer, ids), (Outputs{"a", "", "\u4e2d", "", "", "\u6587", ""}));
}

TEST(DetokenizerTest, InvalidBytesBecomeReplacementCharacters) {
  auto tokenizer = ByteLevelTokenizer();
  // 0xFF can never start a character: replaced at once. 0xC3 followed by 'x': the held
  // byte is replaced when 'x' shows it can not be completed.
  EXPECT_EQ(Stream(*tokenizer, {'o', 0xFF, 'k'}), (Outputs{"o", "\uFFFD", "k", ""}));
  EXPECT_EQ(Stream(*tokenizer, {0xC3, 'x'}), (Outputs{"", "\uFFFDx", ""}));
  // A truncated character at the end comes out of Flush() as one U+FFFD.
  EXPECT_EQ(Stream(*tokenizer, {'o', 0xF0, 0x9F, 0x98}), (Outputs{"o", "", "", "", "\uFFFD"}));
  // E0 80 can not be the start of any character (overlong): not held back.
  EXPECT_EQ(Stream(*tokenizer, {0xE0, 0x80}), (Outputs{"", "\uFFFD\uFFFD", ""}));
  // Out-of-range ids are ignored.
  EXPECT_EQ(Stream(*tokenizer, {-1, 100000, 'z'}), (Outputs{"", "", "z", ""}));
}

TEST(DetokenizerTest, StreamingEqualsDecodeForEveryPrefixSplit) {
  auto tokenizer = ByteLevelTokenizer();
  const std::string text = "a\u4e2d a\U0001F600 \u00e9\xF0\x9F";
  const std::vector<TokenId> ids = tokenizer->Encode(text, {});
  std::string streamed;
  for (const std::string& part : Stream(*tokenizer, ids)) {
    // Every part is valid UTF-8 on its own.
    EXPECT_EQ(ToValidUtf8(part), part);
    streamed += part;
  }
  EXPECT_EQ(streamed, tokenizer->Decode(ids));
  EXPECT_EQ(streamed, ToValidUtf8(text));
}

}  // namespace
}  // namespace supercluster::engine
