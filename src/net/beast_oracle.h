// For tests only: what the tests and fuzz targets that hold net's parsers to Beast's own
// parsers share: Beast's parser fed one message, and fields put in the order Beast's
// container keeps. Header-only, so that the fuzz build (which has no test_support) can
// use it too.
#pragma once

#include <algorithm>
#include <boost/beast/http.hpp>
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace supercluster::net::testing {

using Fields = std::vector<std::pair<std::string, std::string>>;

// Feeds `bytes` to a fresh Beast parser (limits already set) until its first message is
// done or it stops; returns how many bytes it took. `error` is set when it refused them.
template <class Parser>
size_t PutFirstMessage(Parser& parser, std::string_view bytes, boost::system::error_code& error) {
  size_t used = 0;
  while (!parser.is_done() && used < bytes.size()) {
    size_t step = parser.put(boost::asio::buffer(bytes.data() + used, bytes.size() - used), error);
    used += step;
    if (error == boost::beast::http::error::need_more && step > 0) {
      error = {};
      continue;
    }
    break;
  }
  return used;
}

// `fields` in the order Beast's field container keeps them: each name's fields together
// (case-insensitively), at the place of the name's first field, in their order. Our
// parsers keep the order of arrival; the order among one name's fields, the order that
// means something (RFC 9110 5.3), is the same. Comparisons against Beast group both sides.
inline Fields GroupedByName(const Fields& fields) {
  auto lower = [](std::string text) {
    for (char& c : text) {
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + ('a' - 'A'));
    }
    return text;
  };
  std::vector<std::string> names;  // lower-case, in order of first appearance
  for (const auto& field : fields) {
    if (std::find(names.begin(), names.end(), lower(field.first)) == names.end()) {
      names.push_back(lower(field.first));
    }
  }
  Fields grouped;
  for (const std::string& name : names) {
    for (const auto& field : fields) {
      if (lower(field.first) == name) grouped.push_back(field);
    }
  }
  return grouped;
}

// The fields of a parsed Beast message, in its container's order.
template <class Message>
Fields FieldsOf(const Message& message) {
  Fields fields;
  for (const auto& field : message) {
    fields.emplace_back(std::string(field.name_string()), std::string(field.value()));
  }
  return fields;
}

}  // namespace supercluster::net::testing
