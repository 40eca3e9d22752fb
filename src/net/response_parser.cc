#include "net/response_parser.h"

#include <algorithm>
#include <cstring>

#include "net/http_parse.h"

namespace supercluster::net::internal {

namespace http = boost::beast::http;

size_t ResponseParser::ParseWhole(std::string_view received, size_t max_head, size_t max_body) {
  if (whole_ || got_some()) return 0;
  const char* at = received.data();
  const char* const end = at + received.size();
  // status-line = HTTP-version SP status-code SP [ reason-phrase ] CRLF
  if (end - at < 13 || std::string_view(at, 7) != "HTTP/1." || (at[7] != '0' && at[7] != '1') ||
      at[8] != ' ' || at[12] != ' ') {
    return 0;
  }
  const int version = at[7] == '1' ? 11 : 10;
  int status = 0;
  for (int i = 9; i < 12; ++i) {
    if (at[i] < '0' || at[i] > '9') return 0;
    status = status * 10 + (at[i] - '0');
  }
  if (status < 200 || status == 204 || status == 304) return 0;
  at += 13;
  while (at != end && ((*at > 0x20 && *at < 0x7f) || *at == ' ' || *at == '\t')) ++at;
  if (end - at < 2 || at[0] != '\r' || at[1] != '\n') return 0;
  at += 2;
  PlainFields fields;
  if (!ParsePlainFields(at, end, &head_.headers, &fields) || !fields.has_length) {
    head_.headers.Clear();
    return 0;
  }
  const size_t head_length = static_cast<size_t>(at - received.data());
  if (head_length >= max_head || fields.length > max_body ||
      static_cast<uint64_t>(end - at) < fields.length) {
    head_.headers.Clear();
    return 0;
  }
  status_ = head_.status = status;
  whole_ = true;
  whole_keep_alive_ = KeepsAlive(version, fields.connection);
  body_length_ = static_cast<size_t>(fields.length);
  return head_length;
}

void ResponseParser::TakeWholeBody(const char* data) {
  ErrorCode ignored;
  Store(boost::beast::string_view(data, body_length_), ignored);
  whole_done_ = true;
}

void ResponseParser::on_response_impl(int code, boost::beast::string_view, int,
                                      ErrorCode& error) {
  status_ = code;
  head_.status = code;
  // RFC 9110 15: status codes are 100 to 599. A 101 switches protocols, which this client
  // never asks for: passed on, it would leave the client's connection in limbo.
  if (code < 100 || code > 599 || code == 101) error = http::error::bad_status;
}

void ResponseParser::on_field_impl(http::field field, boost::beast::string_view name,
                                   boost::beast::string_view value, ErrorCode& error) {
  // Beast undoes chunked only, and would pass a gzip-coded body on as if it were the body
  // (RFC 9112 6.1: a coding the recipient does not understand must not be ignored).
  if (field == http::field::transfer_encoding &&
      !EqualsLowerIgnoreCase(std::string_view(value.data(), value.size()), "chunked")) {
    error = http::error::bad_transfer_encoding;
    return;
  }
  head_.headers.Add(std::string(name.data(), name.size()), std::string(value.data(), value.size()));
}

size_t ResponseParser::Store(boost::beast::string_view body, ErrorCode& error) {
  if (body_data_ == nullptr) {
    error = http::error::need_buffer;
    return 0;
  }
  size_t stored = std::min(body.size(), body_room_);
  if (stored > 0) std::memcpy(body_data_, body.data(), stored);
  body_data_ += stored;
  body_room_ -= stored;
  if (stored != body.size()) error = http::error::need_buffer;
  return stored;
}

}  // namespace supercluster::net::internal
