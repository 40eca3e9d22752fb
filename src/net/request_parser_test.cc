// Tests internal::RequestParser against Beast's own request_parser<string_body>, the parser
// the server used before: fed the same bytes in the same pieces, both must fail with the
// same error or produce the same method, target, fields (names as sent, in order,
// duplicates kept), body, version and keep-alive. Its fast path (ParseWhole) must accept
// only what Beast accepts, with the same result and length, and must take the plain
// requests it is there for. What the server adds on top (Validate, the absolute-form
// reduction, Expect) is tested here and in http_parse_test.cc.
#include <gtest/gtest.h>

#include <boost/beast/http.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "net/http_parse.h"
#include "net/beast_oracle.h"

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

  bool operator==(const Outcome& other) const {
    return error == other.error && method == other.method && target == other.target &&
           testing::GroupedByName(fields) == testing::GroupedByName(other.fields) &&
           body == other.body && version == other.version && keep_alive == other.keep_alive;
  }
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

using BeastParser = http::request_parser<http::string_body>;

void Configure(BeastParser& parser) {
  parser.header_limit(kHeaderLimit);
  parser.body_limit(kBodyLimit);
  parser.eager(true);
}

Outcome Failed(std::string error) {
  Outcome outcome;
  outcome.error = std::move(error);
  return outcome;
}

// What a Beast parser that is done parsed.
Outcome OutcomeOf(BeastParser& parser) {
  Outcome outcome;
  const auto& message = parser.get();
  outcome.method = std::string(message.method_string());
  outcome.target = std::string(message.target());
  for (const auto& field : message) {
    outcome.fields.emplace_back(std::string(field.name_string()), std::string(field.value()));
  }
  outcome.body = message.body();
  outcome.version = static_cast<int>(message.version());
  // The parser's judgement, not message.keep_alive(): the parser also honours
  // "Proxy-Connection: close", and so does the server.
  outcome.keep_alive = parser.keep_alive();
  return outcome;
}

// What our parser, complete, parsed (it gives its request away).
Outcome OutcomeOf(RequestParser& parser) {
  Outcome outcome;
  outcome.version = parser.version();
  outcome.keep_alive = parser.KeepAlive();
  HttpRequest request = parser.TakeRequest();
  outcome.method = request.method;
  outcome.target = request.target;
  outcome.fields = request.headers.Copy();
  outcome.body = request.body;
  return outcome;
}

Outcome ParseWithBeast(std::string_view bytes, size_t split) {
  BeastParser parser;
  Configure(parser);
  std::string error = Feed(parser, bytes, split);
  if (!error.empty()) return Failed(error);
  return OutcomeOf(parser);
}

// Our parser through put() only (the callback path).
Outcome ParseWithOurs(std::string_view bytes, size_t split) {
  RequestParser parser(kHeaderLimit, kBodyLimit);
  std::string error = Feed(parser, bytes, split);
  if (!error.empty()) return Failed(error);
  return OutcomeOf(parser);
}

// The fast path on `bytes`: the outcome and the length it took, or nullopt when it left
// the bytes to put().
std::optional<std::pair<Outcome, size_t>> ParseWholeWithOurs(std::string_view bytes) {
  RequestParser parser(kHeaderLimit, kBodyLimit);
  size_t used = parser.ParseWhole(bytes);
  if (used == 0) return std::nullopt;
  EXPECT_TRUE(parser.complete());
  return std::make_pair(OutcomeOf(parser), used);
}

// Beast on `bytes` in one piece: the outcome and the length of the first request.
std::pair<Outcome, size_t> ParseFirstWithBeast(std::string_view bytes) {
  BeastParser parser;
  Configure(parser);
  boost::system::error_code error;
  const size_t used = testing::PutFirstMessage(parser, bytes, error);
  if (error || !parser.is_done()) {
    return {Failed(error ? error.message() : "not done"), used};
  }
  return {OutcomeOf(parser), used};
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
    // Shapes the fast path looks at closely.
    "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nContent-Length: 5\r\n"
    "Content-Type: application/json\r\nAuthorization: Bearer k\r\n\r\n{\"a\"}",
    "POST / HTTP/1.1\r\nHost: x\r\ncontent-LENGTH: 007\r\n\r\nabcdefg",
    "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +3\r\n\r\nabc",
    "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3 \r\n\r\nabc",
    "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3, 3\r\n\r\nabc",
    "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: x\r\nConnection: CLOSE\r\n\r\n",
    "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\nConnection: close\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: x\r\nConnection: close, keep-alive\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: x\r\nProxy-Connection: close\r\n\r\n",
    "POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nab",
    "GET /caf\xc3\xa9 HTTP/1.1\r\nHost: x\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: x\r\nX: caf\xc3\xa9\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: x\r\nX: a\x7f\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: x\r\nX:\r\nY: \t \r\n\r\n",
    "GET / HTTP/1.1\r\nHost: x\r\n: empty name\r\n\r\n",
    "GET / HTTP/1.1 \r\nHost: x\r\n\r\n",
    "GET / http/1.1\r\nHost: x\r\n\r\n",
    "\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
    "get / HTTP/1.1\r\nHost: x\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /second HTTP/1.1\r\nHost: x\r\n\r\n",
    // Found by the http_request fuzz target.
    "GEbTT / HTTP/1.1\r\nHost: nT\r\nhost: h\r\nngth:.\r\nHost:claaa\r\n\r\n\t\n",
};

