// Tests the plain HTTP values: Headers (case-insensitive names, order kept, Set replacing
// duplicates), HttpRequest::path() and QueryParam() (percent-decoding rules), the
// HttpResponse shorthands and StatusReason().
#include "net/http_message.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace supercluster::net {
namespace {

using Fields = std::vector<std::pair<std::string, std::string>>;

HttpRequest RequestFor(std::string target) {
  HttpRequest request;
  request.target = std::move(target);
  return request;
}

// The definition EqualsLowerIgnoreCase must keep: fold `text`'s upper-case ASCII letters
// and compare byte by byte (its first version, before it took eight bytes at a time).
bool EqualsLowerIgnoreCaseBytewise(std::string_view text, std::string_view lower) {
  if (text.size() != lower.size()) return false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + ('a' - 'A'));
    if (c != lower[i]) return false;
  }
  return true;
}

// Every byte value at every place of the literals the code compares with, and of
// literals of every length up to 25 (one, several and overlapping words): the same answer
// as byte by byte. A byte next to a letter in case (0x40, 0x5b, 0x60, 0x7b) and a letter's
// other case must not slip through, nor a non-letter's case-bit twin ('-' and CR).
TEST(EqualsLowerIgnoreCaseTest, AgreesWithByteByByteOnEveryByteAtEveryPlace) {
  std::vector<std::string> literals = {
      "content-length", "transfer-encoding", "connection", "upgrade", "proxy-connection",
      "keep-alive", "host", "x-supercluster-spilled", "x-supercluster-request-id", "te",
      "content-type", "close", "authorization", "100-continue"};
  const std::string alphabet = "az-09/.mz";
  for (size_t length = 1; length <= 25; ++length) {
    std::string literal;
    for (size_t i = 0; i < length; ++i) literal += alphabet[(i * 7 + length) % alphabet.size()];
    literals.push_back(literal);
  }
  for (const std::string& lower : literals) {
    std::string upper = lower;
    for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    ASSERT_TRUE(EqualsLowerIgnoreCase(lower, lower)) << lower;
    ASSERT_TRUE(EqualsLowerIgnoreCase(upper, lower)) << lower;
    ASSERT_FALSE(EqualsLowerIgnoreCase(lower + "x", lower)) << lower;
    ASSERT_FALSE(EqualsLowerIgnoreCase(lower.substr(1), lower)) << lower;
    for (size_t place = 0; place < lower.size(); ++place) {
      for (int byte = 0; byte < 256; ++byte) {
        for (const std::string* base : {&lower, static_cast<const std::string*>(&upper)}) {
          std::string text = *base;
          text[place] = static_cast<char>(byte);
          ASSERT_EQ(EqualsLowerIgnoreCase(text, lower), EqualsLowerIgnoreCaseBytewise(text, lower))
              << "'" << lower << "' with byte " << byte << " at " << place;
        }
      }
    }
  }
}

TEST(HttpMessageHeadersTest, GetAndHasIgnoreCase) {
  Headers headers;
  headers.Add("Content-Type", "text/plain");
  EXPECT_TRUE(headers.Has("content-type"));
  EXPECT_TRUE(headers.Has("CONTENT-TYPE"));
  EXPECT_EQ(headers.Get("cOnTeNt-TyPe"), "text/plain");
  EXPECT_FALSE(headers.Has("Content-Length"));
  // A name that is a prefix of a present one is a different field.
  EXPECT_FALSE(headers.Has("Content"));
}

TEST(HttpMessageHeadersTest, GetOfAbsentFieldIsEmpty) {
  Headers headers;
  EXPECT_TRUE(headers.empty());
  EXPECT_EQ(headers.Get("X-Missing"), "");
  headers.Add("X-Present", "1");
  EXPECT_FALSE(headers.empty());
  EXPECT_EQ(headers.Get("X-Missing"), "");
}

