// Internal to net: the server's request parser, its header-section scan and its
// error-to-status mapping, shared by the server and ParseHttpRequest() so that the fuzzer
// exercises exactly the server's parsing; and the plain-field parser that this parser's
// fast path shares with the upstream client's (response_parser.h).
#pragma once

#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/error.hpp>

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "net/http_message.h"

namespace supercluster::net::internal {

// Parses one request straight into an HttpRequest. Beast's basic_parser does the HTTP
// syntax, the framing checks (Content-Length and Transfer-Encoding, chunks) and the limits;
// this class keeps only what the server needs from what it reports. (Beast's own
// request_parser first stores every field in its field container, with an allocation each,
// which the server then copied into the HttpRequest: 4 % of a proxied request's
// instructions.) One parser per request.
class RequestParser final : public boost::beast::http::basic_parser<true> {
 public:
  using ErrorCode = boost::system::error_code;

  // Beast applies `max_header_bytes` to each window of input it parses; the server checks
  // the whole header section first (ScanHeaderSection). A body over `max_body_bytes` fails
  // with error::body_limit.
  RequestParser(size_t max_header_bytes, uint64_t max_body_bytes);

  // The fast path, for a fresh parser: when `received` starts with a whole request of the
  // plainest kind (every byte of it here, no Transfer-Encoding, Expect, Upgrade,
  // Proxy-Connection, second Host or folded line, at most one plain Content-Length within
  // the body limit, Connection absent or "close" or "keep-alive", only visible ASCII in the
  // target and values, a header section under the header limit), parses it and
  // returns its length; the request is then complete. Otherwise returns 0 and leaves the
  // parser untouched, for put() to parse the bytes (and to refuse them, when they are
  // malformed: this path never refuses anything).
  // Why: Beast's parser was 9 % of a proxied request's instructions.
  // What it accepts, Beast accepts too, with the same result; request_parser_test and the
  // http_request fuzz target hold it to that.
  size_t ParseWhole(std::string_view received);

  // Whether the request is complete: by ParseWhole, or by put().
  bool complete() const { return whole_ || is_done(); }
  // Whether the connection stays open after the answer (HTTP/1.1 without "close", or
  // HTTP/1.0 with "keep-alive").
  bool KeepAlive() const { return whole_ ? whole_keep_alive_ : keep_alive(); }

  // After is_header_done() or ParseWhole():
  int version() const { return version_; }  // 10 or 11
  bool is_head() const { return method_ == boost::beast::http::verb::head; }
  // Whether the (first) Expect field asks for "100-continue".
  bool expects_continue() const { return expects_continue_; }
  // What Beast accepts but we do not (framing, transfer codings, request-target form,
  // a missing or repeated Host): the status to answer (0 when acceptable; 400, or 501 for a transfer coding
  // other than chunked), with a reason in *reason.
  int Validate(std::string* reason) const;

  // The request; once, after complete(). An absolute-form target ("http://host/path") is
  // reduced to its path and query, as RFC 9112 3.2.2 asks of a server that is not a proxy.
  HttpRequest TakeRequest();

 private:
  void on_request_impl(boost::beast::http::verb method, boost::beast::string_view method_text,
                       boost::beast::string_view target, int version, ErrorCode&) override;
  void on_response_impl(int, boost::beast::string_view, int, ErrorCode&) override {}
  void on_field_impl(boost::beast::http::field field, boost::beast::string_view name,
                     boost::beast::string_view value, ErrorCode&) override;
  void on_header_impl(ErrorCode&) override {}
  void on_body_init_impl(const boost::optional<std::uint64_t>& content_length,
                         ErrorCode&) override;
  size_t on_body_impl(boost::beast::string_view body, ErrorCode&) override;
  void on_chunk_header_impl(std::uint64_t, boost::beast::string_view, ErrorCode&) override {}
  size_t on_chunk_body_impl(std::uint64_t, boost::beast::string_view body,
                            ErrorCode&) override;
  void on_finish_impl(ErrorCode&) override {}

