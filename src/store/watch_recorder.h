// Test-only: records what a store watch delivers, for the store tests (conformance suite,
// SQLite and etcd tests). Thread-safe; the Wait* methods block until a condition holds or
// the timeout passes, and return whether it held.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <vector>

#include "store/store.h"

namespace supercluster::store::testing {

class WatchRecorder {
 public:
  WatchCallback Callback() {
    return [this](const std::vector<WatchEvent>& events, const base::Status& status) {
      std::lock_guard lock(mutex_);
      if (status.ok()) {
        batches_.push_back(events);
      } else {
        errors_.push_back(status);
      }
      changed_.notify_all();
    };
  }

  // Until `predicate(batches)` holds.
  template <class Predicate>
  bool WaitFor(Predicate predicate, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, timeout, [&] { return predicate(batches_); });
  }
  // Until at least `events` events, or an error, arrived.
  bool WaitForEvents(size_t events, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, timeout,
                             [&] { return CountEvents(batches_) >= events || !errors_.empty(); });
  }
  // Until a batch at `revision` or later arrived.
  bool WaitForRevision(int64_t revision,
                       std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, timeout, [&] {
      return !batches_.empty() && batches_.back().front().kv.mod_revision >= revision;
    });
  }
  // Until the watch ended with an error.
  bool WaitForError(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, timeout, [&] { return !errors_.empty(); });
  }

  std::vector<std::vector<WatchEvent>> Batches() {
    std::lock_guard lock(mutex_);
    return batches_;
  }
  size_t EventCount() {
    std::lock_guard lock(mutex_);
    return CountEvents(batches_);
  }
  // The revision of each batch, in delivery order.
  std::vector<int64_t> Revisions() {
    std::vector<int64_t> revisions;
    for (const auto& batch : Batches()) revisions.push_back(batch.front().kv.mod_revision);
    return revisions;
  }
  std::vector<base::Status> Errors() {
    std::lock_guard lock(mutex_);
    return errors_;
  }
  // The error that ended the watch, if it ended.
  std::optional<base::Status> FinalStatus() {
    std::lock_guard lock(mutex_);
    if (errors_.empty()) return std::nullopt;
    return errors_.back();
  }

  static size_t CountEvents(const std::vector<std::vector<WatchEvent>>& batches) {
    size_t count = 0;
    for (const auto& batch : batches) count += batch.size();
    return count;
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<std::vector<WatchEvent>> batches_;
  std::vector<base::Status> errors_;
};

}  // namespace supercluster::store::testing
