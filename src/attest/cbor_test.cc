#include "attest/cbor.h"

#include <gtest/gtest.h>

#include "attest/test_util.h"

namespace supercluster::attest {
namespace {

using testing::Hex;

// Every example of RFC 8949 Appendix A (Table 6) that this decoder supports, with the
// diagnostic notation and hex copied from the RFC. Each must decode, and re-encode to the
// same bytes (all of them are in shortest form).
struct RfcExample {
  const char* diagnostic;
  const char* hex;
};
const RfcExample kRfc8949Supported[] = {
    {"0", "00"},
    {"1", "01"},
    {"10", "0a"},
    {"23", "17"},
    {"24", "1818"},
    {"25", "1819"},
    {"100", "1864"},
    {"1000", "1903e8"},
    {"1000000", "1a000f4240"},
    {"1000000000000", "1b000000e8d4a51000"},
    {"18446744073709551615", "1bffffffffffffffff"},
    {"18446744073709551616", "c249010000000000000000"},
    {"-18446744073709551616", "3bffffffffffffffff"},
    {"-18446744073709551617", "c349010000000000000000"},
    {"-1", "20"},
    {"-10", "29"},
    {"-100", "3863"},
    {"-1000", "3903e7"},
    {"false", "f4"},
    {"true", "f5"},
    {"null", "f6"},
    {"0(\"2013-03-21T20:04:00Z\")", "c074323031332d30332d32315432303a30343a30305a"},
    {"1(1363896240)", "c11a514b67b0"},
    {"23(h'01020304')", "d74401020304"},
    {"24(h'6449455446')", "d818456449455446"},
    {"32(\"http://www.example.com\")", "d82076687474703a2f2f7777772e6578616d706c652e636f6d"},
    {"h''", "40"},
    {"h'01020304'", "4401020304"},
    {"\"\"", "60"},
    {"\"a\"", "6161"},
    {"\"IETF\"", "6449455446"},
    {"\"\\\"\\\\\"", "62225c"},
    {"\"\\u00fc\"", "62c3bc"},
    {"\"\\u6c34\"", "63e6b0b4"},
    {"\"\\ud800\\udd51\"", "64f0908591"},
    {"[]", "80"},
    {"[1, 2, 3]", "83010203"},
    {"[1, [2, 3], [4, 5]]", "8301820203820405"},
    {"[1, 2, ..., 25]", "98190102030405060708090a0b0c0d0e0f101112131415161718181819"},
    {"{}", "a0"},
    {"{1: 2, 3: 4}", "a201020304"},
    {"{\"a\": 1, \"b\": [2, 3]}", "a26161016162820203"},
    {"[\"a\", {\"b\": \"c\"}]", "826161a161626163"},
    {"{\"a\": \"A\", ..., \"e\": \"E\"}", "a56161614161626142616361436164614461656145"},
};

TEST(CborTest, Rfc8949AppendixAExamplesRoundTrip) {
  for (const RfcExample& example : kRfc8949Supported) {
    SCOPED_TRACE(example.diagnostic);
    Bytes encoded = Hex(example.hex);
    auto decoded = DecodeCbor(encoded);
    ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
    EXPECT_EQ(EncodeCbor(*decoded), encoded);
  }
}

TEST(CborTest, Rfc8949ExamplesDecodeToTheRightValues) {
  EXPECT_EQ(*DecodeCbor(Hex("1bffffffffffffffff")), CborValue::Unsigned(UINT64_MAX));
  auto most_negative = DecodeCbor(Hex("3bffffffffffffffff"));
  EXPECT_EQ(most_negative->type(), CborType::kNegative);
  EXPECT_EQ(most_negative->number(), UINT64_MAX);
  EXPECT_FALSE(most_negative->AsInt64().has_value());
  EXPECT_EQ(DecodeCbor(Hex("3903e7"))->AsInt64(), -1000);
  EXPECT_EQ(DecodeCbor(Hex("64f0908591"))->text(), "\xf0\x90\x85\x91");
  auto tagged = DecodeCbor(Hex("c11a514b67b0"));
  EXPECT_TRUE(tagged->is_tag());
  EXPECT_EQ(tagged->number(), 1u);
  EXPECT_EQ(tagged->items()[0], CborValue::Unsigned(1363896240));
  auto map = DecodeCbor(Hex("a26161016162820203"));
  ASSERT_NE(map->FindText("b"), nullptr);
  EXPECT_EQ(*map->FindText("b"), CborValue::Array({CborValue::Unsigned(2), CborValue::Unsigned(3)}));
  EXPECT_EQ(*DecodeCbor(Hex("a201020304"))->FindInt(3), CborValue::Unsigned(4));
}

TEST(CborTest, EncoderWritesShortestHeads) {
  EXPECT_EQ(EncodeCbor(CborValue::Unsigned(23)), Hex("17"));
  EXPECT_EQ(EncodeCbor(CborValue::Unsigned(24)), Hex("1818"));
  EXPECT_EQ(EncodeCbor(CborValue::Unsigned(255)), Hex("18ff"));
  EXPECT_EQ(EncodeCbor(CborValue::Unsigned(256)), Hex("190100"));
  EXPECT_EQ(EncodeCbor(CborValue::Unsigned(65536)), Hex("1a00010000"));
  EXPECT_EQ(EncodeCbor(CborValue::Unsigned(4294967296)), Hex("1b0000000100000000"));
  EXPECT_EQ(EncodeCbor(CborValue::Int(-35)), Hex("3822"));
  EXPECT_EQ(EncodeCbor(CborValue::Int(INT64_MIN)), Hex("3b7fffffffffffffff"));
  EXPECT_EQ(EncodeCbor(CborValue::ByteString(Bytes(24, 0xaa))).size(), 2u + 24u);
}

// Examples from RFC 8949 Appendix A that this decoder refuses by design.
TEST(CborTest, RejectsRfcExamplesOutsideTheStrictSubset) {
  const char* refused[] = {
      "f90000",                  // 0.0 (half float)
      "fb3ff199999999999a",      // 1.1
      "fa47c35000",              // 100000.0
      "f7",                      // undefined
      "f0",                      // simple(16)
      "f8ff",                    // simple(255)
      "5f42010243030405ff",      // (_ h'0102', h'030405')
      "7f657374726561646d696e67ff",  // (_ "strea", "ming")
      "9fff",                    // [_ ]
      "9f018202039f0405ffff",    // [_ 1, [2, 3], [_ 4, 5]]
      "bf61610161629f0203ffff",  // {_ "a": 1, "b": [_ 2, 3]}
  };
  for (const char* hex : refused) {
    SCOPED_TRACE(hex);
    EXPECT_FALSE(DecodeCbor(Hex(hex)).ok());
  }
}

void ExpectRejected(const std::string& hex, const std::string& message_part,
                    const CborLimits& limits = {}) {
  SCOPED_TRACE(hex);
  auto decoded = DecodeCbor(Hex(hex), limits);
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.status().code(), base::StatusCode::kInvalidArgument);
  EXPECT_NE(decoded.status().message().find(message_part), std::string::npos)
      << decoded.status().message();
}

TEST(CborTest, RejectsIndefiniteLengthsAndBreaks) {
  ExpectRejected("5f40ff", "at byte 0: indefinite length");
  ExpectRejected("7f60ff", "indefinite length");
  ExpectRejected("9f01ff", "indefinite length");
  ExpectRejected("bfff", "indefinite length");
  ExpectRejected("ff", "unexpected break");
  ExpectRejected("8201ff", "at byte 2: unexpected break");
}

TEST(CborTest, RejectsReservedAdditionalInformation) {
  for (const char* hex : {"1c", "1d", "1e", "3c", "5d", "7e", "9c", "bd", "de", "fc", "fd", "fe"}) {
    ExpectRejected(hex, "reserved additional information");
  }
  ExpectRejected("83 01 02 1c", "at byte 3: reserved");
}

TEST(CborTest, RejectsDuplicateMapKeys) {
  ExpectRejected("a2 01 02 01 03", "at byte 3: duplicate map key");
  ExpectRejected("a2 6161 01 6161 02", "duplicate map key");
  // The same key written in a longer form is still the same key.
  ExpectRejected("a2 01 02 1801 03", "duplicate map key");
  ExpectRejected("a2 8101 00 8101 00", "duplicate map key");
  EXPECT_TRUE(DecodeCbor(Hex("a2 01 02 21 03")).ok());  // 1 and -2 differ
}

TEST(CborTest, RejectsTrailingBytes) {
  ExpectRejected("0000", "at byte 1: 1 trailing bytes");
  ExpectRejected("a0 f6 f6", "2 trailing bytes");
}

TEST(CborTest, RejectsInvalidUtf8) {
  ExpectRejected("62 c328", "not valid UTF-8");      // bad continuation
  ExpectRejected("62 c080", "not valid UTF-8");      // overlong NUL
  ExpectRejected("63 eda080", "not valid UTF-8");    // surrogate U+D800
  ExpectRejected("64 f4908080", "not valid UTF-8");  // above U+10FFFF
  ExpectRejected("61 80", "not valid UTF-8");        // lone continuation
  ExpectRejected("62 e282", "not valid UTF-8");      // cut inside a sequence
  ExpectRejected("81 61 ff", "at byte 1: text string is not valid UTF-8");
}

TEST(CborTest, RejectsTruncationAtEveryPosition) {
  Bytes whole = EncodeCbor(CborValue::Map({
      {CborValue::Text("module_id"), CborValue::Text("i-0123")},
      {CborValue::Text("pcrs"), CborValue::Map({{CborValue::Unsigned(0), CborValue::ByteString(Bytes(48, 1))}})},
      {CborValue::Text("timestamp"), CborValue::Unsigned(1736179625472)},
      {CborValue::Text("list"), CborValue::Array({CborValue::Int(-1000), CborValue::Tag(18, CborValue::Null())})},
  }));
  ASSERT_TRUE(DecodeCbor(whole).ok());
  for (size_t length = 0; length < whole.size(); ++length) {
    auto decoded = DecodeCbor(ByteView(whole).first(length));
    ASSERT_FALSE(decoded.ok()) << "prefix of " << length << " bytes decoded";
    EXPECT_NE(decoded.status().message().find("truncated"), std::string::npos)
        << decoded.status().message();
  }
}

TEST(CborTest, RejectsDeclaredLengthsBeyondTheInputWithoutAllocating) {
  // Each declares far more than is there; the decoder must say so rather than try to
  // allocate (a 2^64-entry reserve would abort the process).
  CborLimits unlimited{.max_string_bytes = SIZE_MAX, .max_items = SIZE_MAX};
  ExpectRejected("5b ffffffffffffffff", "truncated: byte string declares 18446744073709551615",
                 unlimited);
  ExpectRejected("7a ffffffff 61", "truncated: text string declares 4294967295 bytes, 1 left",
                 unlimited);
  ExpectRejected("9b ffffffffffffffff 01", "truncated: array declares 18446744073709551615",
                 unlimited);
  ExpectRejected("bb ffffffffffffffff 01", "truncated: map declares", unlimited);
  ExpectRejected("5b ffffffffffffffff", "exceeds the limit of 1048576");
  ExpectRejected("9b 00000000ffffffff 01", "array of 4294967295 entries exceeds the limit");
  ExpectRejected("99 ffff 01 02", "truncated: array declares 65535 entries");
  ExpectRejected("b9 0100 01 02", "truncated: map declares 256 entries");
  ExpectRejected("1b 0102", "truncated: the head needs 8 more bytes, 2 left");
  ExpectRejected("", "truncated: expected a data item");
}

TEST(CborTest, RejectsLengthsBeyondTheLimits) {
  CborLimits small{.max_depth = 4, .max_string_bytes = 4, .max_items = 3};
  ExpectRejected("45 0102030405", "byte string of 5 bytes exceeds the limit of 4", small);
  ExpectRejected("65 6161616161", "text string of 5 bytes exceeds the limit of 4", small);
  ExpectRejected("84 01020304", "array of 4 entries exceeds the limit of 3", small);
  ExpectRejected("a4 0100 0200 0300 0400", "map of 4 entries exceeds the limit of 3", small);
  EXPECT_TRUE(DecodeCbor(Hex("44 01020304"), small).ok());
}

TEST(CborTest, RejectsNestingDeeperThanTheLimit) {
  CborLimits limits{.max_depth = 16};
  std::string ok_depth = std::string(16 * 2, '8');  // "81" x 16 then 00
  for (size_t k = 1; k < ok_depth.size(); k += 2) ok_depth[k] = '1';
  EXPECT_TRUE(DecodeCbor(Hex(ok_depth + "00"), limits).ok());
  ExpectRejected("81" + ok_depth + "00", "at byte 16: nesting deeper than 16", limits);
  // Tags count as nesting too: a million nested tags must not overflow the stack.
  std::string deep_tags;
  for (int k = 0; k < 100000; ++k) deep_tags += "c1";
  ExpectRejected(deep_tags + "00", "nesting deeper than 16");
}

TEST(CborTest, EncodesAndDecodesNestedStructures) {
  CborValue value = CborValue::Tag(18, CborValue::Array({
      CborValue::ByteString(Hex("a10138 22")),
      CborValue::Map({}),
      CborValue::ByteString(Bytes(300, 7)),
      CborValue::Bool(true),
      CborValue::Null(),
      CborValue::Text("ünïcode"),
  }));
  Bytes encoded = EncodeCbor(value);
  auto decoded = DecodeCbor(encoded);
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(*decoded, value);
}

}  // namespace
}  // namespace supercluster::attest
