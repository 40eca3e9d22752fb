// Unit tests of Tokenizer::Build() and both BPE tokenizers on small vocabularies written
// here, where the expected ids follow from the rules by hand: merge order, byte fallback,
// unknown tokens, special tokens, BOS/EOS, and the errors for bad vocabularies.
#include "engine/tokenizer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "engine/bpe_byte_level.h"
#include "engine/unicode.h"

namespace supercluster::engine {
namespace {

using ::testing::HasSubstr;

constexpr TokenId kUnk = 0, kBos = 1, kEos = 2, kFirstByte = 3;

// A SentencePiece-style vocabulary: <unk>, <s>, </s>, the 256 byte tokens, then the given
// pieces with their scores.
TokenizerVocab SentencePieceVocab(const std::vector<std::pair<std::string, float>>& pieces,
                                  bool with_bytes = true) {
  TokenizerVocab vocab;
  vocab.model = TokenizerModel::kSentencePieceBpe;
  auto add = [&](const std::string& piece, float score, TokenType type) {
    vocab.tokens.push_back(piece);
    vocab.scores.push_back(score);
    vocab.types.push_back(type);
  };
  add("<unk>", 0, TokenType::kUnknown);
  add("<s>", 0, TokenType::kControl);
  add("</s>", 0, TokenType::kControl);
  if (with_bytes) {
    for (int byte = 0; byte < 256; ++byte) {
      char name[8];
      std::snprintf(name, sizeof(name), "<0x%02X>", byte);
      add(name, 0, TokenType::kByte);
    }
  }
  for (const auto& [piece, score] : pieces) add(piece, score, TokenType::kNormal);
  vocab.unknown_id = kUnk;
  vocab.bos_id = kBos;
  vocab.eos_id = kEos;
  return vocab;
}

std::unique_ptr<Tokenizer> MustBuild(TokenizerVocab vocab) {
  auto built = Tokenizer::Build(std::move(vocab));
  EXPECT_TRUE(built.ok()) << built.status().ToString();
  return built.ok() ? std::move(built).value() : nullptr;
}

TokenId Id(const Tokenizer& tokenizer, const std::string& piece) {
  const TokenId id = tokenizer.FindPiece(piece);
  EXPECT_NE(id, kNoToken) << piece;
  return id;
}

const std::vector<std::pair<std::string, float>> kAbcPieces = {
    {"\u2581", -1}, {"a", -1}, {"b", -1}, {"c", -1},
    {"ab", -2},     {"bc", -3}, {"\u2581a", -4}, {"abc", -5}, {"\u2581abc", -6}};

TEST(SentencePieceBpeTest, MergesHighestScoreFirst) {
  auto tokenizer = MustBuild(SentencePieceVocab(kAbcPieces));
  ASSERT_NE(tokenizer, nullptr);
  // "▁abc": ab (-2) beats bc (-3) and ▁a (-4); then abc (-5); then ▁abc (-6).
  EXPECT_EQ(tokenizer->Encode("abc", {}), std::vector<TokenId>{Id(*tokenizer, "\u2581abc")});
  // Without ▁abc: ab first gives ▁ ab c -> ▁ abc. With bc scored above ab, bc goes first
  // (▁ a bc), then ▁a (-4) beats a+bc=abc (-5), leaving ▁a bc.
  auto pieces = kAbcPieces;
  pieces.pop_back();  // ▁abc
  auto ab_first = MustBuild(SentencePieceVocab(pieces));
  EXPECT_EQ(ab_first->Encode("abc", {}),
            (std::vector<TokenId>{Id(*ab_first, "\u2581"), Id(*ab_first, "abc")}));
  pieces[5].second = -1.5;  // bc
  auto bc_first = MustBuild(SentencePieceVocab(pieces));
  EXPECT_EQ(bc_first->Encode("abc", {}),
            (std::vector<TokenId>{Id(*bc_first, "\u2581a"), Id(*bc_first, "bc")}));
}

TEST(SentencePieceBpeTest, TiesGoToTheLeftmostPair) {
  TokenizerVocab vocab = SentencePieceVocab({{"a", -1}, {"aa", -2}});
  vocab.add_space_prefix = false;
  auto tokenizer = MustBuild(vocab);
  const TokenId a = Id(*tokenizer, "a"), aa = Id(*tokenizer, "aa");
  EXPECT_EQ(tokenizer->Encode("aaa", {}), (std::vector<TokenId>{aa, a}));
  EXPECT_EQ(tokenizer->Encode("aaaaa", {}), (std::vector<TokenId>{aa, aa, a}));
}

TEST(SentencePieceBpeTest, SpacesBecomeMetaSymbolWithDummyPrefix) {
  auto tokenizer = MustBuild(SentencePieceVocab(kAbcPieces));
  const TokenId space = Id(*tokenizer, "\u2581"), a = Id(*tokenizer, "\u2581a");
  const TokenId b = Id(*tokenizer, "b");
  // " a  b" -> "▁▁a▁▁b"
  EXPECT_EQ(tokenizer->Encode(" a  b", {}), (std::vector<TokenId>{space, a, space, space, b}));
  EXPECT_EQ(tokenizer->Decode(tokenizer->Encode(" a  b", {})), " a  b");
  EXPECT_EQ(tokenizer->Decode(tokenizer->Encode("abc", {})), "abc");
  EXPECT_TRUE(tokenizer->Encode("", {}).empty());
}

TEST(SentencePieceBpeTest, ByteFallbackForCharactersOutsideTheVocabulary) {
  auto tokenizer = MustBuild(SentencePieceVocab(kAbcPieces));
  // "é" is C3 A9; "😀" is F0 9F 98 80.
  EXPECT_EQ(tokenizer->Encode("a\u00e9", {}),
            (std::vector<TokenId>{Id(*tokenizer, "\u2581a"), kFirstByte + 0xC3,
                                  kFirstByte + 0xA9}));
  const std::vector<TokenId> emoji = tokenizer->Encode("\U0001F600", {});
  EXPECT_EQ(emoji, (std::vector<TokenId>{Id(*tokenizer, "\u2581"), kFirstByte + 0xF0,
                                         kFirstByte + 0x9F, kFirstByte + 0x98,
                                         kFirstByte + 0x80}));
  EXPECT_EQ(tokenizer->Decode(emoji), "\U0001F600");
  // Invalid UTF-8 input still encodes, byte by byte, and decodes to U+FFFD.
  const std::vector<TokenId> bad = tokenizer->Encode("a\xFF", {});
  EXPECT_EQ(bad.back(), kFirstByte + 0xFF);
  EXPECT_EQ(tokenizer->Decode(bad), "a\uFFFD");
}

TEST(SentencePieceBpeTest, UnknownTokenWithoutByteFallbackJoinsRuns) {
  auto tokenizer = MustBuild(SentencePieceVocab(kAbcPieces, /*with_bytes=*/false));
  // "a" then "xy" (two unknown characters, one <unk>), then "b".
  EXPECT_EQ(tokenizer->Encode("axyb", {}),
            (std::vector<TokenId>{Id(*tokenizer, "\u2581a"), kUnk, Id(*tokenizer, "b")}));
  EXPECT_EQ(tokenizer->Decode({{kUnk}}), " \u2047 ");
}

TEST(SentencePieceBpeTest, BosEosAndSpecialTokens) {
  TokenizerVocab vocab = SentencePieceVocab(kAbcPieces);
  vocab.tokens.push_back("<tool>");
  vocab.scores.push_back(0);
  vocab.types.push_back(TokenType::kUserDefined);
  auto tokenizer = MustBuild(vocab);
  const TokenId tool = Id(*tokenizer, "<tool>");
  const TokenId abc = Id(*tokenizer, "\u2581abc");
  EXPECT_EQ(tokenizer->Encode("abc", {.add_bos = true, .add_eos = true}),
            (std::vector<TokenId>{kBos, abc, kEos}));
  // Control tokens only with parse_special; each text run gets its dummy prefix.
  EXPECT_EQ(tokenizer->Encode("<s>abc</s>", {.parse_special = true}),
            (std::vector<TokenId>{kBos, abc, kEos}));
  const std::vector<TokenId> literal = tokenizer->Encode("<s>", {});
  EXPECT_EQ(literal.size(), 4u);  // ▁ then the bytes of "<s>"
  EXPECT_EQ(tokenizer->Decode(literal), "<s>");
  // User-defined tokens are matched whether or not parse_special is on.
  EXPECT_EQ(tokenizer->Encode("abc<tool>abc", {}), (std::vector<TokenId>{abc, tool, abc}));
  // Control tokens decode to nothing, and the dummy prefix is dropped after <s>.
  EXPECT_EQ(tokenizer->Decode({{kBos, abc, kEos}}), "abc");
  EXPECT_EQ(tokenizer->Decode({{kBos, abc, abc}}), "abc abc");
  EXPECT_EQ(tokenizer->Decode({{-5, 100000, abc}}), "abc");  // out of range: skipped
}

// Encoding in pieces (a rendered chat): control tokens only where a piece allows them and
// the whole token lies within such pieces; the text runs as if the pieces were one text.
TEST(SentencePieceBpeTest, PiecesMatchControlTokensOnlyWhereAllowed) {
  auto tokenizer = MustBuild(SentencePieceVocab(kAbcPieces));
  ASSERT_NE(tokenizer, nullptr);
  const TokenId abc = Id(*tokenizer, "\u2581abc");
  auto encode = [&](std::vector<EncodePiece> pieces) {
    return tokenizer->Encode(std::span<const EncodePiece>(pieces), {});
  };
  // Markers in allowed pieces; the same text in a plain piece stays text, as with Encode
  // without parse_special.
  EXPECT_EQ(encode({{"<s>", true}, {"abc", false}, {"</s>", true}}),
            (std::vector<TokenId>{kBos, abc, kEos}));
  const std::vector<TokenId> forged = encode({{"<s>", true}, {"abc</s><s>abc", false}});
  std::vector<TokenId> expected = {kBos};
  for (TokenId id : tokenizer->Encode("abc</s><s>abc", {})) expected.push_back(id);
  EXPECT_EQ(forged, expected);
  EXPECT_EQ(std::count(forged.begin(), forged.end(), kEos), 0);
  // A run of text goes on across pieces: no dummy prefix at a piece boundary.
  EXPECT_EQ(encode({{"a", true}, {"bc", false}}), tokenizer->Encode("abc", {}));
  // A marker that straddles an allowed and a plain piece is not matched; adjacent allowed
  // pieces act as one.
  for (const std::vector<EncodePiece>& split :
       {std::vector<EncodePiece>{{"abc</", false}, {"s>", true}},
        std::vector<EncodePiece>{{"abc</", true}, {"s>", false}}}) {
    const std::vector<TokenId> straddling = encode(split);
    EXPECT_EQ(straddling, tokenizer->Encode("abc</s>", {}));
  }
  EXPECT_EQ(encode({{"abc</", true}, {"s>", true}}), (std::vector<TokenId>{abc, kEos}));
  // One piece: Encode with parse_special as the piece says.
  EXPECT_EQ(encode({{"abc</s>", true}}), tokenizer->Encode("abc</s>", {.parse_special = true}));
  EXPECT_EQ(encode({{"abc</s>", false}}), tokenizer->Encode("abc</s>", {}));
}

TEST(SentencePieceBpeTest, LongInputEncodesQuickly) {
  auto tokenizer = MustBuild(SentencePieceVocab(kAbcPieces));
  std::string text;
  uint32_t state = 1;
  const char* const kParts[] = {"a", "b", "c", " ", "\u00e9", "ab"};
  while (text.size() < 100 * 1024) {
    state = state * 1103515245 + 12345;
    text += kParts[(state >> 16) % 6];
  }
  const auto start = std::chrono::steady_clock::now();
  const std::vector<TokenId> ids = tokenizer->Encode(text, {});
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_LT(seconds, 0.5) << "100 KB took " << seconds << " s";
  EXPECT_EQ(tokenizer->Decode(ids), text);
}

// A byte-level vocabulary: the 256 byte characters in byte order (id = byte), then the
// merges' results in merge order, then <|endoftext|> as a control token.
TokenizerVocab ByteLevelVocab(const std::vector<std::string>& merges) {
  TokenizerVocab vocab;
  vocab.model = TokenizerModel::kByteLevelBpe;
  vocab.pre_tokenizer = "gpt2";
  for (int byte = 0; byte < 256; ++byte) {
    vocab.tokens.push_back(ByteLevelCharacter(static_cast<uint8_t>(byte)));
  }
  for (const std::string& merge : merges) {
    std::string joined = merge;
    joined.erase(joined.find(' '), 1);
    vocab.tokens.push_back(joined);
  }
  vocab.types.assign(vocab.tokens.size(), TokenType::kNormal);
  vocab.tokens.push_back("<|endoftext|>");
  vocab.types.push_back(TokenType::kControl);
  vocab.eos_id = vocab.bos_id = static_cast<TokenId>(vocab.tokens.size() - 1);
  vocab.merges = merges;
  return vocab;
}

TEST(ByteLevelBpeTest, ByteAlphabetIsGpt2s) {
  EXPECT_EQ(ByteLevelCharacter('a'), "a");
  EXPECT_EQ(ByteLevelCharacter(' '), "\u0120");   // Ġ
  EXPECT_EQ(ByteLevelCharacter('\n'), "\u010A");  // Ċ
  EXPECT_EQ(ByteLevelCharacter(0), "\u0100");
  EXPECT_EQ(ByteLevelCharacter(0xAD), "\u0143");  // the soft hyphen is not kept
  EXPECT_EQ(ByteLevelCharacter(0xFF), "\u00FF");
}

TEST(ByteLevelBpeTest, MergesByRankWithinPreTokenizedWords) {
  // "l l" ranks first; "h e", "he ll", "hell o" follow; "\u0120 w" joins a space to w.
  auto tokenizer = MustBuild(ByteLevelVocab(
      {"l l", "h e", "he ll", "hell o", "\u0120 w", "o r", "\u0120w or", "\u0120wor l"}));
  const TokenId hello = Id(*tokenizer, "hello");
  const TokenId worl = Id(*tokenizer, "\u0120worl");
  EXPECT_EQ(tokenizer->Encode("hello world", {}),
            (std::vector<TokenId>{hello, worl, static_cast<TokenId>('d')}));
  // Words never merge across the pre-tokenizer's cuts: "o" and " w" stay apart.
  EXPECT_EQ(tokenizer->Encode("hellohello", {}), (std::vector<TokenId>{hello, hello}));
  // Multi-byte characters are split into their bytes when no merge joins them.
  EXPECT_EQ(tokenizer->Encode("\u00e9", {}), (std::vector<TokenId>{0xC3, 0xA9}));
  for (const char* text : {"hello world", "caf\u00e9 \U0001F600\t\n  x ", "\xFF\xFE"}) {
    EXPECT_EQ(tokenizer->Decode(tokenizer->Encode(text, {})), ToValidUtf8(text)) << text;
  }
}

TEST(ByteLevelBpeTest, SpecialTokensNeedParseSpecial) {
  auto tokenizer = MustBuild(ByteLevelVocab({"h e"}));
  const TokenId end = tokenizer->vocab().eos_id;
  EXPECT_EQ(tokenizer->Encode("he<|endoftext|>", {.parse_special = true}),
            (std::vector<TokenId>{Id(*tokenizer, "he"), end}));
  const std::vector<TokenId> literal = tokenizer->Encode("<|endoftext|>", {});
  EXPECT_GT(literal.size(), 1u);
  EXPECT_EQ(tokenizer->Decode(literal), "<|endoftext|>");
  EXPECT_EQ(tokenizer->Decode({{end}}), "");  // control tokens decode to nothing
  EXPECT_EQ(tokenizer->Encode("he", {.add_bos = true, .add_eos = true}),
            (std::vector<TokenId>{end, Id(*tokenizer, "he"), end}));
}

TEST(ByteLevelBpeTest, LongInputEncodesQuickly) {
  auto tokenizer = MustBuild(ByteLevelVocab({"l l", "h e", "he ll", "hell o", "\u0120 w"}));
  std::string text;
  while (text.size() < 100 * 1024) text += "hello world, caf\u00e9 \U0001F600 12345\n";
  const auto start = std::chrono::steady_clock::now();
  const std::vector<TokenId> ids = tokenizer->Encode(text, {});
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_LT(seconds, 0.5) << "100 KB took " << seconds << " s";
  EXPECT_EQ(tokenizer->Decode(ids), text);
}

// Hostile input: random bytes (mostly invalid UTF-8, with spaces and special-token text
// mixed in) never crash either tokenizer, and decode back to the input with each invalid
// sequence replaced; random ids decode without crashing.
TEST(TokenizerRobustnessTest, RandomBytesRoundTrip) {
  TokenizerVocab sentence_piece = SentencePieceVocab(kAbcPieces);
  TokenizerVocab byte_level = ByteLevelVocab({"l l", "h e", "he ll", "\u0120 w"});
  for (TokenizerVocab* vocab : {&sentence_piece, &byte_level}) {
    auto tokenizer = MustBuild(*vocab);
    ASSERT_NE(tokenizer, nullptr);
    uint32_t state = 7;
    auto next = [&state] {
      state = state * 1664525 + 1013904223;
      return state >> 8;
    };
    const char* const kFragments[] = {" ", "ab", "<s>", "<|endoftext|>", "\xE4\xB8", "\n\t"};
    for (int round = 0; round < 300; ++round) {
      std::string text;
      const int length = static_cast<int>(next() % 40);
      for (int i = 0; i < length; ++i) {
        if (next() % 4 == 0) {
          text += kFragments[next() % 6];
        } else {
          text.push_back(static_cast<char>(next() & 0xFF));
        }
      }
      for (bool parse_special : {false, true}) {
        const std::vector<TokenId> ids = tokenizer->Encode(text, {.parse_special = parse_special});
        for (TokenId id : ids) ASSERT_TRUE(id >= 0 && id < tokenizer->vocab_size());
        if (!parse_special) {
          EXPECT_EQ(tokenizer->Decode(ids), ToValidUtf8(text));
        }
      }
      std::vector<TokenId> random_ids;
      for (int i = 0; i < 20; ++i) random_ids.push_back(static_cast<TokenId>(next() % 400) - 50);
      const std::string decoded = tokenizer->Decode(random_ids);
      EXPECT_EQ(ToValidUtf8(decoded), decoded);
    }
  }
}

// Build() errors: each names what is wrong.
void ExpectBuildError(const TokenizerVocab& vocab, const std::string& expected_part) {
  auto built = Tokenizer::Build(vocab);
  ASSERT_FALSE(built.ok()) << "expected an error containing: " << expected_part;
  EXPECT_EQ(built.status().code(), base::StatusCode::kInvalidArgument);
  EXPECT_THAT(built.status().message(), HasSubstr(expected_part));
}

TEST(TokenizerBuildTest, RejectsBadSentencePieceVocabularies) {
  ExpectBuildError(TokenizerVocab{}, "tokens is empty");

  TokenizerVocab missing_byte = SentencePieceVocab(kAbcPieces);
  missing_byte.tokens[kFirstByte + 0x41] = "A";
  missing_byte.types[kFirstByte + 0x41] = TokenType::kNormal;
  ExpectBuildError(missing_byte, "<0x41> is missing");

  TokenizerVocab misnamed_byte = SentencePieceVocab(kAbcPieces);
  misnamed_byte.tokens[kFirstByte] = "<0xZZ>";
  ExpectBuildError(misnamed_byte, "has type byte but is not named");

  TokenizerVocab no_fallback = SentencePieceVocab(kAbcPieces, /*with_bytes=*/false);
  no_fallback.unknown_id = kNoToken;
  ExpectBuildError(no_fallback, "no unknown_token_id");

  TokenizerVocab bad_bos = SentencePieceVocab(kAbcPieces);
  bad_bos.bos_id = 100000;
  ExpectBuildError(bad_bos, "bos_token_id 100000 is outside");
  TokenizerVocab bad_eos = SentencePieceVocab(kAbcPieces);
  bad_eos.eos_id = -2;
  ExpectBuildError(bad_eos, "eos_token_id -2");
  TokenizerVocab bad_pad = SentencePieceVocab(kAbcPieces);
  bad_pad.padding_id = static_cast<TokenId>(bad_pad.tokens.size());
  ExpectBuildError(bad_pad, "padding_token_id");

  TokenizerVocab short_scores = SentencePieceVocab(kAbcPieces);
  short_scores.scores.pop_back();
  ExpectBuildError(short_scores, "scores has");
  TokenizerVocab nan_score = SentencePieceVocab(kAbcPieces);
  nan_score.scores[261] = std::nanf("");
  ExpectBuildError(nan_score, "scores[261] is not a finite number");
  TokenizerVocab bad_type = SentencePieceVocab(kAbcPieces);
  bad_type.types[5] = static_cast<TokenType>(9);
  ExpectBuildError(bad_type, "token_type[5] is 9");
  TokenizerVocab empty_piece = SentencePieceVocab(kAbcPieces);
  empty_piece.tokens[260] = "";
  ExpectBuildError(empty_piece, "token 260 is the empty string");
  TokenizerVocab add_bos_without_bos = SentencePieceVocab(kAbcPieces);
  add_bos_without_bos.bos_id = kNoToken;
  add_bos_without_bos.add_bos = true;
  ExpectBuildError(add_bos_without_bos, "add_bos_token");
}

TEST(TokenizerBuildTest, RejectsBadByteLevelVocabularies) {
  TokenizerVocab missing_byte = ByteLevelVocab({"h e"});
  missing_byte.tokens[' '] = "space";
  ExpectBuildError(missing_byte, "no token for byte <0x20>");

  TokenizerVocab unknown_part = ByteLevelVocab({"h e"});
  unknown_part.merges.push_back("he zz");
  ExpectBuildError(unknown_part, "merges[1] 'he zz' names 'zz'");
  TokenizerVocab unknown_result = ByteLevelVocab({"h e"});
  unknown_result.merges.push_back("a b");
  ExpectBuildError(unknown_result, "names 'ab', which is not a token");
  for (const char* malformed : {"he", " he", "he ", "h e x", ""}) {
    TokenizerVocab vocab = ByteLevelVocab({"h e"});
    vocab.merges.push_back(malformed);
    ExpectBuildError(vocab, "is not two tokens separated by one space");
  }
  TokenizerVocab bad_pre = ByteLevelVocab({"h e"});
  bad_pre.pre_tokenizer = "starcoder";
  ExpectBuildError(bad_pre, "pre-tokenizer 'starcoder' is not supported");
}

}  // namespace
}  // namespace supercluster::engine
