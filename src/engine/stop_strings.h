// Stop strings: ends generation when the text produced so far contains one of them, and
// never shows the user any part of it. What the generation loop feeds each piece of
// detokenized text through before it streams the text out.
//
// Text that could still turn out to be the beginning of a stop string is held back until
// the next piece decides it; Flush() releases it at the end. Matching is on bytes; since
// both the text (from the Detokenizer) and the stop strings are whole UTF-8, held-back text
// always starts on a character boundary.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace supercluster::engine {

class StopStringMatcher {
 public:
  // Empty strings in `stops` are ignored.
  explicit StopStringMatcher(std::vector<std::string> stops);

  struct Output {
    std::string text;      // safe to show now
    bool stopped = false;  // a stop string was found; `text` ends just before it
  };
  // Precondition: no earlier call returned stopped.
  Output Add(std::string_view piece);
  // End of generation: whatever was held back.
  std::string Flush();

 private:
  std::vector<std::string> stops_;
  std::string pending_;
};

}  // namespace supercluster::engine