TEST(HttpMessageHeadersTest, AddKeepsDuplicatesInOrderAndGetReturnsTheFirst) {
  Headers headers;
  headers.Add("X-Tag", "one");
  headers.Add("Accept", "*/*");
  headers.Add("x-tag", "two");
  EXPECT_EQ(headers.Get("X-TAG"), "one");
  EXPECT_EQ(headers.Copy(),
            (Fields{{"X-Tag", "one"}, {"Accept", "*/*"}, {"x-tag", "two"}}));
}

TEST(HttpMessageHeadersTest, FindViewsTheFirstValueOrIsNullopt) {
  Headers headers;
  EXPECT_EQ(headers.Find("X-Tag"), std::nullopt);
  headers.Add("X-Tag", "one");
  headers.Add("x-tag", "two");
  const std::optional<std::string_view> found = headers.Find("X-TAG");
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(*found, "one");
  EXPECT_EQ(found->data(), headers[0].second.data());  // a view of the field, not a copy
  EXPECT_EQ(headers.Find("X-Ta"), std::nullopt);
}

TEST(HttpMessageHeadersTest, SetReplacesEveryDuplicateWithOneField) {
  Headers headers;
  headers.Add("X-Tag", "one");
  headers.Add("Accept", "*/*");
  headers.Add("x-tag", "two");
  headers.Set("X-TAG", "three");
  EXPECT_EQ(headers.Get("x-tag"), "three");
  EXPECT_EQ(headers.Copy(), (Fields{{"Accept", "*/*"}, {"X-TAG", "three"}}));
}

TEST(HttpMessageHeadersTest, SetOnAbsentFieldAddsIt) {
  Headers headers;
  headers.Add("Accept", "*/*");
  headers.Set("Host", "example.com");
  EXPECT_EQ(headers.Copy(), (Fields{{"Accept", "*/*"}, {"Host", "example.com"}}));
}

TEST(HttpMessageHeadersTest, RemoveDropsEveryFieldOfThatNameOnly) {
  Headers headers;
  headers.Add("X-Tag", "one");
  headers.Add("Accept", "*/*");
  headers.Add("X-TAG", "two");
  headers.Remove("x-tag");
  EXPECT_FALSE(headers.Has("X-Tag"));
  EXPECT_EQ(headers.Copy(), (Fields{{"Accept", "*/*"}}));
  headers.Remove("Not-There");  // harmless
  EXPECT_EQ(headers.Copy(), (Fields{{"Accept", "*/*"}}));
}

TEST(HttpMessageHeadersTest, RemoveIfDropsTheChosenFieldsAndKeepsTheOrder) {
  Headers headers;
  headers.Add("Connection", "keep-alive");
  headers.Add("Accept", "*/*");
  headers.Add("X-Drop-Me", "1");
  headers.Add("Content-Type", "text/plain");
  std::vector<std::string> seen;  // what the predicate was shown, in order
  headers.RemoveIf([&seen](Headers::Field field) {
    seen.push_back(std::string(field.first) + "=" + std::string(field.second));
    return field.first == "Connection" || field.second == "1";
  });
  EXPECT_EQ(headers.Copy(), (Fields{{"Accept", "*/*"}, {"Content-Type", "text/plain"}}));
  EXPECT_EQ(seen, (std::vector<std::string>{"Connection=keep-alive", "Accept=*/*", "X-Drop-Me=1",
                                            "Content-Type=text/plain"}));
  headers.RemoveIf([](Headers::Field) { return false; });
  EXPECT_EQ(headers.Copy().size(), 2u);
}

TEST(HttpMessageHeadersTest, IteratesTheFieldsInOrder) {
  Headers headers;
  headers.Add("A", "1");
  headers.Add("B", "");
  headers.Add("a", "3");
  Fields seen;
  for (auto [name, value] : headers) seen.emplace_back(name, value);
  EXPECT_EQ(seen, (Fields{{"A", "1"}, {"B", ""}, {"a", "3"}}));
  EXPECT_EQ(headers.size(), 3u);
  EXPECT_EQ(headers[2], (Headers::Field{"a", "3"}));
}

