// A mutex that spins briefly before it sleeps: glibc's adaptive mutex
// (PTHREAD_MUTEX_ADAPTIVE_NP). For locks that every io thread takes for a few hundred
// nanoseconds per request (router::Balancer): std::mutex puts a thread that finds the lock
// taken to sleep in the kernel at once, and waking it costs far more than the wait would
// have, on a VM tens of microseconds when its virtual CPU halted. Spinning a little first
// rides out a short hold. Not for locks held long or across blocking calls.
//
// Meets the Lockable requirements: use it with std::lock_guard and std::unique_lock.
#pragma once

#include <pthread.h>

namespace supercluster::base {

class AdaptiveMutex {
 public:
  AdaptiveMutex();
  ~AdaptiveMutex();
  AdaptiveMutex(const AdaptiveMutex&) = delete;
  AdaptiveMutex& operator=(const AdaptiveMutex&) = delete;

  void lock();
  bool try_lock();
  void unlock();

 private:
  pthread_mutex_t mutex_;
};

}  // namespace supercluster::base
