#include "net/busy_poll.h"

#include <pthread.h>
#include <time.h>

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <gtest/gtest.h>
#include <thread>

namespace supercluster::net::internal {
namespace {

using namespace std::chrono_literals;
namespace asio = boost::asio;

// CPU time a thread has used; the test reads it from another thread through the thread's
// CPU clock, so it can tell a thread spinning from one asleep in epoll_wait.
std::chrono::nanoseconds CpuTime(clockid_t clock) {
  timespec now{};
  EXPECT_EQ(clock_gettime(clock, &now), 0);
  return std::chrono::seconds(now.tv_sec) + std::chrono::nanoseconds(now.tv_nsec);
}

// Runs RunIoContext on its own thread, kept alive by a work guard until Stop().
class IoThread {
 public:
  explicit IoThread(std::chrono::microseconds busy_poll)
      : work_(asio::make_work_guard(io_)), thread_([this, busy_poll] {
          clockid_t clock;
          EXPECT_EQ(pthread_getcpuclockid(pthread_self(), &clock), 0);
          cpu_clock_.store(clock);
          started_.store(true);
          RunIoContext(io_, busy_poll);
        }) {
    while (!started_.load()) std::this_thread::sleep_for(1ms);
  }
  ~IoThread() { Stop(); }

  asio::io_context& io() { return io_; }
  std::chrono::nanoseconds Cpu() const { return CpuTime(cpu_clock_.load()); }
  void Stop() {
    io_.stop();
    if (thread_.joinable()) thread_.join();
  }

 private:
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::atomic<clockid_t> cpu_clock_{};
  std::atomic<bool> started_{false};
  std::thread thread_;
};

TEST(BusyPollTest, RunsEveryHandlerAndReturnsWhenOutOfWork) {
  for (auto busy_poll : {0us, 1000us}) {
    asio::io_context io;
    int ran = 0;
    // A handler that posts another: the loop must keep going past the first poll.
    asio::post(io, [&] {
      ++ran;
      asio::post(io, [&] { ++ran; });
    });
    asio::post(io, [&] { ++ran; });
    RunIoContext(io, busy_poll);
    EXPECT_EQ(ran, 3) << "busy_poll " << busy_poll.count() << " µs";
    EXPECT_TRUE(io.stopped());
  }
}

TEST(BusyPollTest, ATimerFiresWhileSpinningAndTheLoopEndsWithItsWork) {
  asio::io_context io;
  asio::steady_timer timer(io, 30ms);
  bool fired = false;
  timer.async_wait([&](const boost::system::error_code& error) { fired = !error; });
  auto start = std::chrono::steady_clock::now();
  RunIoContext(io, 10s);  // the window is far longer than the timer: it fires while polling
  EXPECT_TRUE(fired);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s) << "kept spinning with no work left";
}

TEST(BusyPollTest, SpinsForTheWindowAfterAHandlerThenSleeps) {
  IoThread thread(300ms);
  // The window started when the thread began; after it the thread must be asleep.
  std::this_thread::sleep_for(400ms);
  auto asleep_from = thread.Cpu();
  std::this_thread::sleep_for(200ms);
  EXPECT_LT(thread.Cpu() - asleep_from, 40ms) << "still spinning after the window";

  // A handler wakes it; for the next 300 ms it polls, using CPU although nothing happens.
  std::atomic<bool> ran{false};
  asio::post(thread.io(), [&] { ran.store(true); });
  auto before = thread.Cpu();
  std::this_thread::sleep_for(150ms);
  EXPECT_TRUE(ran.load());
  // Generous for a loaded 2-core machine: spinning alone would use all 150 ms.
  EXPECT_GT(thread.Cpu() - before, 15ms) << "did not poll after the handler";
}

TEST(BusyPollTest, WithoutAWindowTheThreadSleepsBetweenHandlers) {
  IoThread thread(0us);
  std::atomic<bool> ran{false};
  asio::post(thread.io(), [&] { ran.store(true); });
  auto before = thread.Cpu();
  std::this_thread::sleep_for(200ms);
  EXPECT_TRUE(ran.load());
  EXPECT_LT(thread.Cpu() - before, 40ms);
}

TEST(BusyPollTest, StopEndsTheLoopWhetherSpinningOrAsleep) {
  for (auto busy_poll : {0us, 50us, 10'000'000us}) {
    IoThread thread(busy_poll);
    std::this_thread::sleep_for(20ms);
    auto start = std::chrono::steady_clock::now();
    thread.Stop();  // joins
    EXPECT_LT(std::chrono::steady_clock::now() - start, 2s) << busy_poll.count() << " µs";
  }
}

}  // namespace
}  // namespace supercluster::net::internal
