// Utf8SequenceLength against the boundary cases of RFC 3629 (section 4's table of
// well-formed byte sequences) and Markus Kuhn's UTF-8 decoder stress test (its sections on
// boundaries, stray continuation bytes, overlong forms and surrogates).
#include "base/utf8.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace supercluster::base {
namespace {

TEST(Utf8Test, WellFormedSequencesAtEveryBoundary) {
  struct Case {
    std::string bytes;
    size_t length;
  };
  for (const Case& test : std::vector<Case>{
           {std::string("\0", 1), 1},
           {"\x7f", 1},
           {"\xc2\x80", 2},            // U+0080
           {"\xdf\xbf", 2},            // U+07FF
           {"\xe0\xa0\x80", 3},        // U+0800
           {"\xed\x9f\xbf", 3},        // U+D7FF, just below the surrogates
           {"\xee\x80\x80", 3},        // U+E000, just above them
           {"\xef\xbf\xbf", 3},        // U+FFFF
           {"\xf0\x90\x80\x80", 4},    // U+10000
           {"\xf4\x8f\xbf\xbf", 4},    // U+10FFFF
           {"a\xff", 1},               // only the first character counts
       }) {
    EXPECT_EQ(Utf8SequenceLength(test.bytes), test.length) << testing::PrintToString(test.bytes);
  }
}

TEST(Utf8Test, IllFormedSequencesAreZero) {
  for (const std::string& bytes : {
           std::string(),
           std::string("\x80"),              // a stray continuation byte
           std::string("\xbf"),
           std::string("\xc0\x80"),          // overlong U+0000
           std::string("\xc1\xbf"),          // overlong U+007F
           std::string("\xe0\x9f\xbf"),      // overlong U+07FF
           std::string("\xf0\x8f\xbf\xbf"),  // overlong U+FFFF
           std::string("\xed\xa0\x80"),      // U+D800, a surrogate
           std::string("\xed\xbf\xbf"),      // U+DFFF
           std::string("\xf4\x90\x80\x80"),  // U+110000
           std::string("\xf5\x80\x80\x80"),
           std::string("\xff"),
           std::string("\xc3"),              // cut short
           std::string("\xe2\x82"),
           std::string("\xf0\x9f\x98"),
           std::string("\xc3\x28"),          // a lead followed by ASCII
           std::string("\xe2\x28\xa1"),
       }) {
    EXPECT_EQ(Utf8SequenceLength(bytes), 0u) << testing::PrintToString(bytes);
  }
}

}  // namespace
}  // namespace supercluster::base
