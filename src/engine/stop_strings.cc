#include "engine/stop_strings.h"

#include <algorithm>

namespace supercluster::engine {

StopStringMatcher::StopStringMatcher(std::vector<std::string> stops) {
  for (std::string& stop : stops) {
    if (!stop.empty()) stops_.push_back(std::move(stop));
  }
}

StopStringMatcher::Output StopStringMatcher::Add(std::string_view piece) {
  pending_.append(piece);
  Output output;
  // The earliest complete stop string wins.
  size_t first_stop = std::string::npos;
  for (const std::string& stop : stops_) {
    first_stop = std::min(first_stop, pending_.find(stop));
  }
  if (first_stop != std::string::npos) {
    output.text = pending_.substr(0, first_stop);
    output.stopped = true;
    pending_.clear();
    return output;
  }
  // Hold back the longest tail that is a proper prefix of some stop string.
  size_t hold = 0;
  for (const std::string& stop : stops_) {
    size_t longest = std::min(stop.size() - 1, pending_.size());
    for (size_t length = longest; length > hold; --length) {
      if (pending_.compare(pending_.size() - length, length, stop, 0, length) == 0) {
        hold = length;
        break;
      }
    }
  }
  output.text = pending_.substr(0, pending_.size() - hold);
  pending_.erase(0, pending_.size() - hold);
  return output;
}

std::string StopStringMatcher::Flush() {
  std::string rest = std::move(pending_);
  pending_.clear();
  return rest;
}

}  // namespace supercluster::engine