  HttpRequest request_;
  size_t max_header_bytes_;
  uint64_t max_body_bytes_;
  bool whole_ = false;  // parsed by ParseWhole
  bool whole_keep_alive_ = false;
  boost::beast::http::verb method_ = boost::beast::http::verb::unknown;
  int version_ = 11;
  bool has_host_ = false;
  bool has_more_than_one_host_ = false;
  bool has_transfer_encoding_ = false;
  bool has_other_coding_ = false;  // a Transfer-Encoding field other than just "chunked"
  bool seen_expect_ = false;
  bool expects_continue_ = false;
};

// The header fields of the plainest kind, as the fast paths (RequestParser::ParseWhole,
// the upstream client's ResponseParser::ParseWhole) take them, and what they tell.
struct PlainFields {
  enum class Connection { kUnsaid, kClose, kKeepAlive };
  bool has_host = false;
  bool has_length = false;
  uint64_t length = 0;  // the Content-Length, when has_length
  Connection connection = Connection::kUnsaid;
};

// The most fields the fast paths take; a section with more goes to Beast.
constexpr size_t kMaxPlainFields = 64;

// Parses `*( field-name ":" OWS field-value OWS CRLF ) CRLF` from `at` (which it advances
// past the final CRLF) into `headers` and `facts`. Returns false, having added no field,
// when a line is not of the plainest kind: a folded line, bytes other than visible ASCII,
// SP and HTAB in a value, Transfer-Encoding, Expect, Upgrade, Proxy-Connection, a
// Content-Length that is not one plain decimal, a Connection other than one "close" or
// "keep-alive", or a second Host; when there are more than kMaxPlainFields fields; or when
// the section does not end before `end`.
bool ParsePlainFields(const char*& at, const char* end, Headers* headers, PlainFields* facts);

// Whether a message of `version` (10 or 11) with that Connection field keeps the
// connection open.
bool KeepsAlive(int version, PlainFields::Connection connection);

// Copies pieces one after another into a buffer whose size the caller worked out
// beforehand: how the server and the upstream client write a message head in one
// allocation. Precondition: the pieces fit.
class PieceWriter {
 public:
  explicit PieceWriter(char* at) : at_(at) {}
  // Always inlined: a literal piece ("\r\n") is then a copy of known size, a move or two
  // instead of a call to memcpy (a proxied request writes about twenty such pieces).
  [[gnu::always_inline]] void Put(std::string_view text) {
    if (text.empty()) return;  // an empty view may have no data pointer, which memcpy forbids
    std::memcpy(at_, text.data(), text.size());
    at_ += text.size();
  }
  char* at() const { return at_; }

 private:
  char* at_;
};

// Beast applies its header limit to each window of input it parses, not to the header
// section as a whole, so the server first collects the whole header section and checks
// its size itself. Given the bytes received so far for a request:
enum class HeaderScan { kNeedMore, kTooLarge, kComplete };
HeaderScan ScanHeaderSection(std::string_view received, size_t max_header_bytes);

// Beast's parser waits for the whole of a chunk's size line (extensions and all), and of
// the last chunk's line with the trailer section, before it parses them, with no limit of
// its own; and it ends those lines at CRLF only. A line of any length would be held in
// memory, and lines ended by a bare LF waited on until the read timeout. So whenever a
// chunked body's parser asks for more, what it left unparsed (always part of those lines)
// is checked here: false, with the reason to answer 400, when it holds a bare LF or has
// reached `max_header_bytes`; true to read on.
bool ChunkedRemainderMayComplete(std::string_view unparsed, size_t max_header_bytes,
                                 std::string* reason);

// The status the server answers for a parse error: 431, 413 or 400.
int StatusForParseError(const boost::system::error_code& error);

// Whether `text` is an RFC 9110 token (a method or a header name): not empty, and only
// letters, digits and !#$%&'*+-.^_`|~. ASCII only, without the locale std::isalnum
// consults on every call (a visible cost when every header of every message goes through).
bool IsToken(std::string_view text);

}  // namespace supercluster::net::internal