// Names and values share one buffer, so a view into it must survive the buffer growing.
TEST(HttpMessageHeadersTest, AddTakesViewsIntoTheSameHeadersWhileTheyGrow) {
  Headers headers;
  headers.Add("X-Long-Name-Beyond-Small-Strings", "a value long enough to need the heap");
  for (int i = 0; i < 12; ++i) {
    // Views are valid until the headers change, so each Add gets fresh ones.
    auto [name, value] = headers[headers.size() - 1];
    headers.Add(value, name);
    auto [same_name, same_value] = headers[headers.size() - 2];
    headers.Add(same_name, same_value);
  }
  ASSERT_EQ(headers.size(), 25u);
  for (size_t i = 0; i < headers.size(); ++i) {
    EXPECT_EQ(headers[i].first, "X-Long-Name-Beyond-Small-Strings") << i;
    EXPECT_EQ(headers[i].second, "a value long enough to need the heap") << i;
    if (++i < headers.size()) {
      EXPECT_EQ(headers[i].first, "a value long enough to need the heap") << i;
    }
  }
}

TEST(HttpMessageHeadersTest, SetTakesAViewOfTheFieldItReplaces) {
  Headers headers;
  headers.Add("X-Request-Id", "0123456789abcdef0123");
  headers.Add("Accept", "*/*");
  auto [name, value] = headers[0];
  headers.Set(name, value);
  EXPECT_EQ(headers.Copy(),
            (Fields{{"Accept", "*/*"}, {"X-Request-Id", "0123456789abcdef0123"}}));
}

TEST(HttpMessageHeadersTest, CopiesAreIndependent) {
  Headers original;
  original.Add("X-Tag", "one");
  Headers copy = original;
  copy.Set("X-Tag", "two");
  copy.Add("Accept", "*/*");
  EXPECT_EQ(original.Copy(), (Fields{{"X-Tag", "one"}}));
  EXPECT_EQ(copy.Copy(), (Fields{{"X-Tag", "two"}, {"Accept", "*/*"}}));
}

// Removed fields leave their bytes behind; replacing one field forever must not grow the
// storage forever.
TEST(HttpMessageHeadersTest, ReplacingAFieldOverAndOverKeepsTheStorageBounded) {
  Headers headers;
  headers.Add("Accept", "*/*");
  size_t most_stored = 0;
  for (int i = 0; i < 10000; ++i) {
    headers.Set("X-Counter", std::to_string(i) + std::string(100, 'x'));
    most_stored = std::max(most_stored, headers.stored_bytes());
  }
  EXPECT_EQ(headers.Get("X-Counter"), "9999" + std::string(100, 'x'));
  EXPECT_EQ(headers.Get("Accept"), "*/*");
  // Kept, the removed bytes would come to over 1 MB; compacted, a few KiB at most.
  EXPECT_LT(most_stored, 4096u);
}

TEST(HttpMessageHeadersTest, TruncateKeepsTheFirstFieldsAndReusesTheRoomOfTheRest) {
  const std::string block = "Host: x\r\nX-A: 1\r\n";
  const Headers::Offsets fields[] = {{0, 4, 6, 1}, {9, 3, 14, 1}};
  Headers headers;
  headers.AddWithin(block, fields, 2);
  const size_t stored = headers.stored_bytes();
  // What a proxy does on every attempt: add this hop's fields, send, take them back.
  for (int attempt = 0; attempt < 1000; ++attempt) {
    headers.Truncate(2);
    headers.Add("X-Attempt", std::to_string(attempt));
    headers.Add("X-Tenant", "t");
  }
  EXPECT_EQ(headers.Copy(),
            (Fields{{"Host", "x"}, {"X-A", "1"}, {"X-Attempt", "999"}, {"X-Tenant", "t"}}));
  EXPECT_LT(headers.stored_bytes(), stored + 64) << "each attempt's fields reused the room";
  headers.Truncate(1);
  EXPECT_EQ(headers.Copy(), (Fields{{"Host", "x"}}));
  EXPECT_TRUE(headers.checked(0));
  headers.Truncate(5);  // more than there are: nothing changes
  EXPECT_EQ(headers.Copy(), (Fields{{"Host", "x"}}));
  headers.Truncate(0);
  EXPECT_TRUE(headers.empty());
  headers.Add("After", "all");
  EXPECT_EQ(headers.Copy(), (Fields{{"After", "all"}}));
}

