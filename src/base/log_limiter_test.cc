#include "base/log_limiter.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace supercluster::base {
namespace {

using std::chrono::milliseconds;
using Clock = LogLimiter::Clock;

TEST(LogLimiterTest, LetsThroughTheBudgetThenCountsWhatItLeavesOut) {
  LogLimiter limiter(3, milliseconds(1000));
  const Clock::time_point start = Clock::now();
  uint64_t left_out = 99;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(limiter.Allow(start + milliseconds(i), &left_out)) << i;
    EXPECT_EQ(left_out, 0u);
  }
  for (int i = 0; i < 5; ++i) EXPECT_FALSE(limiter.Allow(start + milliseconds(10 + i), &left_out));
  // Still within the interval that began with the first line.
  EXPECT_FALSE(limiter.Allow(start + milliseconds(999), &left_out));
  // The next interval: the first line says how many were left out, and only it.
  ASSERT_TRUE(limiter.Allow(start + milliseconds(1000), &left_out));
  EXPECT_EQ(left_out, 6u);
  ASSERT_TRUE(limiter.Allow(start + milliseconds(1001), &left_out));
  EXPECT_EQ(left_out, 0u);
}

TEST(LogLimiterTest, AQuietSpellStartsAFreshInterval) {
  LogLimiter limiter(1, milliseconds(100));
  const Clock::time_point start = Clock::now();
  uint64_t left_out = 0;
  ASSERT_TRUE(limiter.Allow(start, &left_out));
  EXPECT_FALSE(limiter.Allow(start + milliseconds(50), &left_out));
  ASSERT_TRUE(limiter.Allow(start + milliseconds(5000), &left_out));
  EXPECT_EQ(left_out, 1u);
  // The interval runs from the line just allowed, not from the first one.
  EXPECT_FALSE(limiter.Allow(start + milliseconds(5099), &left_out));
  EXPECT_TRUE(limiter.Allow(start + milliseconds(5100), &left_out));
}

TEST(LogLimiterTest, ThreadsShareOneBudget) {
  LogLimiter limiter(10, std::chrono::hours(1));
  std::atomic<int> allowed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) {
        uint64_t left_out = 0;
        if (limiter.Allow(&left_out)) ++allowed;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(allowed.load(), 10);
}

TEST(LogLimiterTest, LeftOutNote) {
  EXPECT_EQ(LeftOutNote(0), "");
  EXPECT_EQ(LeftOutNote(1), " (1 similar line left out by the log limit)");
  EXPECT_EQ(LeftOutNote(12), " (12 similar lines left out by the log limit)");
}

}  // namespace
}  // namespace supercluster::base
