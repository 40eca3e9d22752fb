// Which shard of a sharded metric the calling thread updates: ShardedCounter
// (sharded_counter.h) and DurationHistogram (duration_histogram.h) keep kMetricShards
// copies of their numbers, each on cache lines of its own, and a thread adds only to the
// copy ThreadShard() names; a scrape sums the copies.
//
// Why: every io thread of a server counts every request in the same few series. One shared
// atomic per number makes each update a cache-line transfer from the core that wrote it
// last (about 100 ns in a VM, and a queue when several cores want it at once), so that
// threads which share nothing else still slow each other down (docs/performance.md). With a
// shard per thread the line stays in the updating core's cache.
#pragma once

#include <atomic>
#include <cstddef>

namespace supercluster::metrics {

// Shards per sharded metric. 16 gives each of up to 16 threads a shard of its own: a
// server runs at most one io thread per core, and the hosts we benchmark on have 16 cores.
// A series stays small all the same: a counter is 16 cache lines (1 KiB), a latency
// histogram 48 (3 KiB). Threads past the 16th share shards, which is correct, only slower.
inline constexpr size_t kMetricShards = 16;

// Bytes a shard is aligned to, so that no two shards share a cache line: the line size of
// x86-64 and of most arm64 cores. (std::hardware_destructive_interference_size is the
// same on x86-64, but GCC warns when a header uses it, since -mtune may change it.)
inline constexpr size_t kCacheLineBytes = 64;

namespace detail {
inline std::atomic<size_t> next_thread_shard{0};
// kMetricShards until the thread's first ThreadShard(). Constant-initialized, so reading it
// costs no guard.
inline thread_local size_t thread_shard = kMetricShards;
}  // namespace detail

// The calling thread's shard, in [0, kMetricShards): the same for the thread's whole life,
// handed out round-robin in the order threads first ask, so that any kMetricShards threads
// that first update metrics one after another each have their own. Indices are not given
// back when a thread ends.
inline size_t ThreadShard() {
  size_t shard = detail::thread_shard;
  if (shard == kMetricShards) [[unlikely]] {
    shard = detail::next_thread_shard.fetch_add(1, std::memory_order_relaxed) % kMetricShards;
    detail::thread_shard = shard;
  }
  return shard;
}

}  // namespace supercluster::metrics
