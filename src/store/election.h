// Leader election on any Store, built from a lease and the global revision order (the
// same scheme as etcd's concurrency package): each candidate writes a key under
// "<prefix>/" attached to its own lease; the leader is the candidate whose key has the
// lowest create_revision. A leader that dies stops renewing its lease, its key expires
// after the TTL, and the next candidate in line takes over. Used by the controller and
// anything else that must run once per cluster.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "base/status.h"
#include "store/store.h"

namespace supercluster::store {

class Election {
 public:
  // `prefix` names the election, e.g. "/sc/v1/elections/controller". `ttl`: how long a
  // dead leader keeps the office. Precondition: `store` outlives the Election.
  Election(Store& store, std::string prefix, std::chrono::seconds ttl);
  ~Election();  // Resigns if still a candidate.
  Election(const Election&) = delete;
  Election& operator=(const Election&) = delete;

  // Becomes a candidate with `value` (what observers see, e.g. this process's address)
  // and blocks until leader. kDeadlineExceeded after `timeout` (still a candidate: call
  // again to keep waiting, or Resign). Keeps the lease alive from a background thread.
  base::Status Campaign(const std::string& value, std::chrono::milliseconds timeout);

  // Stops being a candidate or leader at once (revokes the lease).
  base::Status Resign();

  // Whether this candidate leads now, as far as it knows: it was elected, its lease was
  // not lost, and the lease was renewed less than a TTL ago. A leader cut off from the
  // store thus stops calling itself leader by the time its lease can have expired and
  // another candidate been elected.
  bool IsLeader() const;

  // The current leader's key and value, or nullopt when nobody leads.
  static base::Result<std::optional<KeyValue>> Leader(Store& store, const std::string& prefix);

 private:
  void KeepAliveLoop();
  void StopKeepAlive();

  Store& store_;
  const std::string prefix_;
  const std::chrono::seconds ttl_;
  LeaseId lease_ = 0;
  std::string key_;
  std::atomic<bool> leader_{false};
  // Steady-clock time (ms) at which the last successful grant or renewal was sent: the
  // lease lasts at least a TTL from then.
  std::atomic<int64_t> renewed_at_ms_{0};

  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread keep_alive_thread_;
};

}  // namespace supercluster::store
