// Tests internal::ResponseParser's fast path (ParseWhole) against Beast's own
// response_parser<string_body>: on every prefix of a set of answers, whatever the fast path
// takes, Beast takes too, with the same status, fields, body, keep-alive and length; and
// the fast path takes the plain answers it exists for. The callback path (put()) is
// checked end to end against the same oracle in upstream_client_test.
#include "net/response_parser.h"

#include <gtest/gtest.h>

#include <boost/beast/http.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "net/beast_oracle.h"

namespace supercluster::net::internal {
namespace {

namespace http = boost::beast::http;
using Fields = std::vector<std::pair<std::string, std::string>>;

constexpr size_t kHeadLimit = 1024;
constexpr size_t kBodyLimit = 64;

struct Outcome {
  int status = 0;
  Fields fields;
  std::string body;
  bool keep_alive = false;
  size_t used = 0;

  bool operator==(const Outcome& other) const {
    return status == other.status &&
           testing::GroupedByName(fields) == testing::GroupedByName(other.fields) &&
           body == other.body && keep_alive == other.keep_alive && used == other.used;
  }
};

std::ostream& operator<<(std::ostream& out, const Outcome& outcome) {
  out << outcome.status << (outcome.keep_alive ? " keep-alive" : " close") << " used "
      << outcome.used << " body '" << outcome.body << "' fields";
  for (const auto& [name, value] : outcome.fields) out << " [" << name << ": " << value << "]";
  return out;
}

// The fast path, or nullopt when it left the bytes to put().
std::optional<Outcome> FastPath(std::string_view bytes) {
  ResponseParser parser;
  size_t head = parser.ParseWhole(bytes, kHeadLimit, kBodyLimit);
  if (head == 0) return std::nullopt;
  char piece[kBodyLimit];
  parser.SetBodyBuffer(piece, sizeof(piece));
  parser.TakeWholeBody(bytes.data() + head);
  EXPECT_TRUE(parser.complete());
  Outcome outcome;
  outcome.status = parser.status();
  outcome.keep_alive = parser.KeepAlive();
  outcome.body.assign(piece, sizeof(piece) - parser.body_room());
  outcome.used = head + parser.body_length();
  outcome.fields = parser.TakeHead().headers.Copy();
  return outcome;
}

// Beast on `bytes` in one piece, as far as the first answer, or nullopt when it does not
// find a whole answer there.
std::optional<Outcome> WithBeast(std::string_view bytes) {
  http::response_parser<http::string_body> parser;
  parser.header_limit(kHeadLimit);
  parser.body_limit(kBodyLimit);
  parser.eager(true);
  boost::system::error_code error;
  const size_t used = testing::PutFirstMessage(parser, bytes, error);
  if (error || !parser.is_done()) return std::nullopt;
  Outcome outcome;
  const auto& message = parser.get();
  outcome.status = static_cast<int>(message.result_int());
  outcome.fields = testing::FieldsOf(message);
  outcome.body = message.body();
  outcome.keep_alive = parser.keep_alive();
  outcome.used = used;
  return outcome;
}

const std::vector<std::string> kAnswers = {
    "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello",
    "HTTP/1.1 201 Created\r\nX-A: 1\r\nX-B: 2\r\nx-a: 3\r\nContent-Length: 2\r\n\r\nok",
    "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
    "HTTP/1.0 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok",
    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: Close\r\n\r\nok",
    "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
    "HTTP/1.1 500 \r\nContent-Length: 3\r\nServer:  spaced \t\r\nEmpty:\r\n\r\nbad",
    "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 4\r\n\r\nbusyHTTP/1.1",
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
    "HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\n\r\nabc",
    "HTTP/1.1 200 OK\r\nContent-Length: +1\r\n\r\nz",
    "HTTP/1.1 200 OK\r\nContent-Length: 65\r\n\r\n" + std::string(65, 'L'),
    "HTTP/1.1 204 No Content\r\n\r\n",
    "HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n",
    "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nz",
    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n",
    "HTTP/1.1 200 OK\r\n\r\nuntil the close",
    "HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 1\r\n\r\nz",
    "HTTP/1.1 200 Caf\xc3\xa9\r\nContent-Length: 1\r\n\r\nz",
    "HTTP/1.1 200 OK\r\nX: caf\xc3\xa9\r\nContent-Length: 1\r\n\r\nz",
    "HTTP/1.1 200 OK\r\nBad Name: v\r\nContent-Length: 1\r\n\r\nz",
    "HTTP/1.1 2000 OK\r\nContent-Length: 1\r\n\r\nz",
    "HTTP/1.1 20 OK\r\nContent-Length: 1\r\n\r\nz",
    "HTTP/1.1 200\r\nContent-Length: 1\r\n\r\nz",
    "HTTP/2.0 200 OK\r\nContent-Length: 1\r\n\r\nz",
    "HTTP/1.1 200 OK\r\nProxy-Connection: close\r\nContent-Length: 1\r\n\r\nz",
    "HTTP/1.1 200 OK\r\nConnection: keep-alive, close\r\nContent-Length: 1\r\n\r\nz",
    "HTTP/1.1 200 OK\r\nX-Long: " + std::string(1100, 'v') + "\r\nContent-Length: 1\r\n\r\nz",
};

TEST(ResponseParserTest, FastPathAgreesWithBeastOnEveryPrefix) {
  for (std::string_view answer : kAnswers) {
    for (size_t length = 0; length <= answer.size(); ++length) {
      std::string_view prefix = answer.substr(0, length);
      std::optional<Outcome> ours = FastPath(prefix);
      if (!ours) continue;  // left to put()
      std::optional<Outcome> beast = WithBeast(prefix);
      ASSERT_TRUE(beast.has_value()) << "taken, but Beast refuses: " << prefix;
      ASSERT_EQ(*ours, *beast) << "answer: " << answer << "\nprefix " << length;
    }
  }
}

TEST(ResponseParserTest, FastPathTakesPlainAnswersAndLeavesTheRest) {
  for (size_t i = 0; i < 8; ++i) {  // the first eight answers are plain ones
    std::string_view answer = kAnswers[i];
    std::optional<Outcome> ours = FastPath(answer);
    ASSERT_TRUE(ours.has_value()) << answer;
    EXPECT_EQ(ours, WithBeast(answer));
    EXPECT_FALSE(FastPath(answer.substr(0, ours->used - 1)).has_value()) << answer;
  }
  for (size_t i = 8; i < kAnswers.size(); ++i) {
    EXPECT_FALSE(FastPath(kAnswers[i]).has_value()) << kAnswers[i];
  }
}

}  // namespace
}  // namespace supercluster::net::internal

