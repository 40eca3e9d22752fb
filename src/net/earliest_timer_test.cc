#include "net/earliest_timer.h"

#include <boost/asio/io_context.hpp>
#include <functional>
#include <gtest/gtest.h>

namespace supercluster::net::internal {
namespace {

using namespace std::chrono_literals;
using Clock = EarliestTimer::Clock;

// How often the timer fired, and when the last firing came after the test's start.
struct Fired {
  int count = 0;
  Clock::duration after{};
};

TEST(EarliestTimerTest, AnEarlierDeadlineReArmsALaterOneDoesNot) {
  boost::asio::io_context io;
  EarliestTimer timer(io.get_executor());
  auto start = Clock::now();
  Fired fired;
  auto on_fire = [&] {
    ++fired.count;
    fired.after = Clock::now() - start;
  };
  timer.FireBy(start + 400ms, on_fire);
  timer.FireBy(start + 50ms, on_fire);   // earlier: the timer moves
  timer.FireBy(start + 900ms, on_fire);  // later: nothing changes
  io.run();
  EXPECT_EQ(fired.count, 1);
  EXPECT_GE(fired.after, 50ms);
  EXPECT_LT(fired.after, 350ms) << "fired at the first, later deadline";
}

// FiresBy says what FireBy would do: nothing for a deadline at or after the armed one.
TEST(EarliestTimerTest, FiresByTellsWhetherADeadlineIsCoveredAlready) {
  boost::asio::io_context io;
  EarliestTimer timer(io.get_executor());
  auto start = Clock::now();
  EXPECT_FALSE(timer.FiresBy(start + 1h)) << "not armed";
  timer.FireBy(start + 50ms, [] {});
  EXPECT_TRUE(timer.FiresBy(start + 50ms));
  EXPECT_TRUE(timer.FiresBy(start + 1h));
  EXPECT_FALSE(timer.FiresBy(start + 49ms));
  timer.Cancel();
  EXPECT_FALSE(timer.FiresBy(start + 1h)) << "cancelled";
  timer.FireBy(start + 10ms, [] {});
  io.run();
  EXPECT_FALSE(timer.FiresBy(start + 1h)) << "fired";
}

TEST(EarliestTimerTest, CancelledTimerDoesNotFireAndCanBeSetAgain) {
  boost::asio::io_context io;
  EarliestTimer timer(io.get_executor());
  int fired = 0;
  timer.FireBy(Clock::now() + 20ms, [&] { ++fired; });
  timer.Cancel();
  io.run();
  EXPECT_EQ(fired, 0);
  io.restart();
  timer.FireBy(Clock::now() + 20ms, [&] { ++fired; });
  io.run();
  EXPECT_EQ(fired, 1);
}

TEST(EarliestTimerTest, FiredTimerIsArmedAgainByTheNextDeadline) {
  boost::asio::io_context io;
  EarliestTimer timer(io.get_executor());
  int fired = 0;
  std::function<void()> on_fire = [&] {
    if (++fired < 3) timer.FireBy(Clock::now() + 10ms, on_fire);
  };
  timer.FireBy(Clock::now() + 10ms, on_fire);
  io.run();
  EXPECT_EQ(fired, 3);
}

}  // namespace
}  // namespace supercluster::net::internal
