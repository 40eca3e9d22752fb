// Internal to net: the upstream client's response parser. It builds the ResponseHead
// directly (Beast's own parser stores each field in its field container first, which the
// head was then copied from) and puts body bytes into a buffer the caller provides, as
// Beast's buffer_body does. Parsing, framing and the checks on both stay Beast's
// basic_parser's, except for the fast path, ParseWhole, as RequestParser has one.
#pragma once

#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/error.hpp>

#include <cstdint>
#include <string_view>

#include "net/http_client.h"

namespace supercluster::net::internal {

class ResponseParser final : public boost::beast::http::basic_parser<false> {
 public:
  using ErrorCode = boost::system::error_code;

  ResponseParser() { head_.headers.Reserve(8, 256); }

  // The fast path, for a fresh parser: when `received` starts with a whole answer of the
  // plainest kind (head and all of a Content-Length body of at most `max_body` bytes here,
  // status 200 to 599 but not 204 or 304, fields as ParsePlainFields takes them, head
  // under `max_head` bytes), parses its head and returns the head's length; the body
  // (body_length() bytes) is then next in `received`, for TakeWholeBody. Otherwise returns
  // 0 and leaves the parser untouched, for put() (which also does every refusing).
  // Not for the answer to a HEAD request, whose Content-Length describes no body.
  // Why: Beast's parser was 11 % of a proxied request's instructions.
  size_t ParseWhole(std::string_view received, size_t max_head, size_t max_body);
  // After ParseWhole: the body's length, and whether ParseWhole took the answer.
  size_t body_length() const { return body_length_; }
  bool whole() const { return whole_; }
  // After ParseWhole: stores the body (body_length() bytes, from `data`) in the body buffer
  // as put() would; the answer is then complete. Precondition: the buffer has the room.
  void TakeWholeBody(const char* data);
  // Whether the answer is complete: by ParseWhole and TakeWholeBody, or by put().
  bool complete() const { return whole_ ? whole_done_ : is_done(); }
  // Whether the connection may carry another request afterwards.
  bool KeepAlive() const { return whole_ ? whole_keep_alive_ : keep_alive(); }

  int status() const { return status_; }
  // The head; call once, after is_header_done() or ParseWhole().
  ResponseHead TakeHead() { return std::move(head_); }

  // Where the next body bytes go. When it is full, put() stops with need_buffer.
  void SetBodyBuffer(char* data, size_t size) {
    body_data_ = data;
    body_room_ = size;
  }
  size_t body_room() const { return body_room_; }

 private:
  void on_request_impl(boost::beast::http::verb, boost::beast::string_view,
                       boost::beast::string_view, int, ErrorCode&) override {}
  // Refuse (put() fails) a status outside 100 to 599 or 101, and any transfer coding but
  // chunked.
  void on_response_impl(int code, boost::beast::string_view, int, ErrorCode& error) override;
  void on_field_impl(boost::beast::http::field field, boost::beast::string_view name,
                     boost::beast::string_view value, ErrorCode& error) override;
  void on_header_impl(ErrorCode&) override {}
  void on_body_init_impl(const boost::optional<std::uint64_t>&, ErrorCode&) override {}
  size_t on_body_impl(boost::beast::string_view body, ErrorCode& error) override {
    return Store(body, error);
  }
  void on_chunk_header_impl(std::uint64_t, boost::beast::string_view, ErrorCode&) override {}
  size_t on_chunk_body_impl(std::uint64_t, boost::beast::string_view body,
                            ErrorCode& error) override {
    return Store(body, error);
  }
  void on_finish_impl(ErrorCode&) override {}

  // As buffer_body's reader: copies what fits, and need_buffer when not all of it did.
  size_t Store(boost::beast::string_view body, ErrorCode& error);

  int status_ = 0;
  ResponseHead head_;
  char* body_data_ = nullptr;
  size_t body_room_ = 0;
  bool whole_ = false;  // taken by ParseWhole
  bool whole_done_ = false;
  bool whole_keep_alive_ = false;
  size_t body_length_ = 0;
};

}  // namespace supercluster::net::internal
