#include "base/adaptive_mutex.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>

namespace supercluster::base {
namespace {

// A pthread call on a mutex this class made and owns fails only on a bug (or memory
// corruption): say which and stop, as std::mutex would throw.
void Check(int result, const char* what) {
  if (result == 0) return;
  std::fprintf(stderr, "supercluster: AdaptiveMutex: %s failed (error %d)\n", what, result);
  std::abort();
}

}  // namespace

AdaptiveMutex::AdaptiveMutex() {
  pthread_mutexattr_t attributes;
  Check(pthread_mutexattr_init(&attributes), "pthread_mutexattr_init");
  Check(pthread_mutexattr_settype(&attributes, PTHREAD_MUTEX_ADAPTIVE_NP),
        "pthread_mutexattr_settype");
  Check(pthread_mutex_init(&mutex_, &attributes), "pthread_mutex_init");
  pthread_mutexattr_destroy(&attributes);
}

AdaptiveMutex::~AdaptiveMutex() { pthread_mutex_destroy(&mutex_); }

void AdaptiveMutex::lock() { Check(pthread_mutex_lock(&mutex_), "pthread_mutex_lock"); }

bool AdaptiveMutex::try_lock() {
  int result = pthread_mutex_trylock(&mutex_);
  if (result == EBUSY) return false;
  Check(result, "pthread_mutex_trylock");
  return true;
}

void AdaptiveMutex::unlock() { Check(pthread_mutex_unlock(&mutex_), "pthread_mutex_unlock"); }

}  // namespace supercluster::base
