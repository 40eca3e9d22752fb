// The time to set deadlines, idle checks and decays from, read cheaply.
//
// CoarseNow() reads the kernel's coarse monotonic clock: the clock steady_clock reads, kept
// by the scheduler tick instead of read from the TSC, so at most one tick (a few ms) behind
// it. It costs about 5 ns against about 24 ns for steady_clock::now() on the benchmark
// machine (docs/performance.md). A deadline set from it may fire up to a tick early, which
// no timeout of seconds notices. Not for latencies: those need the precise clock.
// Thread-safe.
#pragma once

#include <time.h>

#include <chrono>

namespace supercluster::base {

inline std::chrono::steady_clock::time_point CoarseNow() {
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
  return std::chrono::steady_clock::time_point(std::chrono::seconds(now.tv_sec) +
                                               std::chrono::nanoseconds(now.tv_nsec));
}

}  // namespace supercluster::base
