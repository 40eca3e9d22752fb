#include "store/prefix_cache.h"

#include "base/logging.h"

namespace supercluster::store {
namespace {

int64_t SteadyNowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

base::Result<std::unique_ptr<PrefixCache>> PrefixCache::Start(Store& store, std::string prefix,
                                                              PrefixCacheOptions options) {
  std::unique_ptr<PrefixCache> cache(new PrefixCache(store, std::move(prefix), options));
  SC_RETURN_IF_ERROR(cache->Resync());
  cache->thread_ = std::thread([raw = cache.get()] { raw->Run(); });
  return cache;
}

PrefixCache::PrefixCache(Store& store, std::string prefix, PrefixCacheOptions options)
    : store_(store),
      prefix_(std::move(prefix)),
      options_(options),
      snapshot_(std::make_shared<PrefixSnapshot>()) {}

PrefixCache::~PrefixCache() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  std::unique_ptr<Watch> watch;
  {
    std::lock_guard lock(mutex_);
    watch = std::move(watch_);
  }
  if (watch) watch->Cancel();
}

std::shared_ptr<const PrefixSnapshot> PrefixCache::Snapshot() const {
  std::lock_guard lock(mutex_);
  return snapshot_;
}

std::chrono::milliseconds PrefixCache::Staleness() const {
  return std::chrono::milliseconds(SteadyNowMs() - last_fresh_ms_.load());
}

void PrefixCache::MarkFresh() { last_fresh_ms_.store(SteadyNowMs()); }

// Reads the whole prefix and restarts the watch right after the revision read, so no
// change falls between the read and the watch.
base::Status PrefixCache::Resync() {
  SC_ASSIGN_OR_RETURN(RangeResult range, store_.Range(prefix_));
  auto fresh = std::make_shared<PrefixSnapshot>();
  for (KeyValue& kv : range.kvs) {
    std::string key = kv.key;
    fresh->entries.emplace(std::move(key), std::move(kv));
  }
  fresh->revision = range.revision;
  std::unique_ptr<Watch> old_watch;
  {
    std::lock_guard lock(mutex_);
    old_watch = std::move(watch_);
  }
  if (old_watch) old_watch->Cancel();
  {
    std::lock_guard lock(mutex_);
    snapshot_ = fresh;
    version_.fetch_add(1, std::memory_order_release);
    watch_failed_ = false;
  }
  SC_ASSIGN_OR_RETURN(
      std::unique_ptr<Watch> watch,
      store_.WatchPrefix(prefix_, range.revision + 1,
                         [this](const std::vector<WatchEvent>& events, const base::Status& status) {
                           OnWatch(events, status);
                         }));
  {
    std::lock_guard lock(mutex_);
    watch_ = std::move(watch);
  }
  MarkFresh();
  return base::Status::Ok();
}

void PrefixCache::OnWatch(const std::vector<WatchEvent>& events, const base::Status& status) {
  if (!status.ok()) {
    spdlog::warn("cache {}: watch ended ({}); resyncing", prefix_, status.message());
    {
      std::lock_guard lock(mutex_);
      watch_failed_ = true;
    }
    wake_.notify_all();
    return;
  }
  std::lock_guard lock(mutex_);
  // Copy on write: readers keep the snapshot they hold, unchanged.
  auto next = std::make_shared<PrefixSnapshot>(*snapshot_);
  for (const WatchEvent& event : events) {
    if (event.kv.mod_revision <= next->revision) continue;  // already in the copy
    if (event.kind == WatchEvent::Kind::kPut) {
      next->entries[event.kv.key] = event.kv;
    } else {
      next->entries.erase(event.kv.key);
    }
  }
  if (!events.empty()) next->revision = std::max(next->revision, events.back().kv.mod_revision);
  snapshot_ = std::move(next);
  version_.fetch_add(1, std::memory_order_release);
  MarkFresh();
}

void PrefixCache::Run() {
  auto wait = options_.probe_interval;
  bool backing_off = false;
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    // A failed watch wakes the loop at once, except while backing off after a failure.
    wake_.wait_for(lock, wait, [this, backing_off] {
      return stopping_ || (watch_failed_ && !backing_off);
    });
    if (stopping_) break;
    bool resync = watch_failed_;
    lock.unlock();
    // A probe shows the store answers even when nothing under the prefix changes.
    base::Status status = resync ? Resync() : store_.Get(prefix_).status();
    lock.lock();
    if (status.ok()) {
      MarkFresh();
      wait = options_.probe_interval;
      backing_off = false;
    } else {
      // The watch may have died with the connection: start over once the store answers.
      watch_failed_ = true;
      wait = backing_off ? std::min(wait * 2, options_.max_retry_interval)
                         : options_.probe_interval;
      backing_off = true;
      spdlog::debug("cache {}: store unreachable: {}", prefix_, status.message());
    }
  }
}

}  // namespace supercluster::store
