// alloc_count: an LD_PRELOAD library that counts the memory allocations of the process it
// is loaded into: calls to malloc, calloc, realloc with no block yet, aligned_alloc,
// posix_memalign and every operator new. bench/allocs/run.sh uses it to count the
// allocations per request of `supercluster serve` and `supercluster router`: a figure that,
// unlike CPU time on a shared machine, does not move from run to run.
//
// Each function passes the call on to the next definition in the lookup order (RTLD_NEXT):
// whatever allocator the binary uses (glibc's, or mimalloc, which the binary links and
// whose operator new does not call malloc). An operator new that does call malloc (glibc's
// libstdc++) is counted once: malloc does not count while an operator new or delete runs
// on its thread. Until the next definitions are looked up, malloc and calloc (which dlsym
// itself may call) are served from a small static buffer.
//
// SIGUSR2 writes "alloc_count: mallocs N frees M" to standard error. The counters are
// relaxed atomics (the count is all that matters, not its order).
#include <dlfcn.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <new>

namespace {

std::atomic<long> mallocs{0};
std::atomic<long> frees{0};

// Set while an operator new or delete of this library runs on the thread. Initial-exec:
// the first use on a thread must not itself allocate.
__attribute__((tls_model("initial-exec"))) thread_local int in_operator = 0;

void Count() { mallocs.fetch_add(1, std::memory_order_relaxed); }
void CountFree(void* pointer) {
  if (pointer != nullptr) frees.fetch_add(1, std::memory_order_relaxed);
}

// Holds malloc's counting off on this thread while it exists (an operator new may throw).
struct InOperator {
  InOperator() { ++in_operator; }
  ~InOperator() { --in_operator; }
};

// Counts one C++ allocation and runs it with malloc's counting held off.
template <class Call>
auto CountedOperator(Call call) {
  Count();
  InOperator guard;
  return call();
}

template <class Call>
void CountedDelete(void* pointer, Call call) {
  CountFree(pointer);
  InOperator guard;
  call();
}

using MallocFn = void* (*)(size_t);
using FreeFn = void (*)(void*);
using CallocFn = void* (*)(size_t, size_t);
using ReallocFn = void* (*)(void*, size_t);
using AlignedAllocFn = void* (*)(size_t, size_t);
using PosixMemalignFn = int (*)(void**, size_t, size_t);
using NewFn = void* (*)(size_t);
using NewNothrowFn = void* (*)(size_t, const std::nothrow_t&);
using NewAlignedFn = void* (*)(size_t, std::align_val_t);
using NewAlignedNothrowFn = void* (*)(size_t, std::align_val_t, const std::nothrow_t&);
using DeleteFn = void (*)(void*);
using DeleteSizedFn = void (*)(void*, size_t);
using DeleteAlignedFn = void (*)(void*, std::align_val_t);
using DeleteSizedAlignedFn = void (*)(void*, size_t, std::align_val_t);

struct Next {
  MallocFn malloc = nullptr;
  FreeFn free = nullptr;
  CallocFn calloc = nullptr;
  ReallocFn realloc = nullptr;
  AlignedAllocFn aligned_alloc = nullptr;
  PosixMemalignFn posix_memalign = nullptr;
  NewFn new_single = nullptr;
  NewFn new_array = nullptr;
  NewNothrowFn new_single_nothrow = nullptr;
  NewNothrowFn new_array_nothrow = nullptr;
  NewAlignedFn new_single_aligned = nullptr;
  NewAlignedFn new_array_aligned = nullptr;
  NewAlignedNothrowFn new_single_aligned_nothrow = nullptr;
  NewAlignedNothrowFn new_array_aligned_nothrow = nullptr;
  DeleteFn delete_single = nullptr;
  DeleteFn delete_array = nullptr;
  DeleteSizedFn delete_single_sized = nullptr;
  DeleteSizedFn delete_array_sized = nullptr;
  DeleteAlignedFn delete_single_aligned = nullptr;
  DeleteAlignedFn delete_array_aligned = nullptr;
  DeleteSizedAlignedFn delete_single_sized_aligned = nullptr;
  DeleteSizedAlignedFn delete_array_sized_aligned = nullptr;
};

Next next;
bool resolving = false;

// What calloc hands out while dlsym runs; never freed (free ignores pointers into it).
alignas(std::max_align_t) char bootstrap[4096];
size_t bootstrap_used = 0;

bool InBootstrap(void* pointer) {
  auto* byte = static_cast<char*>(pointer);
  return byte >= bootstrap && byte < bootstrap + sizeof(bootstrap);
}

// A zeroed block from the bootstrap buffer, or null when it is used up.
void* BootstrapAllocate(size_t bytes) {
  bytes = (bytes + alignof(std::max_align_t) - 1) & ~(alignof(std::max_align_t) - 1);
  if (bootstrap_used + bytes > sizeof(bootstrap)) return nullptr;
  void* block = bootstrap + bootstrap_used;
  bootstrap_used += bytes;
  std::memset(block, 0, bytes);
  return block;
}

template <class Fn>
void Find(Fn* slot, const char* name) {
  *slot = reinterpret_cast<Fn>(dlsym(RTLD_NEXT, name));
}

void Resolve() {
  if (next.malloc != nullptr || resolving) return;
  resolving = true;
  Find(&next.calloc, "calloc");
  Find(&next.free, "free");
  Find(&next.realloc, "realloc");
  Find(&next.aligned_alloc, "aligned_alloc");
  Find(&next.posix_memalign, "posix_memalign");
  Find(&next.new_single, "_Znwm");
  Find(&next.new_array, "_Znam");
  Find(&next.new_single_nothrow, "_ZnwmRKSt9nothrow_t");
  Find(&next.new_array_nothrow, "_ZnamRKSt9nothrow_t");
  Find(&next.new_single_aligned, "_ZnwmSt11align_val_t");
  Find(&next.new_array_aligned, "_ZnamSt11align_val_t");
  Find(&next.new_single_aligned_nothrow, "_ZnwmSt11align_val_tRKSt9nothrow_t");
  Find(&next.new_array_aligned_nothrow, "_ZnamSt11align_val_tRKSt9nothrow_t");
  Find(&next.delete_single, "_ZdlPv");
  Find(&next.delete_array, "_ZdaPv");
  Find(&next.delete_single_sized, "_ZdlPvm");
  Find(&next.delete_array_sized, "_ZdaPvm");
  Find(&next.delete_single_aligned, "_ZdlPvSt11align_val_t");
  Find(&next.delete_array_aligned, "_ZdaPvSt11align_val_t");
  Find(&next.delete_single_sized_aligned, "_ZdlPvmSt11align_val_t");
  Find(&next.delete_array_sized_aligned, "_ZdaPvmSt11align_val_t");
  Find(&next.malloc, "malloc");  // last: its being set means all are
  resolving = false;
}

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
  Install() {
    Resolve();
    std::signal(SIGUSR2, Report);
  }
} install;

}  // namespace

