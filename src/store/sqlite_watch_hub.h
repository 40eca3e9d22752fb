// The watches of one SqliteStore and the thread that serves them, used only by
// sqlite_store.cc. The store's background thread reads new revisions from the change log
// and hands them to Deliver, which calls each matching watch's callback, one revision at
// a time, in order. The hub also carries the thread's wake-up signal: a write made through
// the same store, or a new watch, wakes the thread at once instead of at the next poll.
//
// The hub is shared by the store and every Watch handle it gave out, so a handle may be
// cancelled or destroyed after the store is gone.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "store/sqlite_tables.h"
#include "store/store.h"

namespace supercluster::store::sqlite {

class WatchHub : public std::enable_shared_from_this<WatchHub> {
 public:
  // One registered watch. `next_revision` is touched only by the delivery thread once the
  // watch is registered; `ended` and `delivery_mutex` make Cancel wait out a callback.
  struct Entry {
    uint64_t id = 0;
    std::string prefix;
    WatchCallback callback;
    int64_t next_revision = 0;
    std::atomic<bool> ended{false};
    std::mutex delivery_mutex;  // held while the callback runs
  };

  // Registers a watch that needs every change from `next_revision` on, and wakes the
  // delivery thread so that history already logged is delivered without waiting a poll.
  std::unique_ptr<Watch> Add(std::string prefix, int64_t next_revision, WatchCallback callback);

  // The smallest next_revision among live watches; nullopt when there are none.
  std::optional<int64_t> OldestNeeded();

  // Hands every live watch the changes it needs among `changes`, which are all the logged
  // changes with revisions in [first, last]. A watch needing a revision at or before
  // `compacted` gets kDataLoss and ends; one needing a revision before `first` (added
  // while the batch was read) waits for the next batch. Runs on the delivery thread.
  struct Batch {
    std::vector<LoggedChange> changes;
    int64_t first = 0;
    int64_t last = 0;
    int64_t compacted = 0;
  };
  void Deliver(const Batch& batch);

  // Ends every live watch with `status`, for errors that no retry will cure.
  void EndAll(const base::Status& status);

  // The delivery thread calls this first, so that Cancel from inside a callback knows not
  // to wait for the callback it is running in.
  void SetDeliveryThread(std::thread::id id) { delivery_thread_.store(id); }

  // Wakes the delivery thread now.
  void Wake();
  // Sleeps until Wake, Stop or `deadline`; false once Stop was called.
  bool WaitForWake(std::chrono::steady_clock::time_point deadline);
  void Stop();
  bool stopping();

  // For Watch handles.
  void Cancel(Entry& entry);

 private:
  std::vector<std::shared_ptr<Entry>> LiveEntries();
  void DeliverTo(Entry& entry, const Batch& batch);
  // Runs the callback unless the watch ended; false when the watch has ended.
  bool Call(Entry& entry, const std::vector<WatchEvent>& events, const base::Status& status);
  void End(Entry& entry);

  std::mutex mutex_;
  std::condition_variable wake_;
  bool wake_pending_ = false;
  bool stopping_ = false;
  uint64_t next_id_ = 1;
  std::map<uint64_t, std::shared_ptr<Entry>> entries_;
  std::atomic<std::thread::id> delivery_thread_;
};

}  // namespace supercluster::store::sqlite
