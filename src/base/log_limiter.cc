#include "base/log_limiter.h"

namespace supercluster::base {

LogLimiter::LogLimiter(int lines_per_interval, Clock::duration interval)
    : lines_per_interval_(lines_per_interval), interval_(interval) {}

bool LogLimiter::Allow(Clock::time_point now, uint64_t* left_out) {
  std::lock_guard lock(mutex_);
  if (allowed_in_interval_ == 0 || now - interval_start_ >= interval_) {
    interval_start_ = now;
    allowed_in_interval_ = 0;
  }
  if (allowed_in_interval_ >= lines_per_interval_) {
    ++left_out_;
    return false;
  }
  ++allowed_in_interval_;
  *left_out = left_out_;
  left_out_ = 0;
  return true;
}

std::string LeftOutNote(uint64_t left_out) {
  if (left_out == 0) return "";
  return " (" + std::to_string(left_out) + " similar line" + (left_out == 1 ? "" : "s") +
         " left out by the log limit)";
}

}  // namespace supercluster::base
