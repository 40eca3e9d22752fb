#include "net/http_message.h"

#include <algorithm>
#include <cstdint>
#include <utility>

#include "base/utf8.h"
#include "net/byte_scan.h"

namespace supercluster::net {

// Where `lower` has a letter, the case bit (0x20) of text's byte is set before the
// compare, so that both 'A' and 'a' match 'a'; every other byte must match as it is, as
// byte by byte. Eight bytes at a time when there are eight, the last word overlapping the
// one before.
bool internal::EqualsLowerIgnoreCaseOfSameSize(const char* text, const char* lower,
                                               size_t size) {
  if (size < 8) {
    for (size_t i = 0; i < size; ++i) {
      char c = text[i];
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + ('a' - 'A'));
      if (c != lower[i]) return false;
    }
    return true;
  }
  auto word_equals = [](const char* text_word, const char* lower_word) {
    const uint64_t l = LoadWord(lower_word);
    // 0x20 in each byte of `l` from 'a' (0x61) to 'z' (0x7a): adding 0x1f sets a byte's
    // top bit from 'a' up, adding 0x05 from past 'z' up; no sum carries into the next
    // byte, since every byte of an ASCII `l` is below 0x80.
    const uint64_t letters =
        (((l + kEveryByteOne * 0x1f) & ~(l + kEveryByteOne * 0x05)) & kEveryByteTop) >> 2;
    return (LoadWord(text_word) | letters) == l;
  };
  for (size_t at = 0;; at += 8) {
    if (at + 8 > size) at = size - 8;
    if (!word_equals(text + at, lower + at)) return false;
    if (at + 8 == size) return true;
  }
}

namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Percent-decodes a query component; '+' means space. A malformed escape is kept as is.
std::string DecodeQueryComponent(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '+') {
      out += ' ';
    } else if (c == '%' && i + 2 < text.size() && HexValue(text[i + 1]) >= 0 &&
               HexValue(text[i + 2]) >= 0) {
      out += static_cast<char>(HexValue(text[i + 1]) * 16 + HexValue(text[i + 2]));
      i += 2;
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

void Headers::Add(std::string_view name, std::string_view value) {
  Span span;
  span.checked = false;
  span.name_known = false;
  span.name_at = static_cast<uint32_t>(bytes_.size());
  span.name_size = static_cast<uint32_t>(name.size());
  span.value_at = span.name_at + span.name_size;
  span.value_size = static_cast<uint32_t>(value.size());
  const size_t needed = bytes_.size() + name.size() + value.size();
  if (bytes_.empty()) {
    // The first field: nothing here for the views to point into. Room for a few more, so
    // that a handler's handful of fields costs one allocation for the bytes and one for
    // the offsets.
    bytes_.reserve(std::max(needed, kFirstBytes));
    if (spans_.capacity() == 0) spans_.reserve(kFirstFields);
  } else if (needed > bytes_.capacity()) {
    // Either view may point into bytes_: the old buffer stays until both are copied.
    std::string grown;
    grown.reserve(std::max(needed, 2 * bytes_.capacity()));
    grown.append(bytes_).append(name).append(value);
    bytes_ = std::move(grown);
    spans_.push_back(span);
    return;
  }
  bytes_.append(name).append(value);  // no reallocation, so the views stay valid
  spans_.push_back(span);
}

void Headers::AddWithin(std::string_view block, const Offsets* fields, size_t count) {
  const auto base = static_cast<uint32_t>(bytes_.size());
  // Room for the field or two that a proxy or handler adds to what it received, which
  // would otherwise cost a second allocation and a copy of the whole section.
  if (bytes_.capacity() < bytes_.size() + block.size()) {
    bytes_.reserve(bytes_.size() + block.size() + kRoomAfterBlock);
  }
  bytes_.append(block);
  for (size_t i = 0; i < count; ++i) {
    const Offsets& field = fields[i];
    spans_.push_back({base + field.name_at, field.name_size, base + field.value_at,
                      field.value_size, /*checked=*/true, /*name_known=*/false});
  }
}

void Headers::Set(std::string_view name, std::string_view value) {
  // Added first, because either view may point into a field about to go; then every
  // older field of the name goes, and the new one, last, stays.
  Add(name, value);
  const Span added = spans_.back();
  const std::string_view added_name = NameOf(added);
  auto kept_end = std::remove_if(spans_.begin(), spans_.end() - 1, [&](const Span& span) {
    return EqualsIgnoreCase(NameOf(span), added_name);
  });
  *kept_end = added;
  spans_.erase(kept_end + 1, spans_.end());
  CompactIfMostlyGarbage();
}

void Headers::AddKnown(KnownName name, std::string_view value) {
  Add(name.text(), value);
  spans_.back().name_known = true;
}

void Headers::SetKnown(KnownName name, std::string_view value) {
  Set(name.text(), value);  // the new field is the last
  spans_.back().name_known = true;
}

void Headers::Remove(std::string_view name) {
  std::erase_if(spans_, [&](const Span& span) { return EqualsIgnoreCase(NameOf(span), name); });
  CompactIfMostlyGarbage();
}

void Headers::Truncate(size_t count) {
  if (count >= spans_.size()) return;
  spans_.resize(count);
  size_t live_end = 0;
  for (const Span& span : spans_) {
    live_end = std::max<size_t>(live_end, std::max(span.name_at + span.name_size,
                                                   span.value_at + span.value_size));
  }
  bytes_.resize(live_end);
}

std::string Headers::Get(std::string_view name) const {
  return std::string(Find(name).value_or(std::string_view()));
}

std::optional<std::string_view> Headers::Find(std::string_view name) const {
  for (const Span& span : spans_) {
    if (EqualsIgnoreCase(NameOf(span), name)) return ValueOf(span);
  }
  return std::nullopt;
}

bool Headers::Has(std::string_view name) const { return Find(name).has_value(); }

std::vector<std::pair<std::string, std::string>> Headers::Copy() const {
  std::vector<std::pair<std::string, std::string>> fields;
  fields.reserve(spans_.size());
  for (auto [name, value] : *this) fields.emplace_back(name, value);
  return fields;
}

void Headers::CompactIfMostlyGarbage() {
  // Small headers are never worth compacting, and checking costs a pass over the fields.
  if (bytes_.size() < kCompactAbove) return;
  size_t live = 0;
  for (const Span& span : spans_) live += span.name_size + span.value_size;
  // Garbage up to the live bytes is cheaper to keep than to move.
  if (bytes_.size() <= 2 * live) return;
  std::string compacted;
  compacted.reserve(live);
  for (Span& span : spans_) {
    const std::string_view name = NameOf(span);
    const std::string_view value = ValueOf(span);
    span.name_at = static_cast<uint32_t>(compacted.size());
    span.value_at = span.name_at + span.name_size;
    compacted.append(name);
    compacted.append(value);
  }
  bytes_ = std::move(compacted);
}

std::string_view HttpRequest::path() const {
  std::string_view view = target;
  return view.substr(0, view.find('?'));
}

std::string HttpRequest::QueryParam(std::string_view name) const {
  return FindQueryParam(name).value_or("");
}

std::optional<std::string> HttpRequest::FindQueryParam(std::string_view name) const {
  size_t question = target.find('?');
  if (question == std::string::npos) return std::nullopt;
  std::string_view query = std::string_view(target).substr(question + 1);
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    size_t eq = pair.find('=');
    std::string_view key = pair.substr(0, eq);
    if (DecodeQueryComponent(key) == name) {
      return eq == std::string_view::npos ? "" : DecodeQueryComponent(pair.substr(eq + 1));
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return std::nullopt;
}

HttpResponse HttpResponse::Text(int status, std::string body) {
  HttpResponse response;
  response.status = status;
  response.headers.Set("Content-Type", "text/plain; charset=utf-8");
  response.body = std::move(body);
  return response;
}

HttpResponse HttpResponse::Json(int status, std::string body) {
  HttpResponse response;
  response.status = status;
  response.headers.Set("Content-Type", "application/json");
  response.body = std::move(body);
  return response;
}

namespace {

// Appends `text` to *out as the inside of a JSON string. net does not link a JSON
// library (Boost and OpenSSL only), and its error answers need just this.
void AppendJsonStringContent(std::string_view text, std::string* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (size_t at = 0; at < text.size();) {
    const auto byte = static_cast<unsigned char>(text[at]);
    if (byte >= 0x80) {
      const size_t length = base::Utf8SequenceLength(text.substr(at));
      if (length == 0) {
        out->append("\\ufffd");
        ++at;
      } else {
        out->append(text.substr(at, length));
        at += length;
      }
      continue;
    }
    if (byte == '"' || byte == '\\') {
      out->push_back('\\');
      out->push_back(static_cast<char>(byte));
    } else if (byte < 0x20) {
      out->append("\\u00");
      out->push_back(kHex[byte >> 4]);
      out->push_back(kHex[byte & 0xf]);
    } else {
      out->push_back(static_cast<char>(byte));
    }
    ++at;
  }
}

}  // namespace

std::string JsonErrorBody(std::string_view message, std::string_view type) {
  std::string body = "{\"error\":{\"message\":\"";
  AppendJsonStringContent(message, &body);
  body += "\",\"type\":\"";
  AppendJsonStringContent(type, &body);
  body += "\"}}";
  return body;
}

HttpResponse HttpResponse::JsonError(int status, std::string_view message,
                                     std::string_view type) {
  return Json(status, JsonErrorBody(message, type));
}

std::string_view StatusReason(int status) {
  switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
  }
  return "Unknown";
}

}  // namespace supercluster::net
