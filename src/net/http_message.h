// Plain HTTP/1.1 request and response values, free of Boost, for every module that
// handles or sends HTTP. The server and client in this module convert to and from the
// wire; handlers and callers only see these.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace supercluster::net {

// Header fields in the order received. Names compare case-insensitively.
class Headers {
 public:
  // Appends a field; an existing field of the same name is kept (use Set to replace).
  void Add(std::string name, std::string value);
  // Replaces every field of this name with one field.
  void Set(std::string name, std::string value);
  void Remove(std::string_view name);
  // Removes every field whose name `drop` returns true for; the others keep their order.
  template <typename Predicate>
  void RemoveIf(Predicate drop) {
    std::erase_if(fields_, [&drop](const auto& field) { return drop(field.first); });
  }
  // The first value of the field, or "" when absent.
  std::string Get(std::string_view name) const;
  // The first value of the field, or null when absent; valid until the headers change.
  const std::string* Find(std::string_view name) const;
  bool Has(std::string_view name) const;
  // Makes room for `count` fields in all, so that adding them does not reallocate.
  void Reserve(size_t count) { fields_.reserve(count); }
  // Removes every field; the room stays.
  void Clear() { fields_.clear(); }

  const std::vector<std::pair<std::string, std::string>>& fields() const { return fields_; }
  bool empty() const { return fields_.empty(); }

 private:
  std::vector<std::pair<std::string, std::string>> fields_;
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
};

struct HttpResponse {
  int status = 200;
  Headers headers;
  std::string body;

  // A response with Content-Type set; the common cases.
  static HttpResponse Text(int status, std::string body);
  static HttpResponse Json(int status, std::string body);
};

// "OK", "Not Found", ... for a status code; "Unknown" when not a standard code.
std::string_view StatusReason(int status);

}  // namespace supercluster::net
