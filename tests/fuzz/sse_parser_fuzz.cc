// libFuzzer target for the server-sent events code (net/sse.h): the incremental
// SseParser a client runs on an upstream's stream, and FormatSseEvent.
// Built by tests/fuzz/CMakeLists.txt (SUPERCLUSTER_FUZZ=ON), run by tests/fuzz/run.sh.
//
// Input: byte 0 picks the event size limit, byte 1 seeds how the stream is sliced, the
// rest is the stream. Checks besides "no crash, no leak, no UB":
//   - slicing does not matter: feeding the stream whole or in arbitrary slices gives the
//     same events and the same verdict (Feed() false = hostile stream);
//   - no event delivered is over the limit;
//   - round trip: FormatSseEvent() of an event built from the input, parsed back, gives
//     the event (line ends in data normalized to "\n", type and id cut at a line break).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "net/sse.h"

namespace {

using supercluster::net::SseEvent;
using supercluster::net::SseParser;

[[noreturn]] void Fail(const char* what) {
  std::fprintf(stderr, "sse_parser_fuzz: %s\n", what);
  std::abort();
}

bool Same(const SseEvent& a, const SseEvent& b) {
  return a.event == b.event && a.data == b.data && a.id == b.id;
}

bool SameEvents(const std::vector<SseEvent>& a, const std::vector<SseEvent>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!Same(a[i], b[i])) return false;
  }
  return true;
}

struct ParseOutcome {
  std::vector<SseEvent> events;
  bool accepted = true;  // false once Feed() reported a hostile stream
};

// Feeds `stream` in slices whose lengths come from a small generator seeded by `seed`;
// slice length 0 (seed 0) means the whole stream at once. Stops at the first false.
ParseOutcome Parse(std::string_view stream, size_t max_event_bytes, uint8_t seed) {
  ParseOutcome outcome;
  SseParser parser([&](const SseEvent& event) { outcome.events.push_back(event); },
                   max_event_bytes);
  uint32_t state = seed;
  size_t offset = 0;
  while (offset < stream.size()) {
    size_t length = stream.size() - offset;
    if (seed != 0) {
      state = state * 1103515245u + 12345u;
      length = std::min<size_t>(length, 1 + (state >> 16) % 7);  // slices of 1..7 bytes
    }
    if (!parser.Feed(stream.substr(offset, length))) {
      outcome.accepted = false;
      break;
    }
    offset += length;
  }
  return outcome;
}

std::string_view FirstLine(std::string_view text) {
  return text.substr(0, text.find_first_of("\r\n"));
}

// "\r\n" and "\r" become "\n", as a receiver rebuilds data lines.
std::string NormalizeLineEnds(std::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\r') {
      out += '\n';
      if (i + 1 < text.size() && text[i + 1] == '\n') ++i;
    } else {
      out += text[i];
    }
  }
  return out;
}

void CheckRoundTrip(std::string_view stream) {
  // Type and id from short pieces of the input, data from all of it.
  SseEvent original;
  original.event = std::string(stream.substr(0, std::min<size_t>(stream.size(), 12)));
  original.id = std::string(stream.substr(stream.size() / 2, 12));
  original.data = std::string(stream);

  std::vector<SseEvent> events;
  SseParser parser([&](const SseEvent& event) { events.push_back(event); },
                   4 * stream.size() + 1024);
  if (!parser.Feed(supercluster::net::FormatSseEvent(original))) {
    Fail("round trip: formatted event refused");
  }
  if (events.size() != 1) Fail("round trip: not exactly one event");
  SseEvent expected;
  expected.event = std::string(FirstLine(original.event));
  std::string_view id = FirstLine(original.id);
  // The parser ignores an id holding NUL (WHATWG), keeping the previous one ("").
  if (id.find('\0') == std::string_view::npos) expected.id = std::string(id);
  expected.data = NormalizeLineEnds(original.data);
  if (!Same(events[0], expected)) Fail("round trip: event changed");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  size_t max_event_bytes = (data[0] & 1) ? 64 : (1 << 20);  // small, and the default
  uint8_t seed = data[1];
  std::string_view stream(reinterpret_cast<const char*>(data + 2), size - 2);

  ParseOutcome whole = Parse(stream, max_event_bytes, 0);
  ParseOutcome sliced = Parse(stream, max_event_bytes, seed == 0 ? 1 : seed);
  if (whole.accepted != sliced.accepted) Fail("slicing changed the verdict");
  if (!SameEvents(whole.events, sliced.events)) Fail("slicing changed the events");
  for (const SseEvent& event : whole.events) {
    if (event.data.size() > max_event_bytes) Fail("event over the limit delivered");
  }

  CheckRoundTrip(stream);
  return 0;
}