namespace supercluster::net::internal {
namespace {

// What put() makes of a whole answer: OK with its status, or the error.
boost::system::error_code PutAll(std::string_view bytes, int* status = nullptr) {
  ResponseParser parser;
  char piece[256];
  parser.SetBodyBuffer(piece, sizeof(piece));
  boost::system::error_code error;
  size_t used = 0;
  while (used < bytes.size() && !error && !parser.is_done()) {
    size_t took = parser.put(boost::asio::buffer(bytes.data() + used, bytes.size() - used), error);
    if (took == 0 && !error) break;
    used += took;
  }
  if (status != nullptr) *status = parser.status();
  return error;
}

// The callback path refuses what no upstream of ours may send: a status outside 100 to 599,
// a 101 nobody asked for, a transfer coding other than chunked (whose body Beast would pass
// on still coded).
TEST(ResponseParserTest, RefusesImpossibleStatusesAndCodingsOtherThanChunked) {
  for (const std::string& answer : {
           std::string("HTTP/1.1 099 Odd\r\nContent-Length: 1\r\n\r\nz"),
           std::string("HTTP/1.1 999 Odd\r\nContent-Length: 1\r\n\r\nz"),
           std::string("HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n"),
           std::string("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nzz"),
           std::string("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"),
           std::string("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: "
                       "chunked\r\n\r\n0\r\n\r\n"),
           std::string("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n"),
       }) {
    EXPECT_TRUE(PutAll(answer)) << answer;
  }
  for (const std::string& answer : {
           std::string("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"),
           std::string("HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n0\r\n\r\n"),
           std::string("HTTP/1.1 599 Custom\r\nContent-Length: 1\r\n\r\nz"),
           std::string("HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"),
       }) {
    int status = 0;
    EXPECT_FALSE(PutAll(answer, &status)) << answer;
    EXPECT_NE(status, 0) << answer;
  }
}

}  // namespace
}  // namespace supercluster::net::internal
