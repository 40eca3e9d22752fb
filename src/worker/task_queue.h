// A fixed set of threads running posted tasks in arrival order: where the worker does what
// must not run on an io thread or the engine's scheduler thread (blocking enclave calls,
// tokenizing a prompt, formatting answers). Internal to the worker module.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace supercluster::worker {

class TaskQueue {
 public:
  // Precondition: threads >= 1.
  explicit TaskQueue(int threads);
  // Runs the tasks already posted, then joins the threads.
  ~TaskQueue();
  TaskQueue(const TaskQueue&) = delete;
  TaskQueue& operator=(const TaskQueue&) = delete;

  // Thread-safe. Tasks posted by other tasks while the destructor runs still run; one
  // posted after the threads have exited never does.
  void Post(std::function<void()> task);

 private:
  void Run();

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> tasks_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace supercluster::worker
