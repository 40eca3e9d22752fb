#include "base/adaptive_mutex.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

namespace supercluster::base {
namespace {

// Mutual exclusion: a read-modify-write that is not atomic, done by several threads under
// the lock, loses no update. Without the lock some of the 400,000 are lost, and the two
// fields drift apart.
TEST(AdaptiveMutexTest, ThreadsUnderTheLockLoseNoUpdate) {
  AdaptiveMutex mutex;
  struct {
    long count = 0;
    long twice = 0;
  } guarded;
  constexpr int kThreads = 4;
  constexpr long kEach = 100'000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (long i = 0; i < kEach; ++i) {
        std::lock_guard lock(mutex);
        long count = guarded.count;
        guarded.twice = 2 * (count + 1);
        guarded.count = count + 1;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(guarded.count, kThreads * kEach);
  EXPECT_EQ(guarded.twice, 2 * kThreads * kEach);
}

TEST(AdaptiveMutexTest, TryLockFailsWhileAnotherThreadHoldsIt) {
  AdaptiveMutex mutex;
  std::unique_lock held(mutex);
  EXPECT_FALSE(std::async(std::launch::async, [&] { return mutex.try_lock(); }).get());
  held.unlock();
  EXPECT_TRUE(std::async(std::launch::async, [&] {
                bool locked = mutex.try_lock();
                if (locked) mutex.unlock();
                return locked;
              }).get());
}

// A thread waiting for the lock gets it once the holder lets go, however long it was held
// (past the spinning, into the sleep).
TEST(AdaptiveMutexTest, AWaiterGetsTheLockWhenTheHolderLetsGo) {
  AdaptiveMutex mutex;
  std::unique_lock held(mutex);
  std::atomic<bool> got{false};
  std::thread waiter([&] {
    std::lock_guard lock(mutex);
    got = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(got.load());
  held.unlock();
  waiter.join();
  EXPECT_TRUE(got.load());
}

}  // namespace
}  // namespace supercluster::base
