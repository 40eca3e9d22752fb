// alloc_count: an LD_PRELOAD library that counts calls to malloc (and so operator new) in
// the process it is loaded into. bench/allocs/run.sh uses it to count the memory
// allocations per request of `supercluster serve` and `supercluster router`: a figure
// that, unlike CPU time on a shared machine, does not move from run to run.
//
// SIGUSR2 writes "alloc_count: mallocs N frees M" to standard error. The counters are
// relaxed atomics (the count is all that matters, not its order).
#include <csignal>
#include <cstddef>
#include <cstdio>
#include <unistd.h>

#include <atomic>

extern "C" void* __libc_malloc(size_t size);
extern "C" void __libc_free(void* pointer);

namespace {

std::atomic<long> mallocs{0};
std::atomic<long> frees{0};

void Report(int) {
  char line[96];
  // snprintf is not on the async-signal-safe list; it is used here only because this is a
  // benchmark aid whose signal arrives while the process is merely serving requests.
  // write(2) is safe.
  const int length = std::snprintf(line, sizeof line, "alloc_count: mallocs %ld frees %ld\n",
                                    mallocs.load(std::memory_order_relaxed),
                                    frees.load(std::memory_order_relaxed));
  if (length > 0) (void)!write(2, line, static_cast<size_t>(length));
}

struct Install {
  Install() { std::signal(SIGUSR2, Report); }
} install;

}  // namespace

extern "C" void* malloc(size_t size) {
  mallocs.fetch_add(1, std::memory_order_relaxed);
  return __libc_malloc(size);
}

extern "C" void free(void* pointer) {
  if (pointer != nullptr) frees.fetch_add(1, std::memory_order_relaxed);
  __libc_free(pointer);
}
