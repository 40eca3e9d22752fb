#include "net/http_parse.h"

#include <array>
#include <cstdint>

#include "net/byte_scan.h"
#include "net/http_server.h"

namespace supercluster::net {
namespace internal {

namespace http = boost::beast::http;

namespace {

// tchar of RFC 9110, section 5.6.2, as a table: every header name of every request and
// response goes through IsToken.
constexpr std::array<bool, 256> kTokenChars = [] {
  std::array<bool, 256> table{};
  for (int byte = 0; byte < 256; ++byte) table[byte] = IsTokenCharacter(static_cast<char>(byte));
  return table;
}();

}  // namespace

// Fields a request usually has, reserved at once: a few from the client plus the few a
// proxy or handler adds.
constexpr size_t kExpectedFields = 12;
constexpr size_t kExpectedFieldBytes = 512;

RequestParser::RequestParser(size_t max_header_bytes, uint64_t max_body_bytes)
    : max_header_bytes_(max_header_bytes), max_body_bytes_(max_body_bytes) {
  header_limit(static_cast<std::uint32_t>(max_header_bytes));
  body_limit(max_body_bytes);
  eager(true);
  request_.headers.Reserve(kExpectedFields, kExpectedFieldBytes);
}

void RequestParser::on_request_impl(http::verb method, boost::beast::string_view method_text,
                                    boost::beast::string_view target, int version, ErrorCode&) {
  method_ = method;
  version_ = version;
  request_.method.assign(method_text.data(), method_text.size());
  request_.target.assign(target.data(), target.size());
}

void RequestParser::on_field_impl(http::field field, boost::beast::string_view name,
                                  boost::beast::string_view value, ErrorCode&) {
  switch (field) {
    case http::field::host:
      if (has_host_) has_more_than_one_host_ = true;
      has_host_ = true;
      break;
    case http::field::transfer_encoding:
      has_transfer_encoding_ = true;
      // Beast takes the body as chunked when chunked is the last coding, and would leave
      // any coding before it (gzip, ...) undone; Validate() refuses those.
      if (!EqualsLowerIgnoreCase(value, "chunked")) has_other_coding_ = true;
      break;
    case http::field::expect:
      if (!seen_expect_) expects_continue_ = EqualsLowerIgnoreCase(value, "100-continue");
      seen_expect_ = true;
      break;
    default:
      break;
  }
  request_.headers.Add(std::string_view(name.data(), name.size()),
                       std::string_view(value.data(), value.size()));
}

void RequestParser::on_body_init_impl(const boost::optional<std::uint64_t>& content_length,
                                      ErrorCode&) {
  // basic_parser has already held the length to the body limit.
  if (content_length) request_.body.reserve(static_cast<size_t>(*content_length));
}

size_t RequestParser::on_body_impl(boost::beast::string_view body, ErrorCode&) {
  request_.body.append(body.data(), body.size());
  return body.size();
}

size_t RequestParser::on_chunk_body_impl(std::uint64_t, boost::beast::string_view body,
                                         ErrorCode&) {
  request_.body.append(body.data(), body.size());
  return body.size();
}

namespace {

bool IsVisibleAscii(char c) { return c > 0x20 && c < 0x7f; }

// A byte the fast path takes in a field value: visible ASCII, SP and HTAB (Beast also
// takes bytes from 0x80 up, which the fast path leaves to it).
bool IsPlainValueByte(char c) {
  const auto byte = static_cast<unsigned char>(c);
  return (byte >= 0x20 && byte < 0x7f) || byte == '\t';
}

// Whether the `size` bytes at `text` are all plain value bytes. Eight at a time: a word
// with no byte from 0x80 up, no DEL and none below SP is plain whole; only a word with a
// byte below SP (an HTAB, or a control byte) is looked at byte by byte.
bool AllPlainValueChars(const char* text, size_t size) {
  size_t at = 0;
  for (; at + 8 <= size; at += 8) {
    const uint64_t word = LoadWord(text + at);
    if (SomeByteIsHigh(word) || SomeByteIs(word, 0x7f)) return false;
    if (SomeByteIsBelow(word, 0x20)) {
      for (size_t i = at; i < at + 8; ++i) {
        if (!IsPlainValueByte(text[i])) return false;
      }
    }
  }
  for (; at < size; ++at) {
    if (!IsPlainValueByte(text[at])) return false;
  }
  return true;
}

// Notes what the fast path needs to know of one field into *facts; false when the field
// is one it leaves to Beast.
bool NotePlainField(std::string_view name, std::string_view value, bool* has_connection,
                    PlainFields* facts) {
  if (EqualsLowerIgnoreCase(name, "host")) {
    if (facts->has_host) return false;  // Beast's, for RequestParser::Validate to refuse
    facts->has_host = true;
  } else if (EqualsLowerIgnoreCase(name, "content-length")) {
    // One plain decimal; lists, repeats and signs are Beast's to judge.
    if (facts->has_length || value.empty() || value.size() > 18) return false;
    for (char c : value) {
      if (c < '0' || c > '9') return false;
      facts->length = facts->length * 10 + static_cast<uint64_t>(c - '0');
    }
    facts->has_length = true;
  } else if (EqualsLowerIgnoreCase(name, "connection")) {
    if (*has_connection) return false;
    *has_connection = true;
    if (EqualsLowerIgnoreCase(value, "close")) {
      facts->connection = PlainFields::Connection::kClose;
    } else if (EqualsLowerIgnoreCase(value, "keep-alive")) {
      facts->connection = PlainFields::Connection::kKeepAlive;
    } else {
      return false;
    }
  } else if (EqualsLowerIgnoreCase(name, "transfer-encoding") ||
             EqualsLowerIgnoreCase(name, "expect") || EqualsLowerIgnoreCase(name, "upgrade") ||
             EqualsLowerIgnoreCase(name, "proxy-connection")) {
    return false;
  }
  return true;
}

}  // namespace

bool ParsePlainFields(const char*& at, const char* end, Headers* headers, PlainFields* facts) {
  auto at_crlf = [&] { return end - at >= 2 && at[0] == '\r' && at[1] == '\n'; };
  const char* const section = at;
  // The fields are gathered first and added at the end, the whole section in one copy.
  // (Offsets, not views: an array of views would be zeroed on every call.)
  Headers::Offsets fields[kMaxPlainFields];
  size_t count = 0;
  bool has_connection = false;
  while (!at_crlf()) {
    if (count == kMaxPlainFields) return false;
    // A line at a time: memchr finds its end, one pass checks the name up to the colon,
    // and the value's check runs over a known length in a loop the compiler vectorizes;
    // cheaper than the byte-by-byte scan until a byte did not fit that this replaced.
    const auto* line_end =
        static_cast<const char*>(std::memchr(at, '\r', static_cast<size_t>(end - at)));
    if (line_end == nullptr || end - line_end < 2 || line_end[1] != '\n') return false;
    // The name: token characters up to the colon, found in the same pass that checks them.
    // A folded line starts with SP or HTAB, which no name has: it stops here. The CR at
    // line_end is no token character either, so the scan needs no bound of its own.
    const char* colon = at;
    while (kTokenChars[static_cast<unsigned char>(*colon)]) ++colon;
    if (colon == at || colon == line_end || *colon != ':') return false;
    const std::string_view name(at, static_cast<size_t>(colon - at));
    const char* start = colon + 1;
    const char* value_end = line_end;
    if (!AllPlainValueChars(start, static_cast<size_t>(value_end - start))) return false;
    while (start != value_end && (*start == ' ' || *start == '\t')) ++start;
    while (value_end != start && (value_end[-1] == ' ' || value_end[-1] == '\t')) --value_end;
    const std::string_view value(start, static_cast<size_t>(value_end - start));
    at = line_end + 2;
    if (!NotePlainField(name, value, &has_connection, facts)) return false;
    fields[count++] = {static_cast<uint32_t>(name.data() - section),
                       static_cast<uint32_t>(name.size()),
                       static_cast<uint32_t>(value.data() - section),
                       static_cast<uint32_t>(value.size())};
  }
  headers->AddWithin(std::string_view(section, static_cast<size_t>(at - section)), fields, count);
  at += 2;
  return true;
}

bool KeepsAlive(int version, PlainFields::Connection connection) {
  return version == 11 ? connection != PlainFields::Connection::kClose
                       : connection == PlainFields::Connection::kKeepAlive;
}

size_t RequestParser::ParseWhole(std::string_view received) {
  if (whole_ || got_some()) return 0;
  const char* at = received.data();
  const char* const end = at + received.size();
  auto is_token_char = [](char c) { return kTokenChars[static_cast<unsigned char>(c)]; };
  auto at_crlf = [&] { return end - at >= 2 && at[0] == '\r' && at[1] == '\n'; };

  // request-line = method SP request-target SP HTTP-version CRLF
  const char* start = at;
  while (at != end && is_token_char(*at)) ++at;
  if (at == start || at == end || *at != ' ') return 0;
  const std::string_view method(start, static_cast<size_t>(at - start));
  start = ++at;
  while (at != end && IsVisibleAscii(*at)) ++at;
  if (at == start || at == end || *at != ' ') return 0;
  const std::string_view target(start, static_cast<size_t>(at - start));
  ++at;
  if (end - at < 10 || std::string_view(at, 7) != "HTTP/1." || (at[7] != '0' && at[7] != '1')) {
    return 0;
  }
  const int version = at[7] == '1' ? 11 : 10;
  at += 8;
  if (!at_crlf()) return 0;
  at += 2;

  // Fields go straight into request_; a request left to put() leaves none behind.
  struct ClearUnlessTaken {
    Headers& headers;
    bool taken = false;
    ~ClearUnlessTaken() {
      if (!taken) headers.Clear();
    }
  } fields_guard{request_.headers};
  PlainFields fields;
  if (!ParsePlainFields(at, end, &request_.headers, &fields)) return 0;
  // Beast's limits, Beast's answers (431, 413). A section of exactly the limit goes to Beast
  // too, so that the fast path never has to match Beast's limit to the byte.
  if (static_cast<size_t>(at - received.data()) >= max_header_bytes_) return 0;
  const uint64_t length = fields.length;
  if (length > max_body_bytes_) return 0;
  if (static_cast<uint64_t>(end - at) < length) return 0;  // the rest of the body is to come

  // Constructed and moved: assign() takes std::string's general replace path, twice the
  // instructions for these short strings.
  request_.method = std::string(method);
  request_.target = std::string(target);
  fields_guard.taken = true;
  if (length > 0) request_.body = std::string(at, static_cast<size_t>(length));
  at += length;
  method_ = method == "HEAD" ? http::verb::head
            : method == "OPTIONS" ? http::verb::options
                                  : http::verb::unknown;  // only these two are asked about
  version_ = version;
  has_host_ = fields.has_host;
  whole_keep_alive_ = KeepsAlive(version, fields.connection);
  whole_ = true;
  return static_cast<size_t>(at - received.data());
}

int RequestParser::Validate(std::string* reason) const {
  // Beast itself refuses versions other than 1.0 and 1.1 (bad_version, answered 400).
  // Beast treats a body as chunked only when chunked is the last coding, and otherwise
  // falls back to Content-Length or no body; another server on the path may frame the
  // same bytes differently, which is request smuggling. RFC 9112 6.3 says: answer 400.
  if (has_transfer_encoding_ && !chunked()) {
    *reason = "Transfer-Encoding must end with chunked";
    return 400;
  }
  // RFC 9112 6.1: a transfer coding the server does not understand should be answered
  // 501. This server undoes chunked only, and a handler handed the body of "gzip, chunked"
  // would take compressed bytes for the body.
  if (has_other_coding_) {
    *reason = "only the chunked transfer coding is supported";
    return 501;
  }
  std::string_view target = request_.target;
  bool origin_form = !target.empty() && target.front() == '/';
  bool asterisk_form = target == "*" && method_ == http::verb::options;
  bool absolute_form = target.starts_with("http://") || target.starts_with("https://");
  if (!origin_form && !asterisk_form && !absolute_form) {
    *reason = "request target must be a path starting with '/'";
    return 400;
  }
  // RFC 9112 3.2 says MUST: which of two Host fields names the target is ambiguous, and
  // another server on the path may pick the other one.
  if (has_more_than_one_host_) {
    *reason = "more than one Host header";
    return 400;
  }
  if (version_ == 11 && !has_host_) {
    *reason = "HTTP/1.1 requests need a Host header";
    return 400;
  }
  return 0;
}

HttpRequest RequestParser::TakeRequest() {
  std::string& target = request_.target;
  if (!target.starts_with("/") && target != "*") {
    // Validate() let through only absolute form here.
    size_t authority_start = target.find("://") + 3;
    size_t path_start = target.find_first_of("/?", authority_start);
    target.erase(0, path_start == std::string::npos ? target.size() : path_start);
  }
  if (target.empty() || target.front() == '?') target.insert(0, "/");
  return std::move(request_);
}

namespace {

bool HasBareLineFeed(std::string_view text) {
  for (size_t lf = text.find('\n'); lf != std::string_view::npos; lf = text.find('\n', lf + 1)) {
    if (lf == 0 || text[lf - 1] != '\r') return true;
  }
  return false;
}

}  // namespace

HeaderScan ScanHeaderSection(std::string_view received, size_t max_header_bytes) {
  // A bare LF line end is an error the parser reports at once (400); waiting for a CRLF
  // CRLF that will never come would hold the connection until the read timeout.
  if (HasBareLineFeed(received)) return HeaderScan::kComplete;
  size_t end = received.find("\r\n\r\n");
  if (end == std::string_view::npos) {
    return received.size() >= max_header_bytes ? HeaderScan::kTooLarge : HeaderScan::kNeedMore;
  }
  return end + 4 > max_header_bytes ? HeaderScan::kTooLarge : HeaderScan::kComplete;
}

bool ChunkedRemainderMayComplete(std::string_view unparsed, size_t max_header_bytes,
                                 std::string* reason) {
  // Beast has consumed every CR it saw end a line: the CRLF that ends a chunk's data stays
  // unparsed with the next size line. So an LF first in `unparsed` is bare too.
  if (HasBareLineFeed(unparsed)) {
    *reason = "bare LF in a chunk size line or trailer section; lines end with CRLF";
    return false;
  }
  if (unparsed.size() >= max_header_bytes) {
    *reason = "chunk size line or trailer section over " + std::to_string(max_header_bytes) +
              " bytes";
    return false;
  }
  return true;
}

int StatusForParseError(const boost::system::error_code& error) {
  if (error == http::error::header_limit) return 431;
  if (error == http::error::body_limit) return 413;
  return 400;
}


bool IsToken(std::string_view text) {
  if (text.empty()) return false;
  for (char c : text) {
    if (!kTokenChars[static_cast<unsigned char>(c)]) return false;
  }
  return true;
}

}  // namespace internal

base::Result<HttpRequest> ParseHttpRequest(std::string_view bytes, size_t max_header_bytes,
                                           uint64_t max_body_bytes) {
  switch (internal::ScanHeaderSection(bytes, max_header_bytes)) {
    case internal::HeaderScan::kTooLarge:
      return base::InvalidArgument("431 header section over " + std::to_string(max_header_bytes) +
                                   " bytes");
    case internal::HeaderScan::kNeedMore:
      return base::InvalidArgument("400 truncated request");
    case internal::HeaderScan::kComplete:
      break;
  }
  internal::RequestParser parser(max_header_bytes, max_body_bytes);
  boost::system::error_code error;
  size_t consumed = parser.ParseWhole(bytes);
  while (!parser.complete() && consumed < bytes.size()) {
    size_t used = parser.put(boost::asio::buffer(bytes.data() + consumed, bytes.size() - consumed),
                             error);
    consumed += used;
    if (error == boost::beast::http::error::need_more) {
      if (used == 0) break;  // needs bytes that are not there
      error = {};
      continue;
    }
    if (error) {
      return base::InvalidArgument(std::to_string(internal::StatusForParseError(error)) + " " +
                                   error.message());
    }
  }
  // In the order the server answers a request that came in one read: its head is
  // validated before the rest of its body is waited for.
  std::string reason;
  if (parser.complete() || parser.is_header_done()) {
    if (int status = parser.Validate(&reason); status != 0) {
      return base::InvalidArgument(std::to_string(status) + " " + reason);
    }
  }
  if (!parser.complete()) {
    if (parser.is_header_done() && parser.chunked() &&
        !internal::ChunkedRemainderMayComplete(bytes.substr(consumed), max_header_bytes,
                                               &reason)) {
      return base::InvalidArgument("400 " + reason);
    }
    // A body delimited by end of stream is not allowed in requests, so put_eof() only
    // turns a truncated message into an error.
    parser.put_eof(error);
    if (error || !parser.is_done()) return base::InvalidArgument("400 truncated request");
  }
  return parser.TakeRequest();
}

}  // namespace supercluster::net
