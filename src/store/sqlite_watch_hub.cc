#include "store/sqlite_watch_hub.h"

#include <spdlog/spdlog.h>

#include <exception>
#include <utility>

namespace supercluster::store::sqlite {
namespace {

// The handle WatchPrefix returns; it only forwards to the hub, which outlives it.
class HubWatch : public Watch {
 public:
  HubWatch(std::shared_ptr<WatchHub> hub, std::shared_ptr<WatchHub::Entry> entry)
      : hub_(std::move(hub)), entry_(std::move(entry)) {}
  ~HubWatch() override { Cancel(); }

  void Cancel() override { hub_->Cancel(*entry_); }

 private:
  std::shared_ptr<WatchHub> hub_;
  std::shared_ptr<WatchHub::Entry> entry_;
};

bool HasPrefix(const std::string& key, const std::string& prefix) {
  return key.compare(0, prefix.size(), prefix) == 0;
}

}  // namespace

std::unique_ptr<Watch> WatchHub::Add(std::string prefix, int64_t next_revision,
                                     WatchCallback callback) {
  auto entry = std::make_shared<Entry>();
  entry->prefix = std::move(prefix);
  entry->callback = std::move(callback);
  entry->next_revision = next_revision;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    entry->id = next_id_++;
    entries_.emplace(entry->id, entry);
    wake_pending_ = true;
  }
  wake_.notify_one();
  return std::make_unique<HubWatch>(shared_from_this(), std::move(entry));
}

void WatchHub::Cancel(Entry& entry) {
  entry.ended.store(true);
  if (std::this_thread::get_id() != delivery_thread_.load()) {
    // Waits out a callback running now; any later delivery sees `ended` and skips. From
    // inside a callback (the delivery thread) this would wait for itself, so it doesn't.
    std::lock_guard<std::mutex> wait_for_callback(entry.delivery_mutex);
  }
  std::lock_guard<std::mutex> lock(mutex_);
  entries_.erase(entry.id);
}

std::optional<int64_t> WatchHub::OldestNeeded() {
  std::lock_guard<std::mutex> lock(mutex_);
  std::optional<int64_t> oldest;
  for (const auto& [id, entry] : entries_) {
    if (entry->ended.load()) continue;
    if (!oldest || entry->next_revision < *oldest) oldest = entry->next_revision;
  }
  return oldest;
}

std::vector<std::shared_ptr<WatchHub::Entry>> WatchHub::LiveEntries() {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<std::shared_ptr<Entry>> live;
  for (const auto& [id, entry] : entries_) {
    if (!entry->ended.load()) live.push_back(entry);
  }
  return live;
}

void WatchHub::Deliver(const Batch& batch) {
  // Callbacks run without the hub's mutex, so they may add or cancel watches.
  for (const auto& entry : LiveEntries()) {
    if (stopping()) return;
    DeliverTo(*entry, batch);
  }
}

void WatchHub::DeliverTo(Entry& entry, const Batch& batch) {
  if (entry.next_revision > batch.last) return;  // nothing new for it
  if (entry.next_revision <= batch.compacted) {
    Call(entry, {},
         base::DataLoss("watch of prefix '" + entry.prefix + "' needs revision " +
                        std::to_string(entry.next_revision) +
                        ", which was compacted; oldest kept is " +
                        std::to_string(batch.compacted + 1) +
                        "; read the state again with Range and watch from its revision"));
    End(entry);
    return;
  }
  if (entry.next_revision < batch.first) return;  // the batch does not reach back that far
  std::vector<WatchEvent> group;
  int64_t group_revision = 0;
  for (const LoggedChange& change : batch.changes) {
    if (change.revision < entry.next_revision) continue;
    if (change.revision != group_revision) {
      if (!group.empty() && !Call(entry, group, base::Status::Ok())) return;
      group.clear();
      group_revision = change.revision;
    }
    if (HasPrefix(change.event.kv.key, entry.prefix)) group.push_back(change.event);
  }
  if (!group.empty() && !Call(entry, group, base::Status::Ok())) return;
  entry.next_revision = batch.last + 1;
}

bool WatchHub::Call(Entry& entry, const std::vector<WatchEvent>& events,
                    const base::Status& status) {
  std::lock_guard<std::mutex> lock(entry.delivery_mutex);
  if (entry.ended.load()) return false;
  // A callback that throws would otherwise end the whole delivery thread; it ends only
  // its own watch.
  try {
    entry.callback(events, status);
  } catch (const std::exception& error) {
    spdlog::error("store watch of prefix '{}': callback threw ({}); watch ended", entry.prefix,
                  error.what());
    End(entry);
  } catch (...) {
    spdlog::error("store watch of prefix '{}': callback threw; watch ended", entry.prefix);
    End(entry);
  }
  return !entry.ended.load();
}

void WatchHub::End(Entry& entry) {
  entry.ended.store(true);
  std::lock_guard<std::mutex> lock(mutex_);
  entries_.erase(entry.id);
}

void WatchHub::EndAll(const base::Status& status) {
  for (const auto& entry : LiveEntries()) {
    Call(*entry, {}, status);
    End(*entry);
  }
}

void WatchHub::Wake() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    wake_pending_ = true;
  }
  wake_.notify_one();
}

bool WatchHub::WaitForWake(std::chrono::steady_clock::time_point deadline) {
  std::unique_lock<std::mutex> lock(mutex_);
  wake_.wait_until(lock, deadline, [this] { return wake_pending_ || stopping_; });
  wake_pending_ = false;
  return !stopping_;
}

void WatchHub::Stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
}

bool WatchHub::stopping() {
  std::lock_guard<std::mutex> lock(mutex_);
  return stopping_;
}

}  // namespace supercluster::store::sqlite
