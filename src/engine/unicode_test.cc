#include "engine/unicode.h"

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include <gtest/gtest.h>

namespace supercluster::engine {
namespace {

TEST(UnicodeTest, DecodesValidUtf8) {
  const std::string text = "a\u00e9\u4e2d\U0001F600";
  const int expected_lengths[] = {1, 2, 3, 4};
  const uint32_t expected_code_points[] = {'a', 0xE9, 0x4E2D, 0x1F600};
  size_t offset = 0;
  for (int i = 0; i < 4; ++i) {
    const DecodedChar decoded = DecodeUtf8(text, offset);
    EXPECT_TRUE(decoded.valid);
    EXPECT_EQ(decoded.length, expected_lengths[i]);
    EXPECT_EQ(decoded.code_point, expected_code_points[i]);
    offset += decoded.length;
  }
}

TEST(UnicodeTest, InvalidInputIsReplacedByMaximalSubpart) {
  // Stray continuation, overlong 2-byte, overlong 3-byte, surrogate, past U+10FFFF,
  // truncated 4-byte sequence at the end.
  EXPECT_EQ(ToValidUtf8("\x80"), "\uFFFD");
  EXPECT_EQ(ToValidUtf8("\xC0\xAF"), "\uFFFD\uFFFD");
  EXPECT_EQ(ToValidUtf8("\xE0\x80\xAF"), "\uFFFD\uFFFD\uFFFD");
  EXPECT_EQ(ToValidUtf8("\xED\xA0\x80"), "\uFFFD\uFFFD\uFFFD");
  EXPECT_EQ(ToValidUtf8("\xF4\x90\x80\x80"), "\uFFFD\uFFFD\uFFFD\uFFFD");
  EXPECT_EQ(ToValidUtf8("ab\xF0\x9F\x98"), "ab\uFFFD");
  EXPECT_EQ(ToValidUtf8("\xE4\xB8x"), "\uFFFDx");
  EXPECT_EQ(ToValidUtf8("ok \u4e2d"), "ok \u4e2d");
  EXPECT_EQ(DecodeUtf8("\xF0\x9F\x98", 0).length, 3);
  EXPECT_FALSE(DecodeUtf8("\xF0\x9F\x98", 0).valid);
}

TEST(UnicodeTest, AppendUtf8RoundTrips) {
  for (uint32_t code_point : {0x41u, 0x7FFu, 0x800u, 0xFFFFu, 0x10000u, 0x10FFFFu}) {
    std::string text;
    AppendUtf8(code_point, &text);
    const DecodedChar decoded = DecodeUtf8(text, 0);
    EXPECT_TRUE(decoded.valid);
    EXPECT_EQ(decoded.code_point, code_point);
    EXPECT_EQ(static_cast<size_t>(decoded.length), text.size());
  }
}

TEST(UnicodeTest, CharacterClasses) {
  EXPECT_TRUE(IsLetter('a'));
  EXPECT_TRUE(IsLetter(0x4E2D));   // 中 Lo
  EXPECT_TRUE(IsLetter(0x01C5));   // ǅ Lt
  EXPECT_TRUE(IsLetter(0x02B0));   // ʰ Lm
  EXPECT_FALSE(IsLetter(0x0301));  // combining acute: Mn
  EXPECT_TRUE(IsNumber('7'));
  EXPECT_TRUE(IsNumber(0x0663));   // Arabic-Indic three: Nd
  EXPECT_TRUE(IsNumber(0x216B));   // Ⅻ Nl
  EXPECT_TRUE(IsNumber(0x00BD));   // ½ No
  EXPECT_FALSE(IsNumber('x'));
  EXPECT_EQ(GetCharClass('!'), CharClass::kPunctuation);
  EXPECT_EQ(GetCharClass('$'), CharClass::kSymbol);
  EXPECT_EQ(GetCharClass(0x1F600), CharClass::kSymbol);
  EXPECT_EQ(GetCharClass(0xE000), CharClass::kOther);    // private use
  EXPECT_EQ(GetCharClass(0x10FFFF), CharClass::kOther);  // unassigned
  for (uint32_t space : {0x09u, 0x0Au, 0x0Du, 0x20u, 0x85u, 0xA0u, 0x2003u, 0x3000u}) {
    EXPECT_TRUE(IsWhiteSpace(space)) << space;
  }
  for (uint32_t not_space : {0x200Bu, 0xFEFFu, 0x1Cu, 0x61u}) {
    EXPECT_FALSE(IsWhiteSpace(not_space)) << not_space;
  }
  EXPECT_EQ(std::string(UnicodeVersion()), "14.0.0");
}

// The committed tables are what tools/gen_unicode_tables.py writes today, unless this
// machine's Python has another Unicode version (then regenerating would be a choice).
TEST(UnicodeTest, GeneratedTablesAreUpToDate) {
  const std::filesystem::path source = SUPERCLUSTER_SOURCE_DIR;
  const std::string version_command =
      "/usr/bin/python3 -c 'import unicodedata; print(unicodedata.unidata_version)' 2>/dev/null";
  FILE* pipe = popen(version_command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  char version[32] = {};
  const bool read = fgets(version, sizeof(version), pipe) != nullptr;
  pclose(pipe);
  if (!read) GTEST_SKIP() << "/usr/bin/python3 is missing";
  if (std::string(version) != std::string(UnicodeVersion()) + "\n") {
    GTEST_SKIP() << "/usr/bin/python3 has Unicode " << version << ", the tables "
                 << UnicodeVersion();
  }
  const std::string command = "/usr/bin/python3 " +
                              (source / "tools/gen_unicode_tables.py").string() +
                              " | cmp -s - " + (source / "src/engine/unicode_tables.cc").string();
  EXPECT_EQ(std::system(command.c_str()), 0)
      << "src/engine/unicode_tables.cc differs from what tools/gen_unicode_tables.py writes";
}

}  // namespace
}  // namespace supercluster::engine
