// A budget for log lines that a peer outside the process can cause over and over (a
// refused connection, a dropped peer, a refused call): at most `lines` in each `interval`;
// the rest are counted and left out, and the next line let through says how many were.
// Without it a peer that misbehaves in a loop writes the same line thousands of times a
// second, filling the disk and burying every other line. Thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

namespace supercluster::base {

class LogLimiter {
 public:
  using Clock = std::chrono::steady_clock;

  // Precondition: lines_per_interval > 0 and interval > 0.
  LogLimiter(int lines_per_interval, Clock::duration interval);

  // Whether a line may be logged at `now`. When it may, returns with `*left_out` set to
  // how many lines were refused since the last one allowed (usually 0).
  bool Allow(Clock::time_point now, uint64_t* left_out);
  bool Allow(uint64_t* left_out) { return Allow(Clock::now(), left_out); }

 private:
  const int lines_per_interval_;
  const Clock::duration interval_;
  std::mutex mutex_;
  Clock::time_point interval_start_;  // guarded by mutex_, as what follows
  int allowed_in_interval_ = 0;
  uint64_t left_out_ = 0;
};

// What to append to a line LogLimiter allowed: "" for 0, else " (N similar lines left
// out by the log limit)".
std::string LeftOutNote(uint64_t left_out);

}  // namespace supercluster::base
