#include "net/byte_scan.h"

#include <gtest/gtest.h>

#include <array>
#include <string>

namespace supercluster::net::internal {
namespace {

// Each byte value at each place of a word among fillers of every kind (plain, the limit
// itself, high, zero), against a test of the bytes one by one.
TEST(ByteScanTest, EveryByteAtEveryPlaceAgreesWithABytewiseTest) {
  constexpr std::array<unsigned char, 7> kFillers = {'a', 0x20, 0x21, 0x7f, 0x80, 0xff, 0x0d};
  constexpr std::array<unsigned char, 6> kValues = {0x00, '\r', '\n', '"', '\\', 0x7f};
  constexpr std::array<unsigned char, 5> kLimits = {0x01, 0x20, 0x21, 0x7f, 0x80};
  for (unsigned char filler : kFillers) {
    for (int byte = 0; byte < 256; ++byte) {
      for (int place = 0; place < 8; ++place) {
        std::string bytes(8, static_cast<char>(filler));
        bytes[static_cast<size_t>(place)] = static_cast<char>(byte);
        const uint64_t word = LoadWord(bytes.data());
        auto some = [&bytes](auto property) {
          for (char c : bytes) {
            if (property(static_cast<unsigned char>(c))) return true;
          }
          return false;
        };
        SCOPED_TRACE("filler " + std::to_string(filler) + ", byte " + std::to_string(byte) +
                     " at " + std::to_string(place));
        EXPECT_EQ(SomeByteIsZero(word), some([](unsigned char c) { return c == 0; }));
        EXPECT_EQ(SomeByteIsHigh(word), some([](unsigned char c) { return c >= 0x80; }));
        for (unsigned char value : kValues) {
          EXPECT_EQ(SomeByteIs(word, value), some([value](unsigned char c) { return c == value; }));
        }
        for (unsigned char limit : kLimits) {
          EXPECT_EQ(SomeByteIsBelow(word, limit),
                    some([limit](unsigned char c) { return c < limit; }));
        }
        if (HasFailure()) return;
      }
    }
  }
}

// CR, LF and NUL at each place of a text two words and a few bytes long, found from the
// start and from each place before and after it.
TEST(ByteScanTest, FindLineBreakOrNulFindsEachAtEveryPlace) {
  for (char bad : {'\r', '\n', '\0'}) {
    for (size_t place = 0; place < 21; ++place) {
      std::string text(21, 'v');
      text[place] = bad;
      for (size_t from = 0; from <= 21; ++from) {
        const size_t expected = from <= place ? place : std::string_view::npos;
        EXPECT_EQ(FindLineBreakOrNul(text, from), expected)
            << "byte " << int(bad) << " at " << place << ", from " << from;
      }
    }
  }
  EXPECT_EQ(FindLineBreakOrNul(std::string(40, 'v')), std::string_view::npos);
  EXPECT_EQ(FindLineBreakOrNul(""), std::string_view::npos);
}

}  // namespace
}  // namespace supercluster::net::internal