// Requests the fast path exists for; it must take them, not leave them to Beast.
const std::vector<std::string> kPlainRequests = {
    "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    "GET /health HTTP/1.0\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    "POST /v1/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello world",
    "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nContent-Length: 5\r\n"
    "Content-Type: application/json\r\nAuthorization: Bearer k\r\n\r\n{\"a\"}",
    "GET / HTTP/1.1\r\nHost:   spaced \t\r\nEmpty:\r\n\r\n",
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

TEST(RequestParserTest, FastPathAgreesWithBeastOnEveryPrefix) {
  for (std::string_view request : kRequests) {
    for (size_t length = 0; length <= request.size(); ++length) {
      std::string_view prefix = request.substr(0, length);
      auto ours = ParseWholeWithOurs(prefix);
      if (!ours) continue;  // left to put(): the other tests cover that path
      auto [beast, beast_used] = ParseFirstWithBeast(prefix);
      ASSERT_EQ(ours->first, beast) << "request: " << request << "\nprefix " << length;
      // And in exactly the order of arrival, as the callback path keeps it.
      ASSERT_EQ(ours->first.fields, ParseWithOurs(prefix, length).fields)
          << "request: " << request << "\nprefix " << length;
      ASSERT_EQ(ours->second, beast_used) << "request: " << request << "\nprefix " << length;
    }
  }
}

TEST(RequestParserTest, FastPathTakesPlainRequestsAndLeavesTheRest) {
  for (std::string_view request : kPlainRequests) {
    auto ours = ParseWholeWithOurs(request);
    ASSERT_TRUE(ours.has_value()) << request;
    EXPECT_EQ(ours->second, request.size());
    EXPECT_EQ(ours->first, ParseFirstWithBeast(request).first);
    // Not all here yet: left to put(), which reads the rest.
    EXPECT_FALSE(ParseWholeWithOurs(request.substr(0, request.size() - 1)).has_value());
  }
  // Over the body limit: Beast's 413, not a fast-path request.
  EXPECT_FALSE(ParseWholeWithOurs("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 65\r\n\r\n" +
                                  std::string(65, 'b'))
                   .has_value());
  // Chunked, Expect and folded lines go to Beast.
  EXPECT_FALSE(ParseWholeWithOurs("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                                  "\r\n0\r\n\r\n")
                   .has_value());
  EXPECT_FALSE(ParseWholeWithOurs("GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n").has_value());
  // So does a second Host, for Validate() to refuse.
  EXPECT_FALSE(ParseWholeWithOurs("GET / HTTP/1.1\r\nHost: x\r\nHost: x\r\n\r\n").has_value());
}

// The fast path checks values eight bytes at a time: every byte value, at every place of
// values long enough to fill words and leave a tail, must be taken exactly when it is
// visible ASCII, SP or HTAB, and then with Beast's result.
TEST(RequestParserTest, FastPathTakesEveryPlainValueByteAndNoOther) {
  for (int byte = 0; byte < 256; ++byte) {
    const char c = static_cast<char>(byte);
    const bool plain = (byte >= 0x20 && byte < 0x7f) || byte == '\t';
    for (size_t length : {1u, 7u, 8u, 9u, 17u, 23u}) {
      for (size_t place = 0; place < length; ++place) {
        std::string value(length, 'v');
        value[place] = c;
        const std::string request = "GET / HTTP/1.1\r\nHost: x\r\nX-Value: a" + value +
                                    "z\r\n\r\n";
        auto ours = ParseWholeWithOurs(request);
        ASSERT_EQ(ours.has_value(), plain) << "byte " << byte << " at " << place << " of "
                                           << length;
        if (ours) {
          ASSERT_EQ(ours->first, ParseFirstWithBeast(request).first) << "byte " << byte;
        }
      }
    }
  }
}

TEST(RequestParserTest, FastPathTakesUpToItsFieldCountAndLeavesMoreToBeast) {
  auto request_with = [](size_t fields) {
    std::string request = "GET / HTTP/1.1\r\nHost: x\r\n";
    for (size_t i = 1; i < fields; ++i) request += "F" + std::to_string(i) + ": v\r\n";
    return request + "\r\n";
  };
  const std::string most = request_with(kMaxPlainFields);
  auto taken = ParseWholeWithOurs(most);
  ASSERT_TRUE(taken.has_value());
  EXPECT_EQ(taken->first, ParseFirstWithBeast(most).first);
  EXPECT_EQ(taken->first.fields.size(), kMaxPlainFields);
  const std::string more = request_with(kMaxPlainFields + 1);
  EXPECT_FALSE(ParseWholeWithOurs(more).has_value());
  EXPECT_EQ(ParseWithOurs(more, more.size()), ParseWithBeast(more, more.size()));
  EXPECT_EQ(ParseWithOurs(more, more.size()).fields.size(), kMaxPlainFields + 1);
}

TEST(RequestParserTest, FastPathKnowsHostHeadAndKeepAlive) {
  RequestParser head(kHeaderLimit, kBodyLimit);
  ASSERT_GT(head.ParseWhole("HEAD / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"), 0u);
  EXPECT_TRUE(head.is_head());
  EXPECT_TRUE(head.KeepAlive());
  EXPECT_EQ(head.version(), 10);
  std::string reason;
  EXPECT_EQ(head.Validate(&reason), 0);  // HTTP/1.0 needs no Host

  RequestParser no_host(kHeaderLimit, kBodyLimit);
  ASSERT_GT(no_host.ParseWhole("GET / HTTP/1.1\r\nConnection: close\r\n\r\n"), 0u);
  EXPECT_FALSE(no_host.KeepAlive());
  EXPECT_FALSE(no_host.is_head());
  EXPECT_EQ(no_host.Validate(&reason), 400);
  EXPECT_EQ(reason, "HTTP/1.1 requests need a Host header");

  RequestParser options(kHeaderLimit, kBodyLimit);
  ASSERT_GT(options.ParseWhole("OPTIONS * HTTP/1.1\r\nHOST: x\r\n\r\n"), 0u);
  EXPECT_EQ(options.Validate(&reason), 0);
  RequestParser asterisk(kHeaderLimit, kBodyLimit);
  ASSERT_GT(asterisk.ParseWhole("GET * HTTP/1.1\r\nHost: x\r\n\r\n"), 0u);
  EXPECT_EQ(asterisk.Validate(&reason), 400);
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
  // RFC 9112 3.2: more than one Host field is 400, whatever the version and values.
  EXPECT_EQ(ParsedHeader("GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n").Validate(&reason),
            400);
  EXPECT_EQ(reason, "more than one Host header");
  EXPECT_EQ(ParsedHeader("GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n").Validate(&reason),
            400);
  EXPECT_EQ(ParsedHeader("GET x HTTP/1.1\r\nHost: x\r\n\r\n").Validate(&reason), 400);
  EXPECT_EQ(reason, "request target must be a path starting with '/'");
  EXPECT_EQ(ParsedHeader("GET * HTTP/1.1\r\nHost: x\r\n\r\n").Validate(&reason), 400);
  EXPECT_EQ(ParsedHeader("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n")
                .Validate(&reason),
            400);
  EXPECT_EQ(reason, "Transfer-Encoding must end with chunked");
  // RFC 9112 6.1: a coding the server does not undo is 501, once chunked frames the body.
  for (std::string_view codings : {"gzip, chunked", "identity, chunked", "x-custom,chunked"}) {
    EXPECT_EQ(ParsedHeader("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: " +
                           std::string(codings) + "\r\n\r\n")
                  .Validate(&reason),
              501)
        << codings;
    EXPECT_EQ(reason, "only the chunked transfer coding is supported");
  }
  EXPECT_EQ(ParsedHeader("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n"
                         "Transfer-Encoding: chunked\r\n\r\n")
                .Validate(&reason),
            501);
  EXPECT_EQ(ParsedHeader("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n")
                .Validate(&reason),
            0);
}

}  // namespace
}  // namespace supercluster::net::internal
