// The SQLite store's tables and every read and write on them, used only by SqliteStore
// (sqlite_store.cc). Each function runs inside a Transaction the caller holds.
//
// Schema (one file shared by every process of a local cluster):
//   meta(name, value)      'schema_version', 'revision' (the store's current revision,
//                          1 for an empty store as in etcd) and 'compacted_revision' (the
//                          change log holds every change with a higher revision).
//   kv(key, value, create_revision, mod_revision, version, lease)
//                          the current state; keys and values are BLOBs, so keys compare
//                          bytewise and may hold NUL bytes.
//   changes(revision, position, key, deleted, value, create_revision, version, lease,
//           prev_value, prev_create_revision, prev_mod_revision, prev_version, prev_lease)
//                          one row per key changed by a revision, in the order the write
//                          made them. The new state feeds watches; the previous state
//                          (prev_value NULL: the key did not exist) lets Range read as of
//                          an older revision by undoing later changes.
//   leases(id, ttl_seconds, expires_at_ms)
//                          expiry is wall-clock milliseconds, comparable across processes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "store/sqlite_connection.h"
#include "store/store.h"

namespace supercluster::store::sqlite {

// Checks that the file is a store (or empty), switches it to write-ahead logging, and
// creates the tables in a new file or checks that an existing one has a schema this code
// understands. Runs its own transactions.
base::Status PrepareSchema(Connection& connection);

struct Revisions {
  int64_t current = 0;
  int64_t compacted = 0;  // the change log starts after this revision
};
base::Result<Revisions> ReadRevisions(Connection& connection);

base::Result<std::optional<KeyValue>> ReadKey(Connection& connection, std::string_view key);

// Keys starting with `prefix`, as of `revision` (which must lie in
// [revisions.compacted, revisions.current]); at most `limit` (0: all).
base::Result<RangeResult> ReadRange(Connection& connection, const std::string& prefix,
                                    int64_t limit, int64_t revision, const Revisions& revisions);

// Logged changes with revisions in [first, last], in revision order and, within a
// revision, in the order they were made. Stops early, at a revision boundary, once the
// keys and values read pass `byte_budget`; `last` then says how far it got (always at
// least one revision, however large).
struct LoggedChange {
  int64_t revision = 0;
  WatchEvent event;
};
struct LoggedChanges {
  std::vector<LoggedChange> changes;
  int64_t last = 0;  // every change up to this revision is in `changes`
};
base::Result<LoggedChanges> ReadChanges(Connection& connection, int64_t first, int64_t last,
                                        size_t byte_budget);

// The writes of one write transaction. The first change takes the next revision; every
// later change of the same transaction shares it; Finish records it and trims the change
// log to the last `retention` revisions. A transaction that changes nothing leaves the
// revision as it was.
class WriteBatch {
 public:
  static base::Result<WriteBatch> Start(Connection& connection, int64_t retention);

  base::Status Put(std::string_view key, std::string_view value, LeaseId lease);
  // False when the key did not exist (nothing changed).
  base::Result<bool> Delete(std::string_view key);
  // Deletes every key attached to `lease`, in key order.
  base::Status DeleteKeysOf(LeaseId lease);
  // Returns the store's revision after the batch.
  base::Result<int64_t> Finish();

  bool changed() const { return position_ > 0; }

 private:
  WriteBatch(Connection& connection, Revisions revisions, int64_t retention);
  base::Status LogChange(std::string_view key, const KeyValue* now,
                         const std::optional<KeyValue>& before);

  Connection* connection_;
  Revisions revisions_;
  int64_t retention_;
  int64_t position_ = 0;  // changes made so far
};

struct LeaseRow {
  int64_t ttl_seconds = 0;
  int64_t expires_at_ms = 0;
};
base::Result<std::optional<LeaseRow>> ReadLease(Connection& connection, LeaseId lease);
// False when `lease` is already taken.
base::Result<bool> InsertLease(Connection& connection, LeaseId lease, const LeaseRow& row);
base::Status SetLeaseExpiry(Connection& connection, LeaseId lease, int64_t expires_at_ms);
base::Status DeleteLease(Connection& connection, LeaseId lease);
// Leases whose expiry is at or before `now_ms`, in no particular order.
base::Result<std::vector<LeaseId>> ExpiredLeases(Connection& connection, int64_t now_ms);

}  // namespace supercluster::store::sqlite
