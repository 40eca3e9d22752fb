// Plain HTTP/1.1 request and response values, free of Boost, for every module that
// handles or sends HTTP. The server and client in this module convert to and from the
// wire; handlers and callers only see these.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace supercluster::net {

// ASCII case-insensitive equality, as header names and tokens compare. Not std::tolower:
// it is a locale-aware call per character, and every header lookup of every request and
// response comes through here.
inline bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i];
    char y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x + ('a' - 'A'));
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y + ('a' - 'A'));
    if (x != y) return false;
  }
  return true;
}

namespace internal {
// EqualsLowerIgnoreCase once the sizes are known to match (defined in http_message.cc, so
// that the size check, which rejects most candidates, is all that is inlined).
bool EqualsLowerIgnoreCaseOfSameSize(const char* text, const char* lower, size_t size);
}  // namespace internal

// The same against `lower`, a literal in lower-case ASCII: only `text` is folded, which
// the header parsers and the router's hop-by-hop filter, comparing every field with a few
// literals, need (folding both sides cost a proxied request 1 % more instructions).
// Eight bytes at a time where there are eight (see http_message.cc).
// Precondition: `lower` is ASCII with no upper-case letter.
inline bool EqualsLowerIgnoreCase(std::string_view text, std::string_view lower) {
  return text.size() == lower.size() &&
         internal::EqualsLowerIgnoreCaseOfSameSize(text.data(), lower.data(), text.size());
}

