// Tests internal::RequestParser against Beast's own request_parser<string_body>, the parser
// the server used before: fed the same bytes in the same pieces, both must fail with the
// same error or produce the same method, target, fields (names as sent, in order,
// duplicates kept), body, version and keep-alive. What the server adds on top (Validate,
// the absolute-form reduction, Expect) is tested here and in http_parse_test.cc.
#include <gtest/gtest.h>

#include <boost/beast/http.hpp>
#include <string>
#include <utility>
#include <vector>

#include "net/http_parse.h"

namespace supercluster::net::internal {
namespace {

namespace http = boost::beast::http;
using Fields = std::vector<std::pair<std::string, std::string>>;

constexpr size_t kHeaderLimit = 1024;
constexpr uint64_t kBodyLimit = 64;

struct Outcome {
  std::string error;  // empty when the request parsed
  std::string method;
  std::string target;
  Fields fields;
  std::string body;
  int version = 0;
  bool keep_alive = false;

  bool operator==(const Outcome&) const = default;
};

std::ostream& operator<<(std::ostream& out, const Outcome& outcome) {
  out << "error '" << outcome.error << "' " << outcome.method << " " << outcome.target << " v"
      << outcome.version << (outcome.keep_alive ? " keep-alive" : " close") << " body '"
      << outcome.body << "' fields";
  for (const auto& [name, value] : outcome.fields) out << " [" << name << ": " << value << "]";
  return out;
}

// Feeds `bytes` in two pieces, split at `split`, as the server's reads may deliver them;
// returns the error, or "" once the message is done.
template <class Parser>
std::string Feed(Parser& parser, std::string_view bytes, size_t split) {
  boost::system::error_code error;
  std::string pending;
  for (std::string_view piece : {bytes.substr(0, split), bytes.substr(split)}) {
    pending.append(piece);
    while (!parser.is_done() && !pending.empty()) {
      size_t used = parser.put(boost::asio::buffer(pending), error);
      pending.erase(0, used);
      if (error == http::error::need_more) {
        error = {};
        if (used == 0) break;
        continue;
      }
      if (error) return error.message();
    }
  }
  if (!parser.got_some()) return "no input";  // put_eof() requires some
  if (!parser.is_done()) {
    parser.put_eof(error);
    if (error) return error.message();
    if (!parser.is_done()) return "not done";
  }
  return "";
}

Outcome ParseWithBeast(std::string_view bytes, size_t split) {
  http::request_parser<http::string_body> parser;
  parser.header_limit(kHeaderLimit);
  parser.body_limit(kBodyLimit);
  parser.eager(true);
  Outcome outcome;
  outcome.error = Feed(parser, bytes, split);
  if (!outcome.error.empty()) return outcome;
  const auto& message = parser.get();
  outcome.method = std::string(message.method_string());
  outcome.target = std::string(message.target());
  for (const auto& field : message) {
    outcome.fields.emplace_back(std::string(field.name_string()), std::string(field.value()));
  }
  outcome.body = message.body();
  outcome.version = static_cast<int>(message.version());
  outcome.keep_alive = message.keep_alive();
  return outcome;
}

Outcome ParseWithOurs(std::string_view bytes, size_t split) {
  RequestParser parser(kHeaderLimit, kBodyLimit);
  Outcome outcome;
  outcome.error = Feed(parser, bytes, split);
  if (!outcome.error.empty()) return outcome;
  outcome.version = parser.version();
  outcome.keep_alive = parser.keep_alive();
  HttpRequest request = parser.TakeRequest();
  outcome.method = request.method;
  outcome.target = request.target;
  outcome.fields = request.headers.fields();
  outcome.body = request.body;
  return outcome;
}

// Origin-form targets only: TakeRequest() rewrites absolute form, which Beast keeps.
const std::vector<std::string> kRequests = {
    "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    "GET /v1/models?limit=2 HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\nX-A: 1\r\n"
    "x-a: 2\r\n\r\n",
    "GET /health HTTP/1.0\r\n\r\n",
    "GET /health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: x\r\nConnection: Keep-Alive, Upgrade\r\nUpgrade: h2c\r\n\r\n",
    "HEAD /peer HTTP/1.1\r\nHost: x\r\n\r\n",
    "BREW /pot HTTP/1.1\r\nHost: x\r\n\r\n",  // a method Beast has no verb for
    "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
    "GET / HTTP/1.1\r\nHost:   spaced \t\r\nEmpty:\r\nX-Folded: a\r\n  b\r\n\r\n",
    "POST /v1/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello world",
    "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
    "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 64\r\n\r\n"
    "0123456789012345678901234567890123456789012345678901234567890123",
    "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 65\r\n\r\n",
    "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
    "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
    "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    "5\r\nhello\r\n1;ext=1\r\n \r\n5\r\nworld\r\n0\r\nTrailer: t\r\n\r\n",
    "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n41\r\n"
    "01234567890123456789012345678901234567890123456789012345678901234\r\n0\r\n\r\n",
    "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
    "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
    "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"
    "3\r\nabc\r\n0\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: x\r\nBad Name: v\r\n\r\n",
    std::string("GET / HTTP/1.1\r\nHost: x\r\nX: a\0b\r\n\r\n", 35),
    "GET / HTTP/1.1\r\nHost: x\r\nX: a\rb\r\n\r\n",
    "GET / HTTP/2.0\r\nHost: x\r\n\r\n",
    "GET  / HTTP/1.1\r\nHost: x\r\n\r\n",
    "G\x01T / HTTP/1.1\r\nHost: x\r\n\r\n",
    std::string("GET / HTTP/1.1\r\nHost: x\r\nX-Long: ") + std::string(1100, 'v') + "\r\n\r\n",
};

TEST(RequestParserTest, AgreesWithBeastsRequestParserWholeAndSplitAtEveryByte) {
  for (std::string_view request : kRequests) {
    for (size_t split = 0; split <= request.size(); ++split) {
      ASSERT_EQ(ParseWithOurs(request, split), ParseWithBeast(request, split))
          << "request: " << request << "\nsplit at " << split;
    }
  }
}

TEST(RequestParserTest, AgreesWithBeastOnEveryTruncation) {
  for (std::string_view request : kRequests) {
    for (size_t length = 0; length < request.size(); ++length) {
      std::string_view truncated = request.substr(0, length);
      ASSERT_EQ(ParseWithOurs(truncated, length), ParseWithBeast(truncated, length))
          << "request: " << request << "\ntruncated to " << length;
    }
  }
}

RequestParser ParsedHeader(std::string_view bytes) {
  RequestParser parser(kHeaderLimit, kBodyLimit);
  boost::system::error_code error;
  parser.put(boost::asio::buffer(bytes.data(), bytes.size()), error);
  EXPECT_TRUE(parser.is_header_done()) << error.message();
  return parser;
}

TEST(RequestParserTest, ExpectsContinueOnlyWhenTheFirstExpectAsksForIt) {
  EXPECT_TRUE(ParsedHeader("POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-Continue\r\n"
                           "Content-Length: 3\r\n\r\n")
                  .expects_continue());
  EXPECT_FALSE(ParsedHeader("POST / HTTP/1.1\r\nHost: x\r\nExpect: something-else\r\n"
                            "Expect: 100-continue\r\nContent-Length: 3\r\n\r\n")
                   .expects_continue());
  EXPECT_FALSE(ParsedHeader("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n")
                   .expects_continue());
}

TEST(RequestParserTest, KnowsAHeadRequest) {
  EXPECT_TRUE(ParsedHeader("HEAD / HTTP/1.1\r\nHost: x\r\n\r\n").is_head());
  EXPECT_FALSE(ParsedHeader("GET / HTTP/1.1\r\nHost: x\r\n\r\n").is_head());
  EXPECT_FALSE(ParsedHeader("HEADX / HTTP/1.1\r\nHost: x\r\n\r\n").is_head());
}

TEST(RequestParserTest, ValidateNamesWhatIsWrong) {
  std::string reason;
  EXPECT_EQ(ParsedHeader("GET / HTTP/1.1\r\nHost: x\r\n\r\n").Validate(&reason), 0);
  EXPECT_EQ(ParsedHeader("GET / HTTP/1.1\r\nhOsT: x\r\n\r\n").Validate(&reason), 0);
  EXPECT_EQ(ParsedHeader("GET / HTTP/1.1\r\n\r\n").Validate(&reason), 400);
  EXPECT_EQ(reason, "HTTP/1.1 requests need a Host header");
  EXPECT_EQ(ParsedHeader("GET x HTTP/1.1\r\nHost: x\r\n\r\n").Validate(&reason), 400);
  EXPECT_EQ(reason, "request target must be a path starting with '/'");
  EXPECT_EQ(ParsedHeader("GET * HTTP/1.1\r\nHost: x\r\n\r\n").Validate(&reason), 400);
  EXPECT_EQ(ParsedHeader("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n")
                .Validate(&reason),
            400);
  EXPECT_EQ(reason, "Transfer-Encoding must end with chunked");
}

}  // namespace
}  // namespace supercluster::net::internal