TEST(HttpMessageHeadersTest, OnlyFieldsAddedWithinABlockAreChecked) {
  const std::string block = "Host: x\r\nX-A: 1\r\n";
  const Headers::Offsets fields[] = {{0, 4, 6, 1}, {9, 3, 14, 1}};
  Headers headers;
  headers.Add("X-Handler", "v");
  headers.AddWithin(block, fields, 2);
  headers.Set("X-Set", "w");
  ASSERT_EQ(headers.Copy(),
            (Fields{{"X-Handler", "v"}, {"Host", "x"}, {"X-A", "1"}, {"X-Set", "w"}}));
  EXPECT_FALSE(headers.checked(0));
  EXPECT_TRUE(headers.checked(1));
  EXPECT_TRUE(headers.checked(2));
  EXPECT_FALSE(headers.checked(3));
  // A copy keeps the marks; replacing a checked field leaves an unchecked one.
  Headers copy = headers;
  copy.Remove("X-Handler");
  EXPECT_TRUE(copy.checked(0));
  copy.Set("Host", "y");
  EXPECT_EQ(copy[copy.size() - 1], (Headers::Field{"Host", "y"}));
  EXPECT_FALSE(copy.checked(copy.size() - 1));
}

TEST(HttpMessageHeadersTest, KnownNamesAreMarkedNameCheckedOnly) {
  const std::string block = "Host: x\r\n";
  const Headers::Offsets fields[] = {{0, 4, 6, 1}};
  Headers headers;
  headers.Add("X-Handler", "v");
  headers.AddWithin(block, fields, 1);
  headers.AddKnown("X-Known", "w");
  headers.Add("X-Replaced", "old");
  headers.SetKnown("X-Replaced", "new");
  ASSERT_EQ(headers.Copy(),
            (Fields{{"X-Handler", "v"}, {"Host", "x"}, {"X-Known", "w"}, {"X-Replaced", "new"}}));
  // Name checked: parsed fields and known names; value checked: parsed fields only.
  EXPECT_FALSE(headers.name_checked(0));
  EXPECT_TRUE(headers.name_checked(1));
  EXPECT_TRUE(headers.name_checked(2));
  EXPECT_FALSE(headers.checked(2));
  EXPECT_TRUE(headers.name_checked(3));
  EXPECT_FALSE(headers.checked(3));
  // Replacing a known-named field with Set leaves a field whose name is checked again.
  headers.Set("X-Known", "z");
  EXPECT_FALSE(headers.name_checked(headers.size() - 1));
  // KnownName("Bad Name") would not compile: its check runs as the program is compiled.
  static_assert(Headers::KnownName("X-Supercluster-Request-Id").text() ==
                "X-Supercluster-Request-Id");
}

TEST(HttpMessageRequestTest, PathStripsTheQuery) {
  EXPECT_EQ(RequestFor("/v1/models?x=1&y=2").path(), "/v1/models");
  EXPECT_EQ(RequestFor("/v1/models").path(), "/v1/models");
  EXPECT_EQ(RequestFor("/a?").path(), "/a");
  EXPECT_EQ(RequestFor("/?q").path(), "/");
}

TEST(HttpMessageRequestTest, QueryParamFindsEachParameter) {
  HttpRequest request = RequestFor("/search?q=cats&limit=10&page=2");
  EXPECT_EQ(request.QueryParam("q"), "cats");
  EXPECT_EQ(request.QueryParam("limit"), "10");
  EXPECT_EQ(request.QueryParam("page"), "2");
}

