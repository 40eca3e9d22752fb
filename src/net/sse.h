// Server-sent events (the text/event-stream format of the WHATWG HTML standard): encode
// events on the server side, decode a stream incrementally on the client side.
#pragma once

#include <functional>
#include <string>
#include <string_view>

namespace supercluster::net {

struct SseEvent {
  std::string event;  // "" means the default type "message"
  std::string data;   // may hold newlines; each becomes its own data: line
  std::string id;
};

// The wire form of one event, ending with the blank line that dispatches it.
std::string FormatSseEvent(const SseEvent& event);

// Feeds on arbitrary slices of a stream (a chunk may end mid-line or mid-UTF-8) and calls
// the callback for each complete event. Comment lines (":...") and retry: are ignored.
// An event (its data so far plus the current line) over max_event_bytes makes Feed()
// return false: the stream is hostile. Event type and id are cut at a line break when
// formatting, since they are one-line fields.
class SseParser {
 public:
  using EventCallback = std::function<void(const SseEvent&)>;
  explicit SseParser(EventCallback on_event, size_t max_event_bytes = 1 << 20);

  bool Feed(std::string_view bytes);

 private:
  void ProcessLine(std::string_view line);

  EventCallback on_event_;
  size_t max_event_bytes_;
  std::string line_;
  SseEvent pending_;
  bool has_data_ = false;
  bool skip_leading_lf_ = false;
  bool first_line_ = true;
};

}  // namespace supercluster::net
