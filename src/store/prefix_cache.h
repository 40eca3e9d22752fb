// A watched, in-memory copy of every key under one prefix, for the data plane: a router
// reads the workers of its region, a worker reads tenants and policies, on every request,
// without touching the store. The copy follows the store through a watch; when the store
// cannot be reached it keeps serving the last state it had and reports how stale that is,
// and it catches up by itself once the store is back.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "base/status.h"
#include "store/store.h"

namespace supercluster::store {

struct PrefixSnapshot {
  std::map<std::string, KeyValue> entries;  // by key
  int64_t revision = 0;                     // the store revision this copy reflects
};

struct PrefixCacheOptions {
  // How often the cache checks that the store still answers (which is what staleness
  // measures when nothing changes), and the longest wait between reconnection attempts.
  std::chrono::milliseconds probe_interval{500};
  std::chrono::milliseconds max_retry_interval{2000};
};

class PrefixCache {
 public:
  // Reads the prefix once (that read must succeed: a process should not start with no
  // state at all), then follows it. Precondition: `store` outlives the cache.
  static base::Result<std::unique_ptr<PrefixCache>> Start(Store& store, std::string prefix,
                                                          PrefixCacheOptions options = {});
  ~PrefixCache();
  PrefixCache(const PrefixCache&) = delete;
  PrefixCache& operator=(const PrefixCache&) = delete;

  // The current copy; cheap (a shared pointer copy), safe from any thread. A snapshot
  // never changes once returned.
  std::shared_ptr<const PrefixSnapshot> Snapshot() const;

  // A number that changes whenever Snapshot() starts returning a new copy: one atomic
  // read, so a reader that keeps what it derived from a copy can check per request that
  // it is still current without taking the cache's lock.
  uint64_t Version() const { return version_.load(std::memory_order_acquire); }

  // Time since the cache last confirmed it was in step with the store (a watch event or
  // a successful probe). Grows without bound while the store is unreachable.
  std::chrono::milliseconds Staleness() const;

  const std::string& prefix() const { return prefix_; }

 private:
  PrefixCache(Store& store, std::string prefix, PrefixCacheOptions options);
  base::Status Resync();
  void OnWatch(const std::vector<WatchEvent>& events, const base::Status& status);
  void Run();
  void MarkFresh();

  Store& store_;
  const std::string prefix_;
  const PrefixCacheOptions options_;

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::shared_ptr<const PrefixSnapshot> snapshot_;
  std::atomic<uint64_t> version_{0};  // incremented under mutex_ each time snapshot_ changes
  std::unique_ptr<Watch> watch_;
  bool watch_failed_ = false;
  bool stopping_ = false;
  std::atomic<int64_t> last_fresh_ms_{0};  // steady clock, milliseconds
  std::thread thread_;
};

}  // namespace supercluster::store
