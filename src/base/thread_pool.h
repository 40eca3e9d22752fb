// ThreadPool: a fixed set of threads that split one index range at a time between them and
// the calling thread. It is the hot path of every matrix product in the engine's CPU kernels
// (src/engine/kernels), so a call allocates nothing, wraps nothing in std::function, and its
// threads spin briefly before sleeping so that back-to-back calls (one per layer weight) do
// not pay a futex wake each time.
//
//   base::ThreadPool pool;                 // hardware_concurrency() threads, caller included
//   pool.ParallelFor(rows, 4, [&](int64_t begin, int64_t end) { ... });
//
// Rules:
// - ParallelFor runs fn on disjoint [begin, end) parts that together cover [0, n) exactly
//   once, and returns when all of them are done. Part boundaries are multiples of `grain`
//   (except n itself), so a kernel that tiles by `grain` never sees a tile cut in two.
// - Which thread runs which part, and how many parts there are, depends on timing and on the
//   thread count. Callers that need results independent of the thread count (the kernels do)
//   must compute each index the same way whatever part it falls in.
// - fn must not throw (the project does not use exceptions; an exception escaping fn ends
//   the process via std::terminate).
// - Nested use is handled, not refused: a ParallelFor called from inside fn (on any pool)
//   runs its whole range inline on the calling thread. Two threads outside the pool calling
//   ParallelFor on the same pool at once are serialised.
// - The destructor wakes and joins every thread; no ParallelFor may be running then.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

namespace supercluster::base {

class ThreadPool {
 public:
  // thread_count: how many threads share the work of one ParallelFor, the calling thread
  // included (so thread_count - 1 threads are started). 0 means
  // std::thread::hardware_concurrency() (at least 1). 1 runs everything on the caller.
  explicit ThreadPool(int thread_count = 0);
  ~ThreadPool();

  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int thread_count() const { return static_cast<int>(workers_.size()) + 1; }

  // Runs fn(begin, end) over parts of [0, n) as described above. n <= 0 does nothing.
  // grain < 1 is treated as 1.
  template <typename Fn>
  void ParallelFor(int64_t n, int64_t grain, Fn&& fn) {
    RunRange(n, grain, &Trampoline<std::remove_reference_t<Fn>>, &fn);
  }
  template <typename Fn>
  void ParallelFor(int64_t n, Fn&& fn) {
    ParallelFor(n, 1, static_cast<Fn&&>(fn));
  }

 private:
  using RangeFunction = void (*)(void* context, int64_t begin, int64_t end);

  template <typename Fn>
  static void Trampoline(void* context, int64_t begin, int64_t end) {
    (*static_cast<Fn*>(context))(begin, end);
  }

  void RunRange(int64_t n, int64_t grain, RangeFunction function, void* context);
  // Claims and runs parts of the current job until none is left.
  void WorkOnCurrentJob();
  void WorkerLoop();

  std::vector<std::thread> workers_;
  std::mutex caller_mutex_;  // one outside caller at a time

  // The current job's description. Written by the caller only while no part of any job is
  // unfinished; read by a thread only after it claimed a part of this job (below).
  RangeFunction job_function_ = nullptr;
  void* job_context_ = nullptr;
  int64_t job_size_ = 0;
  int64_t job_part_size_ = 0;

  // The claim word: job number (32 bits) | part count (16 bits) | next part (16 bits). A
  // thread claims a part by a compare-exchange that also proves the job is still current,
  // so a thread that wakes late never touches a newer job's fields by mistake, and the
  // caller waits only for the parts to be done, not for every thread to wake up.
  std::atomic<uint64_t> claim_{0};
  std::atomic<int64_t> parts_done_{0};

  std::atomic<uint32_t> wake_epoch_{0};  // bumped once per job; idle threads wait on it
  std::atomic<bool> stopping_{false};
};

}  // namespace supercluster::base