TEST(HttpMessageRequestTest, QueryParamOfMissingKeyIsEmpty) {
  EXPECT_EQ(RequestFor("/search?q=cats").QueryParam("limit"), "");
  EXPECT_EQ(RequestFor("/search").QueryParam("q"), "");
  EXPECT_EQ(RequestFor("/search?").QueryParam("q"), "");
  // Matching is on the whole key, not a prefix or suffix of it.
  EXPECT_EQ(RequestFor("/search?query=cats&xq=1").QueryParam("q"), "");
}

TEST(HttpMessageRequestTest, QueryParamPercentDecodes) {
  HttpRequest request = RequestFor("/s?path=%2Fa%2fb&text=hello%20world&amp=%26%3D");
  EXPECT_EQ(request.QueryParam("path"), "/a/b");
  EXPECT_EQ(request.QueryParam("text"), "hello world");
  EXPECT_EQ(request.QueryParam("amp"), "&=");
}

TEST(HttpMessageRequestTest, QueryParamDecodesEscapeAtTheVeryEnd) {
  EXPECT_EQ(RequestFor("/s?x=%41").QueryParam("x"), "A");
  EXPECT_EQ(RequestFor("/s?x=ab%7E").QueryParam("x"), "ab~");
}

TEST(HttpMessageRequestTest, QueryParamDecodesPlusAsSpace) {
  HttpRequest request = RequestFor("/s?q=a+b+c&plus=1%2B1");
  EXPECT_EQ(request.QueryParam("q"), "a b c");
  EXPECT_EQ(request.QueryParam("plus"), "1+1");
}

TEST(HttpMessageRequestTest, QueryParamDecodesTheKeyToo) {
  HttpRequest request = RequestFor("/s?first%20name=Ada&last+name=Lovelace");
  EXPECT_EQ(request.QueryParam("first name"), "Ada");
  EXPECT_EQ(request.QueryParam("last name"), "Lovelace");
}

TEST(HttpMessageRequestTest, QueryParamKeyWithoutValueIsEmptyAndDoesNotHideOthers) {
  HttpRequest request = RequestFor("/s?verbose&x=1&empty=");
  EXPECT_EQ(request.QueryParam("verbose"), "");
  EXPECT_EQ(request.QueryParam("x"), "1");
  EXPECT_EQ(request.QueryParam("empty"), "");
}

TEST(HttpMessageRequestTest, QueryParamKeepsMalformedEscapes) {
  EXPECT_EQ(RequestFor("/s?v=%zz1").QueryParam("v"), "%zz1");
  EXPECT_EQ(RequestFor("/s?v=50%").QueryParam("v"), "50%");
  EXPECT_EQ(RequestFor("/s?v=%4").QueryParam("v"), "%4");
  EXPECT_EQ(RequestFor("/s?v=%4g%41").QueryParam("v"), "%4gA");
}

TEST(HttpMessageRequestTest, QueryParamReturnsTheFirstOfRepeatedKeys) {
  EXPECT_EQ(RequestFor("/s?x=1&x=2").QueryParam("x"), "1");
}

TEST(HttpMessageRequestTest, QueryParamValueMayContainEquals) {
  EXPECT_EQ(RequestFor("/s?expr=a=b").QueryParam("expr"), "a=b");
}

TEST(HttpMessageRequestTest, QueryParamSkipsEmptyPairs) {
  EXPECT_EQ(RequestFor("/s?&&x=1&").QueryParam("x"), "1");
}

TEST(HttpMessageResponseTest, TextSetsStatusContentTypeAndBody) {
  HttpResponse response = HttpResponse::Text(404, "no such model\n");
  EXPECT_EQ(response.status, 404);
  EXPECT_EQ(response.headers.Get("content-type"), "text/plain; charset=utf-8");
  EXPECT_EQ(response.body, "no such model\n");
}

TEST(HttpMessageResponseTest, JsonSetsStatusContentTypeAndBody) {
  HttpResponse response = HttpResponse::Json(201, R"({"id":7})");
  EXPECT_EQ(response.status, 201);
  EXPECT_EQ(response.headers.Get("Content-Type"), "application/json");
  EXPECT_EQ(response.headers.Copy().size(), 1u);
  EXPECT_EQ(response.body, R"({"id":7})");
}

