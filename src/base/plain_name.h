// Plain names: what a name that travels (a region, an instance, a model, a request id) may
// hold so that it goes into a header, a URL query, a file name, a log line or a terminal as
// it is, with nothing to escape.
#pragma once

#include <cstddef>
#include <string_view>

namespace supercluster::base {

// Whether `text` is 1 to `max_size` bytes of ASCII letters, digits, '-', '_' and '.'.
bool IsPlainName(std::string_view text, size_t max_size);

}  // namespace supercluster::base