// Whether `c` may be part of a token (tchar, RFC 9110 section 5.6.2): the bytes of a
// header name or a method. The one definition: the parsers' table is built from it, and
// Headers::KnownName checks with it as the program compiles.
constexpr bool IsTokenCharacter(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

// Header fields in the order received. Names compare case-insensitively.
//
// Every name and value lives in one string, and each field is four offsets into it: a
// request's fields cost two allocations, not one per long name or value, and copying them
// costs the same two. (A string of its own for each name and value made one in six of a
// proxied request's allocations.) Removing a field leaves its bytes behind until they
// outweigh the live ones.
class Headers {
 public:
  // One field, as views into the Headers; valid until the Headers change.
  using Field = std::pair<std::string_view, std::string_view>;

  // A field name written into the program, such as "X-Supercluster-Request-Id", checked
  // to be a token (RFC 9110, section 5.6.2) as the program is compiled: a name that is
  // not one does not compile. Fields added with one (AddKnown, SetKnown) need no check of
  // their name when they are written out.
  class KnownName {
   public:
    consteval KnownName(const char* name) : text_(name) {  // NOLINT: implicit on purpose
      if (!IsToken(text_)) throw "a header name must be a token (RFC 9110, 5.6.2)";
    }
    constexpr std::string_view text() const { return text_; }

   private:
    static consteval bool IsToken(std::string_view text) {
      if (text.empty()) return false;
      for (char c : text) {
        if (!IsTokenCharacter(c)) return false;
      }
      return true;
    }
    std::string_view text_;
  };

  // Appends a copy of the field; an existing field of the same name is kept (use Set to
  // replace). Either view may point into these Headers.
  void Add(std::string_view name, std::string_view value);
  // Where a field's name and value lie in a block of bytes, as offsets from its start.
  struct Offsets {
    uint32_t name_at;
    uint32_t name_size;
    uint32_t value_at;
    uint32_t value_size;
  };
  // Adds `count` fields that all lie in `block`, such as a header section as received: the
  // block is stored once, separators and all, and each field is kept as offsets into it.
  // One copy instead of one per field; for the parsers.
  // Preconditions: every field of fields[0..count) lies within `block`, and `block` does
  // not view these Headers; every name is a token (RFC 9110 5.6.2) and every value holds
  // only visible ASCII, SP and HTAB, as checked() then says.
  void AddWithin(std::string_view block, const Offsets* fields, size_t count);
  // Replaces every field of this name with one field.
  void Set(std::string_view name, std::string_view value);
  // Add and Set for a name known when the program is compiled (see KnownName).
  void AddKnown(KnownName name, std::string_view value);
  void SetKnown(KnownName name, std::string_view value);
  void Remove(std::string_view name);
  // Removes every field for which `drop` (called with a Field, in order, once each)
  // returns true; the others keep their order. The views `drop` gets are valid during the
  // call, so it can note a value as it goes (copy what you keep).
  template <typename Predicate>
  void RemoveIf(Predicate drop) {
    std::erase_if(spans_, [this, &drop](const Span& span) {
      return drop(Field(NameOf(span), ValueOf(span)));
    });
    CompactIfMostlyGarbage();
  }
  // Keeps the first `count` fields and drops the rest; nothing when count >= size(). For a
  // caller that adds a few fields for one use and then takes them back: the room of fields
  // that were stored last is reused.
  void Truncate(size_t count);
  // The first value of the field, or "" when absent.
  std::string Get(std::string_view name) const;
  // The first value of the field, or nullopt when absent; valid until the headers change.
  std::optional<std::string_view> Find(std::string_view name) const;
  bool Has(std::string_view name) const;
  // Makes room for `count` fields of `bytes` name and value bytes in all, so that adding
  // them does not reallocate.
  void Reserve(size_t count, size_t bytes) {
    spans_.reserve(count);
    bytes_.reserve(bytes);
  }
  // Removes every field; the room stays.
  void Clear() {
    spans_.clear();
    bytes_.clear();
  }

  size_t size() const { return spans_.size(); }
  bool empty() const { return spans_.empty(); }
  // The i-th field, i < size().
  Field operator[](size_t i) const { return {NameOf(spans_[i]), ValueOf(spans_[i])}; }
  // Whether the i-th field came through AddWithin, whose caller checked its bytes: a
  // serializer need not check them again. (Checking every forwarded field twice, once
  // parsing and once writing, was 2 % of a proxied request's instructions.)
  bool checked(size_t i) const { return spans_[i].checked; }
  // Whether the i-th field's name needs no check: it was checked() or is a KnownName.
  // (The two names a router adds to every request took 380 instructions to check.)
  bool name_checked(size_t i) const { return spans_[i].checked || spans_[i].name_known; }

  // The fields in order: `for (auto [name, value] : headers)`.
  class Iterator {
   public:
    Iterator(const Headers* headers, size_t index) : headers_(headers), index_(index) {}
    Field operator*() const { return (*headers_)[index_]; }
    Iterator& operator++() {
      ++index_;
      return *this;
    }
    bool operator==(const Iterator& other) const = default;

   private:
    const Headers* headers_;
    size_t index_;
  };
  Iterator begin() const { return Iterator(this, 0); }
  Iterator end() const { return Iterator(this, spans_.size()); }

  // A copy of every field, for tests and comparisons.
  std::vector<std::pair<std::string, std::string>> Copy() const;
  // The bytes stored, those of removed fields included (for tests of their reclaiming).
  size_t stored_bytes() const { return bytes_.size(); }

 private:
  struct Span {
    uint32_t name_at;  // into bytes_, as Offsets
    uint32_t name_size;
    uint32_t value_at;
    uint32_t value_size;
    bool checked;     // see checked()
    bool name_known;  // added with a KnownName
  };
  // Not substr(): its range check costs more than the lookups it serves.
  std::string_view NameOf(const Span& span) const {
    return std::string_view(bytes_.data() + span.name_at, span.name_size);
  }
  std::string_view ValueOf(const Span& span) const {
    return std::string_view(bytes_.data() + span.value_at, span.value_size);
  }
  // Drops the bytes of removed fields once they outweigh the live ones (and there are more
  // than kCompactAbove bytes in all).
  void CompactIfMostlyGarbage();
  static constexpr size_t kCompactAbove = 2048;
  // The room the first Add makes.
  static constexpr size_t kFirstBytes = 128;
  // The room AddWithin leaves after a block when it has to grow.
  static constexpr size_t kRoomAfterBlock = 64;
  static constexpr size_t kFirstFields = 6;

  std::vector<Span> spans_;
  std::string bytes_;  // every field's name and value, back to back
};

struct HttpRequest {
  std::string method = "GET";
  std::string target = "/";  // path and query as sent: "/v1/models?x=1"
  Headers headers;
  std::string body;
  std::string remote_address;  // the peer, as "ip:port" or "unix"; set by the server

  // The target without the query string.
  std::string_view path() const;
  // The value of a query parameter (percent-decoded), or "" when absent.
  std::string QueryParam(std::string_view name) const;
  // The same, but nullopt when absent, so that `?name=` (given, empty) differs from no name.
  std::optional<std::string> FindQueryParam(std::string_view name) const;
};

struct HttpResponse {
  int status = 200;
  Headers headers;
  std::string body;

  // A response with Content-Type set; the common cases.
  static HttpResponse Text(int status, std::string body);
  static HttpResponse Json(int status, std::string body);
  // An error answer in the shape every Supercluster service gives (docs/data-plane.md),
  // which OpenAI clients parse: {"error":{"message":"...","type":"..."}}. For the errors
  // the net layer answers itself; `message` may hold client bytes (a path), which are
  // escaped, and invalid UTF-8 becomes U+FFFD.
  static HttpResponse JsonError(int status, std::string_view message, std::string_view type);
};

// The body of such an answer, {"error":{"message":"...","type":"..."}}, for every error any
// service sends (whole or as a stream's `event: error` data): one shape everywhere.
std::string JsonErrorBody(std::string_view message, std::string_view type);

// "OK", "Not Found", ... for a status code; "Unknown" when not a standard code.
std::string_view StatusReason(int status);

}  // namespace supercluster::net
