// Tests the plain HTTP values: Headers (case-insensitive names, order kept, Set replacing
// duplicates), HttpRequest::path() and QueryParam() (percent-decoding rules), the
// HttpResponse shorthands and StatusReason().
#include "net/http_message.h"

#include <gtest/gtest.h>

#include <string>
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
  EXPECT_EQ(headers.fields(),
            (Fields{{"X-Tag", "one"}, {"Accept", "*/*"}, {"x-tag", "two"}}));
}

TEST(HttpMessageHeadersTest, FindPointsAtTheFirstValueOrIsNull) {
  Headers headers;
  EXPECT_EQ(headers.Find("X-Tag"), nullptr);
  headers.Add("X-Tag", "one");
  headers.Add("x-tag", "two");
  const std::string* found = headers.Find("X-TAG");
  ASSERT_NE(found, nullptr);
  EXPECT_EQ(*found, "one");
  EXPECT_EQ(found, &headers.fields()[0].second);
  EXPECT_EQ(headers.Find("X-Ta"), nullptr);
}

TEST(HttpMessageHeadersTest, SetReplacesEveryDuplicateWithOneField) {
  Headers headers;
  headers.Add("X-Tag", "one");
  headers.Add("Accept", "*/*");
  headers.Add("x-tag", "two");
  headers.Set("X-TAG", "three");
  EXPECT_EQ(headers.Get("x-tag"), "three");
  EXPECT_EQ(headers.fields(), (Fields{{"Accept", "*/*"}, {"X-TAG", "three"}}));
}

TEST(HttpMessageHeadersTest, SetOnAbsentFieldAddsIt) {
  Headers headers;
  headers.Add("Accept", "*/*");
  headers.Set("Host", "example.com");
  EXPECT_EQ(headers.fields(), (Fields{{"Accept", "*/*"}, {"Host", "example.com"}}));
}

TEST(HttpMessageHeadersTest, RemoveDropsEveryFieldOfThatNameOnly) {
  Headers headers;
  headers.Add("X-Tag", "one");
  headers.Add("Accept", "*/*");
  headers.Add("X-TAG", "two");
  headers.Remove("x-tag");
  EXPECT_FALSE(headers.Has("X-Tag"));
  EXPECT_EQ(headers.fields(), (Fields{{"Accept", "*/*"}}));
  headers.Remove("Not-There");  // harmless
  EXPECT_EQ(headers.fields(), (Fields{{"Accept", "*/*"}}));
}

TEST(HttpMessageHeadersTest, RemoveIfDropsTheChosenFieldsAndKeepsTheOrder) {
  Headers headers;
  headers.Add("Connection", "keep-alive");
  headers.Add("Accept", "*/*");
  headers.Add("X-Drop-Me", "1");
  headers.Add("Content-Type", "text/plain");
  headers.RemoveIf([](const std::string& name) { return name == "Connection" || name == "X-Drop-Me"; });
  EXPECT_EQ(headers.fields(), (Fields{{"Accept", "*/*"}, {"Content-Type", "text/plain"}}));
  headers.RemoveIf([](const std::string&) { return false; });
  EXPECT_EQ(headers.fields().size(), 2u);
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
  EXPECT_EQ(response.headers.fields().size(), 1u);
  EXPECT_EQ(response.body, R"({"id":7})");
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
