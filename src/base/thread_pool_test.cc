#include "base/thread_pool.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

namespace supercluster::base {
namespace {

// Runs ParallelFor and checks that every index in [0, n) was visited exactly once and that
// every part boundary except n is a multiple of grain.
void ExpectExactCover(ThreadPool& pool, int64_t n, int64_t grain) {
  std::vector<std::atomic<int>> visits(static_cast<size_t>(std::max<int64_t>(n, 0)));
  std::atomic<bool> misaligned{false};
  pool.ParallelFor(n, grain, [&](int64_t begin, int64_t end) {
    if (begin % std::max<int64_t>(grain, 1) != 0) misaligned = true;
    if (end != n && end % std::max<int64_t>(grain, 1) != 0) misaligned = true;
    if (begin >= end) misaligned = true;  // empty parts are never handed out
    for (int64_t i = begin; i < end; ++i) visits[static_cast<size_t>(i)].fetch_add(1);
  });
  EXPECT_FALSE(misaligned) << "n=" << n << " grain=" << grain;
  for (int64_t i = 0; i < n; ++i) {
    ASSERT_EQ(visits[static_cast<size_t>(i)].load(), 1) << "index " << i << " of n=" << n;
  }
}

TEST(ThreadPool, DefaultSizeIsTheMachine) {
  ThreadPool pool;
  const int expected = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  EXPECT_EQ(pool.thread_count(), expected);
}

TEST(ThreadPool, ExplicitSize) {
  ThreadPool pool(3);
  EXPECT_EQ(pool.thread_count(), 3);
}

TEST(ThreadPool, CoversTinyAndHugeRanges) {
  for (int threads : {1, 2, 3, 5, 8}) {
    ThreadPool pool(threads);
    for (int64_t n : {0, 1, 2, 3, 7, 8, 9, 31, 100, 1000, 4097}) {
      for (int64_t grain : {0, 1, 4, 32, 5000}) ExpectExactCover(pool, n, grain);
    }
    ExpectExactCover(pool, 3'000'001, 16);
  }
}

TEST(ThreadPool, NegativeRangeDoesNothing) {
  ThreadPool pool(2);
  int calls = 0;
  pool.ParallelFor(-5, [&](int64_t, int64_t) { ++calls; });
  EXPECT_EQ(calls, 0);
}

TEST(ThreadPool, ManyCallsInARowAllComplete) {
  // Back-to-back small jobs exercise the spin/wake hand-off between jobs.
  ThreadPool pool(4);
  std::atomic<int64_t> total{0};
  for (int round = 0; round < 20000; ++round) {
    pool.ParallelFor(8, 1, [&](int64_t begin, int64_t end) { total.fetch_add(end - begin); });
  }
  EXPECT_EQ(total.load(), 20000 * 8);
}

TEST(ThreadPool, UsesMoreThanOneThread) {
  ThreadPool pool(2);
  std::mutex mutex;
  std::set<std::thread::id> ids;
  // Each part sleeps, so the worker has time to take some parts; retried to avoid depending
  // on one scheduling outcome on a loaded machine.
  for (int attempt = 0; attempt < 50 && ids.size() < 2; ++attempt) {
    pool.ParallelFor(16, 1, [&](int64_t, int64_t) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      std::lock_guard<std::mutex> lock(mutex);
      ids.insert(std::this_thread::get_id());
    });
  }
  EXPECT_EQ(ids.size(), 2u);
}

TEST(ThreadPool, NestedCallRunsInline) {
  ThreadPool pool(3);
  std::vector<std::atomic<int>> visits(64 * 64);
  pool.ParallelFor(64, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const std::thread::id outer = std::this_thread::get_id();
      pool.ParallelFor(64, [&](int64_t inner_begin, int64_t inner_end) {
        EXPECT_EQ(std::this_thread::get_id(), outer);
        EXPECT_EQ(inner_begin, 0);
        EXPECT_EQ(inner_end, 64);
        for (int64_t j = inner_begin; j < inner_end; ++j) visits[i * 64 + j].fetch_add(1);
      });
    }
  });
  for (auto& v : visits) ASSERT_EQ(v.load(), 1);
}

TEST(ThreadPool, ConcurrentOutsideCallersAreSerialised) {
  ThreadPool pool(2);
  std::atomic<int64_t> total{0};
  std::vector<std::thread> callers;
  for (int c = 0; c < 3; ++c) {
    callers.emplace_back([&] {
      for (int round = 0; round < 2000; ++round) {
        pool.ParallelFor(100, 3, [&](int64_t begin, int64_t end) { total += end - begin; });
      }
    });
  }
  for (auto& t : callers) t.join();
  EXPECT_EQ(total.load(), 3 * 2000 * 100);
}

TEST(ThreadPool, DestructionJoinsIdleAndRecentlyBusyThreads) {
  for (int i = 0; i < 50; ++i) {
    ThreadPool idle(4);  // never used
  }
  for (int i = 0; i < 50; ++i) {
    ThreadPool pool(4);
    std::atomic<int> count{0};
    pool.ParallelFor(40, [&](int64_t begin, int64_t end) { count += static_cast<int>(end - begin); });
    EXPECT_EQ(count.load(), 40);
  }  // destroyed while workers may still be spinning
}

}  // namespace
}  // namespace supercluster::base
