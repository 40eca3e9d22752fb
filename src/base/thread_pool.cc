#include "base/thread_pool.h"

#include <algorithm>

namespace supercluster::base {
namespace {

// Set while this thread runs a part of some ParallelFor, so that a nested call runs inline
// instead of waiting for threads that are busy running its caller.
thread_local bool t_inside_parallel_for = false;

// How long a thread spins before sleeping on a futex. Long enough to cover the gap between
// two consecutive kernel calls of a forward pass (microseconds), short enough that idle
// threads give the (possibly shared) cores back quickly.
constexpr int kSpinIterations = 4000;

// Parts per thread: more than one lets a fast thread take over the work of one that was
// descheduled, which matters on machines shared with other jobs.
constexpr int64_t kPartsPerThread = 4;
constexpr int64_t kMaxParts = 0xffff;

constexpr uint64_t ClaimWord(uint64_t job, uint64_t part_count, uint64_t next_part) {
  return (job << 32) | (part_count << 16) | next_part;
}

inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#else
  std::this_thread::yield();
#endif
}

class InsideParallelForScope {
 public:
  InsideParallelForScope() : previous_(t_inside_parallel_for) { t_inside_parallel_for = true; }
  ~InsideParallelForScope() { t_inside_parallel_for = previous_; }

 private:
  bool previous_;
};

}  // namespace

ThreadPool::ThreadPool(int thread_count) {
  if (thread_count <= 0) {
    thread_count = static_cast<int>(std::thread::hardware_concurrency());
    if (thread_count <= 0) thread_count = 1;
  }
  workers_.reserve(static_cast<size_t>(thread_count - 1));
  for (int i = 1; i < thread_count; ++i) workers_.emplace_back([this] { WorkerLoop(); });
}

ThreadPool::~ThreadPool() {
  stopping_.store(true, std::memory_order_relaxed);
  wake_epoch_.fetch_add(1, std::memory_order_release);
  wake_epoch_.notify_all();
  for (std::thread& worker : workers_) worker.join();
}

void ThreadPool::RunRange(int64_t n, int64_t grain, RangeFunction function, void* context) {
  if (n <= 0) return;
  if (grain < 1) grain = 1;
  const int64_t grain_count = (n + grain - 1) / grain;
  if (workers_.empty() || t_inside_parallel_for || grain_count == 1) {
    InsideParallelForScope scope;
    function(context, 0, n);
    return;
  }

  std::lock_guard<std::mutex> lock(caller_mutex_);
  const int64_t wanted_parts =
      std::min({grain_count, thread_count() * kPartsPerThread, kMaxParts});
  const int64_t grains_per_part = (grain_count + wanted_parts - 1) / wanted_parts;
  const int64_t part_size = grains_per_part * grain;
  const int64_t part_count = (n + part_size - 1) / part_size;

  // No part of the previous job is unfinished, so no thread reads these now.
  job_function_ = function;
  job_context_ = context;
  job_size_ = n;
  job_part_size_ = part_size;
  parts_done_.store(0, std::memory_order_relaxed);
  const uint64_t job = (claim_.load(std::memory_order_relaxed) >> 32) + 1;
  claim_.store(ClaimWord(job, static_cast<uint64_t>(part_count), 0), std::memory_order_release);
  wake_epoch_.fetch_add(1, std::memory_order_release);
  wake_epoch_.notify_all();

  {
    InsideParallelForScope scope;
    WorkOnCurrentJob();
  }

  for (int i = 0; i < kSpinIterations; ++i) {
    if (parts_done_.load(std::memory_order_acquire) == part_count) return;
    CpuRelax();
  }
  for (;;) {
    const int64_t done = parts_done_.load(std::memory_order_acquire);
    if (done == part_count) return;
    parts_done_.wait(done, std::memory_order_acquire);
  }
}

void ThreadPool::WorkOnCurrentJob() {
  uint64_t claim = claim_.load(std::memory_order_acquire);
  for (;;) {
    const uint64_t part_count = (claim >> 16) & 0xffff;
    const uint64_t part = claim & 0xffff;
    if (part >= part_count) return;
    // On failure `claim` is reloaded: another thread took this part, or a new job began.
    if (!claim_.compare_exchange_weak(claim, claim + 1, std::memory_order_acquire,
                                      std::memory_order_acquire)) {
      continue;
    }
    const int64_t begin = static_cast<int64_t>(part) * job_part_size_;
    const int64_t end = std::min(job_size_, begin + job_part_size_);
    job_function_(job_context_, begin, end);
    const int64_t done = parts_done_.fetch_add(1, std::memory_order_acq_rel) + 1;
    if (done == static_cast<int64_t>(part_count)) {
      parts_done_.notify_one();
      return;
    }
    claim = claim_.load(std::memory_order_acquire);
  }
}

void ThreadPool::WorkerLoop() {
  uint32_t seen = 0;
  for (;;) {
    uint32_t current = wake_epoch_.load(std::memory_order_acquire);
    for (int i = 0; i < kSpinIterations && current == seen; ++i) {
      CpuRelax();
      current = wake_epoch_.load(std::memory_order_acquire);
    }
    while (current == seen) {
      wake_epoch_.wait(seen, std::memory_order_acquire);
      current = wake_epoch_.load(std::memory_order_acquire);
    }
    seen = current;
    if (stopping_.load(std::memory_order_relaxed)) return;
    InsideParallelForScope scope;
    WorkOnCurrentJob();
  }
}

}  // namespace supercluster::base
