#include "net/sse.h"

namespace supercluster::net {

namespace {

// The event type and id are single-line fields: a line break in them would start a new
// field, so they are cut there.
std::string_view FirstLine(std::string_view text) {
  return text.substr(0, text.find_first_of("\r\n"));
}

}  // namespace

std::string FormatSseEvent(const SseEvent& event) {
  std::string out;
  if (!event.event.empty()) out += "event: " + std::string(FirstLine(event.event)) + "\n";
  if (!event.id.empty()) out += "id: " + std::string(FirstLine(event.id)) + "\n";
  // Every line of the data gets its own data: field so the receiver can rebuild the
  // newlines; CR and CRLF are line ends too, so they are split the same way.
  std::string_view data = event.data;
  size_t start = 0;
  while (true) {
    size_t end = data.find_first_of("\r\n", start);
    out += "data: ";
    out += data.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
    out += "\n";
    if (end == std::string_view::npos) break;
    start = end + ((data[end] == '\r' && end + 1 < data.size() && data[end + 1] == '\n') ? 2 : 1);
  }
  out += "\n";
  return out;
}

SseParser::SseParser(EventCallback on_event, size_t max_event_bytes)
    : on_event_(std::move(on_event)), max_event_bytes_(max_event_bytes) {}

bool SseParser::Feed(std::string_view bytes) {
  for (char c : bytes) {
    if (skip_leading_lf_) {
      skip_leading_lf_ = false;
      if (c == '\n') continue;  // the LF of a CRLF pair
    }
    if (c == '\r' || c == '\n') {
      skip_leading_lf_ = (c == '\r');
      ProcessLine(line_);
      line_.clear();
      continue;
    }
    line_ += c;
    if (line_.size() + pending_.data.size() > max_event_bytes_) return false;
  }
  return true;
}

void SseParser::ProcessLine(std::string_view line) {
  if (first_line_) {
    first_line_ = false;
    if (line.starts_with("\xEF\xBB\xBF")) line.remove_prefix(3);  // UTF-8 byte order mark
  }
  if (line.empty()) {
    if (has_data_) {
      if (!pending_.data.empty() && pending_.data.back() == '\n') pending_.data.pop_back();
      on_event_(pending_);
    }
    // The id persists across events as the "last event id"; type and data do not.
    pending_.event.clear();
    pending_.data.clear();
    has_data_ = false;
    return;
  }
  if (line.front() == ':') return;  // comment
  size_t colon = line.find(':');
  std::string_view field = line.substr(0, colon);
  std::string_view value;
  if (colon != std::string_view::npos) {
    value = line.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  }
  if (field == "data") {
    pending_.data.append(value);
    pending_.data += '\n';
    has_data_ = true;
  } else if (field == "event") {
    pending_.event = std::string(value);
  } else if (field == "id") {
    if (value.find('\0') == std::string_view::npos) pending_.id = std::string(value);
  }
  // "retry" and unknown fields are ignored.
}

}  // namespace supercluster::net