extern "C" void* malloc(size_t size) {
  Resolve();
  if (next.malloc == nullptr) return BootstrapAllocate(size);  // dlsym is running
  if (in_operator == 0) Count();
  return next.malloc(size);
}

extern "C" void* calloc(size_t count, size_t size) {
  if (next.calloc == nullptr) Resolve();
  if (next.calloc == nullptr) return BootstrapAllocate(count * size);  // dlsym is running
  if (in_operator == 0) Count();
  return next.calloc(count, size);
}

extern "C" void* realloc(void* pointer, size_t size) {
  Resolve();
  if (InBootstrap(pointer)) {  // moves out of the bootstrap buffer, which it cannot grow in
    void* moved = malloc(size);
    size_t room = static_cast<size_t>(bootstrap + sizeof(bootstrap) - static_cast<char*>(pointer));
    if (moved != nullptr) std::memcpy(moved, pointer, size < room ? size : room);
    return moved;
  }
  if (pointer == nullptr && in_operator == 0) Count();
  return next.realloc(pointer, size);
}

extern "C" void* aligned_alloc(size_t alignment, size_t size) {
  Resolve();
  if (in_operator == 0) Count();
  return next.aligned_alloc(alignment, size);
}

extern "C" int posix_memalign(void** result, size_t alignment, size_t size) {
  Resolve();
  if (in_operator == 0) Count();
  return next.posix_memalign(result, alignment, size);
}

extern "C" void free(void* pointer) {
  if (pointer == nullptr || InBootstrap(pointer)) return;
  Resolve();
  if (in_operator == 0) CountFree(pointer);
  next.free(pointer);
}

void* operator new(size_t size) {
  Resolve();
  return CountedOperator([&] { return next.new_single(size); });
}
void* operator new[](size_t size) {
  Resolve();
  return CountedOperator([&] { return next.new_array(size); });
}
void* operator new(size_t size, const std::nothrow_t& tag) noexcept {
  Resolve();
  return CountedOperator([&] { return next.new_single_nothrow(size, tag); });
}
void* operator new[](size_t size, const std::nothrow_t& tag) noexcept {
  Resolve();
  return CountedOperator([&] { return next.new_array_nothrow(size, tag); });
}
void* operator new(size_t size, std::align_val_t alignment) {
  Resolve();
  return CountedOperator([&] { return next.new_single_aligned(size, alignment); });
}
void* operator new[](size_t size, std::align_val_t alignment) {
  Resolve();
  return CountedOperator([&] { return next.new_array_aligned(size, alignment); });
}
void* operator new(size_t size, std::align_val_t alignment, const std::nothrow_t& tag) noexcept {
  Resolve();
  return CountedOperator([&] { return next.new_single_aligned_nothrow(size, alignment, tag); });
}
void* operator new[](size_t size, std::align_val_t alignment, const std::nothrow_t& tag) noexcept {
  Resolve();
  return CountedOperator([&] { return next.new_array_aligned_nothrow(size, alignment, tag); });
}

void operator delete(void* pointer) noexcept {
  Resolve();
  CountedDelete(pointer, [&] { next.delete_single(pointer); });
}
void operator delete[](void* pointer) noexcept {
  Resolve();
  CountedDelete(pointer, [&] { next.delete_array(pointer); });
}
void operator delete(void* pointer, size_t size) noexcept {
  Resolve();
  CountedDelete(pointer, [&] { next.delete_single_sized(pointer, size); });
}
void operator delete[](void* pointer, size_t size) noexcept {
  Resolve();
  CountedDelete(pointer, [&] { next.delete_array_sized(pointer, size); });
}
void operator delete(void* pointer, std::align_val_t alignment) noexcept {
  Resolve();
  CountedDelete(pointer, [&] { next.delete_single_aligned(pointer, alignment); });
}
void operator delete[](void* pointer, std::align_val_t alignment) noexcept {
  Resolve();
  CountedDelete(pointer, [&] { next.delete_array_aligned(pointer, alignment); });
}
void operator delete(void* pointer, size_t size, std::align_val_t alignment) noexcept {
  Resolve();
  CountedDelete(pointer, [&] { next.delete_single_sized_aligned(pointer, size, alignment); });
}
void operator delete[](void* pointer, size_t size, std::align_val_t alignment) noexcept {
  Resolve();
  CountedDelete(pointer, [&] { next.delete_array_sized_aligned(pointer, size, alignment); });
}
