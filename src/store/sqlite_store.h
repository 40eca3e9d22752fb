// SqliteStore: the embedded Store backend (see store.h), the default when a whole cluster
// runs on one machine. The controller, routers, workers and the KMS each open the same
// database file (under --data-dir) and coordinate through it as they would through etcd.
//
// How it keeps etcd's promises across processes:
// - Every write is one BEGIN IMMEDIATE transaction: it takes SQLite's single write lock,
//   reads the revision, applies its puts and deletes, bumps the revision once and appends
//   each change to a change log, then commits. Writers in different processes are thus
//   serialised (no lost updates), and a writer killed mid-transaction leaves nothing
//   behind (SQLite's atomic commit in WAL mode).
// - A background thread per store polls the change log every watch_poll_interval (and at
//   once after a write through the same store) and delivers each revision's changes to
//   the watches, in order, exactly once. The log keeps the last change_log_retention
//   revisions; a watch or a Range that needs older history gets kDataLoss.
// - Leases live in the file with a wall-clock expiry. Every store sweeps expired leases
//   every lease_sweep_interval, so the keys of a killed process's lease vanish even though
//   that process never comes back.
//
// Limits (as etcd's defaults, so code written against one backend fits the other): a key
// is 1 to 4096 bytes of any value (NUL included), a value at most 1.5 MiB, a transaction
// at most 128 compares and 128 operations per branch, and a transaction may not write the
// same key twice. Larger input is kInvalidArgument.
//
// Processes that fork(): a child may open its own SqliteStore on the file, but the parent
// must keep a store on that file open until such children exit (SQLite's per-process lock
// records are inherited, so the parent's last close could otherwise tidy away the
// write-ahead log under the children). fork() waits while a store transaction runs.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "store/store.h"

namespace supercluster::store {

struct SqliteStoreOptions {
  std::string path;  // the database file; created if missing; its directory must exist
  // How long a write waits for another process's write lock before kUnavailable.
  std::chrono::milliseconds busy_timeout{5000};
  // How soon a watch sees writes made by other processes (own writes wake it at once).
  std::chrono::milliseconds watch_poll_interval{20};
  // How often expired leases are looked for; keys outlive their lease by at most this.
  std::chrono::milliseconds lease_sweep_interval{200};
  // Revisions of history kept for watches and Range at a past revision.
  int64_t change_log_retention = 10000;
  // Sync every commit to disk (survives power loss); false syncs only at checkpoints,
  // which still survives any crash of processes but may lose the last commits on power
  // loss.
  bool durable_commits = true;
};

class SqliteStore : public Store {
 public:
  static constexpr size_t kMaxKeyBytes = 4096;
  static constexpr size_t kMaxValueBytes = 1536 * 1024;
  static constexpr size_t kMaxTxnOperations = 128;
  static constexpr int64_t kMaxLeaseTtlSeconds = 9'000'000'000;  // etcd's maximum

  // Opens (creating if needed) the store in `options.path` and starts its background
  // thread. kDataLoss when the file is corrupt or not SQLite; kFailedPrecondition when it
  // is another program's database or written by a newer version of this one.
  static base::Result<std::unique_ptr<SqliteStore>> Open(const SqliteStoreOptions& options);
  // Stops the background thread; no callback runs afterwards. Must not run inside a
  // watch callback of this store (it waits for that thread).
  ~SqliteStore() override;

  base::Result<std::optional<KeyValue>> Get(const std::string& key) override;
  base::Result<RangeResult> Range(const std::string& prefix,
                                  const RangeOptions& options = {}) override;
  base::Result<int64_t> Put(const std::string& key, const std::string& value,
                            LeaseId lease = 0) override;
  base::Result<int64_t> Delete(const std::string& key) override;
  base::Result<TxnResult> Txn(const std::vector<Compare>& compares,
                              const std::vector<Operation>& then_ops,
                              const std::vector<Operation>& else_ops = {}) override;

  base::Result<LeaseId> GrantLease(std::chrono::seconds ttl) override;
  base::Status KeepAlive(LeaseId lease) override;
  // Also ends a lease that expired but has not been swept yet (deleting its keys).
  base::Status RevokeLease(LeaseId lease) override;

  base::Result<std::unique_ptr<Watch>> WatchPrefix(const std::string& prefix, int64_t from_revision,
                                                   WatchCallback callback) override;

 private:
  class Impl;
  explicit SqliteStore(std::unique_ptr<Impl> impl);

  std::unique_ptr<Impl> impl_;
};

}  // namespace supercluster::store