TEST(HttpMessageResponseTest, JsonErrorHasTheShapeEveryServiceUses) {
  HttpResponse response = HttpResponse::JsonError(404, "not found: /v1/nope", "not_found");
  EXPECT_EQ(response.status, 404);
  EXPECT_EQ(response.headers.Get("Content-Type"), "application/json");
  EXPECT_EQ(response.body, R"({"error":{"message":"not found: /v1/nope","type":"not_found"}})");
}

TEST(HttpMessageResponseTest, JsonErrorEscapesWhatAClientSent) {
  auto message_of = [](std::string_view message) {
    std::string body = HttpResponse::JsonError(400, message, "bad_request").body;
    const std::string_view start = R"({"error":{"message":")";
    const std::string_view end = R"(","type":"bad_request"}})";
    EXPECT_TRUE(body.starts_with(start) && body.ends_with(end)) << body;
    return body.substr(start.size(), body.size() - start.size() - end.size());
  };
  EXPECT_EQ(message_of(R"(a "quoted" \ path)"), R"(a \"quoted\" \\ path)");
  EXPECT_EQ(message_of(std::string("tab\tnew\nline\x01\x1f\0end", 18)),
            R"(tab\u0009new\u000aline\u0001\u001f\u0000end)");
  EXPECT_EQ(message_of("DEL \x7f" " stays"), "DEL \x7f stays");
  // Valid UTF-8 is kept as it came: one to four bytes.
  EXPECT_EQ(message_of("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"),
            "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
  // Anything else is replaced byte by byte: a stray continuation byte, a truncated
  // sequence, an overlong form, a surrogate, a code point above U+10FFFF, and 0xff.
  EXPECT_EQ(message_of("a\x80" "b"), R"(a\ufffdb)");
  EXPECT_EQ(message_of("a\xc3"), R"(a\ufffd)");
  EXPECT_EQ(message_of("\xc0\xaf"), R"(\ufffd\ufffd)");
  EXPECT_EQ(message_of("\xe0\x80\xaf"), R"(\ufffd\ufffd\ufffd)");
  EXPECT_EQ(message_of("\xed\xa0\x80"), R"(\ufffd\ufffd\ufffd)");
  EXPECT_EQ(message_of("\xf4\x90\x80\x80"), R"(\ufffd\ufffd\ufffd\ufffd)");
  EXPECT_EQ(message_of("\xff"), R"(\ufffd)");
}

TEST(HttpMessageStatusReasonTest, NamesStandardCodes) {
  EXPECT_EQ(StatusReason(100), "Continue");
  EXPECT_EQ(StatusReason(200), "OK");
  EXPECT_EQ(StatusReason(204), "No Content");
  EXPECT_EQ(StatusReason(400), "Bad Request");
  EXPECT_EQ(StatusReason(404), "Not Found");
  EXPECT_EQ(StatusReason(405), "Method Not Allowed");
  EXPECT_EQ(StatusReason(408), "Request Timeout");
  EXPECT_EQ(StatusReason(413), "Content Too Large");
  EXPECT_EQ(StatusReason(429), "Too Many Requests");
  EXPECT_EQ(StatusReason(431), "Request Header Fields Too Large");
  EXPECT_EQ(StatusReason(500), "Internal Server Error");
  EXPECT_EQ(StatusReason(503), "Service Unavailable");
  EXPECT_EQ(StatusReason(505), "HTTP Version Not Supported");
}

TEST(HttpMessageStatusReasonTest, UnknownCodesSayUnknown) {
  EXPECT_EQ(StatusReason(0), "Unknown");
  EXPECT_EQ(StatusReason(299), "Unknown");
  EXPECT_EQ(StatusReason(418), "Unknown");
  EXPECT_EQ(StatusReason(999), "Unknown");
  EXPECT_EQ(StatusReason(-200), "Unknown");
}

}  // namespace
}  // namespace supercluster::net
