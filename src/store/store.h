// The cluster state store: the one interface through which routers, workers, the KMS and
// the controller share state. Two real backends implement it: SqliteStore (an embedded
// database file, for everything on one machine) and EtcdStore (etcd's v3 API, for many
// machines and regions). The model is etcd's: a flat, ordered key space; one global
// revision that every write increases by one; transactions that compare then act
// atomically; leases whose keys vanish when the lease expires; and watches that deliver
// every change after a revision, in order, exactly once.
//
// All methods are thread-safe and blocking. Errors are kUnavailable when the store cannot
// be reached (retrying may help), kInvalidArgument for bad input, kNotFound for a lease
// that does not exist, and kDataLoss for a watch whose start revision was compacted away.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"

namespace supercluster::store {

using LeaseId = int64_t;  // 0 means "no lease"

struct KeyValue {
  std::string key;
  std::string value;
  int64_t create_revision = 0;  // revision of the write that created the key
  int64_t mod_revision = 0;     // revision of the last write to the key
  int64_t version = 0;          // writes since creation, starting at 1
  LeaseId lease = 0;

  friend bool operator==(const KeyValue&, const KeyValue&) = default;
};

struct RangeOptions {
  int64_t limit = 0;     // 0: no limit
  int64_t revision = 0;  // 0: the current revision; else read as of that revision
};

struct RangeResult {
  std::vector<KeyValue> kvs;  // sorted by key
  bool more = false;          // true when `limit` cut the result short
  int64_t revision = 0;       // the store's revision the read saw
};

// One condition of a transaction, on one key.
struct Compare {
  enum class Kind {
    kExists,             // the key exists
    kMissing,            // the key does not exist
    kValueEquals,        // the key exists and its value equals `value`
    kModRevisionEquals,  // the key's mod_revision equals `revision` (0: the key is missing)
  };
  Kind kind = Kind::kExists;
  std::string key;
  std::string value;
  int64_t revision = 0;
};

// One write of a transaction.
struct Operation {
  enum class Kind { kPut, kDelete };
  Kind kind = Kind::kPut;
  std::string key;
  std::string value;
  LeaseId lease = 0;
};

struct TxnResult {
  bool succeeded = false;  // all compares held, so the `then` operations ran
  int64_t revision = 0;    // the store's revision after the transaction
};

struct WatchEvent {
  enum class Kind { kPut, kDelete };
  Kind kind = Kind::kPut;
  KeyValue kv;  // for kDelete: the key, and mod_revision = the deleting revision
};

// Runs on a watch thread of the store, one call at a time per watch, in revision order.
// `events` hold every change of one revision (a transaction may change several keys).
// A non-OK status ends the watch: kDataLoss when history before the next revision the
// watcher needs was compacted (the watcher must re-read with Range and watch again from
// the revision it returned); other codes when the watch cannot continue.
using WatchCallback =
    std::function<void(const std::vector<WatchEvent>& events, const base::Status& status)>;

// A running watch; destroying it (or Cancel) stops delivery. No callback runs after
// Cancel() returns, unless Cancel is called from inside the callback.
class Watch {
 public:
  virtual ~Watch() = default;
  virtual void Cancel() = 0;
};

class Store {
 public:
  virtual ~Store() = default;

  // The value of one key, or nullopt.
  virtual base::Result<std::optional<KeyValue>> Get(const std::string& key) = 0;
  // Keys starting with `prefix` ("" is every key), in key order.
  virtual base::Result<RangeResult> Range(const std::string& prefix,
                                          const RangeOptions& options = {}) = 0;
  // Returns the revision of the write. A non-zero lease must exist.
  virtual base::Result<int64_t> Put(const std::string& key, const std::string& value,
                                    LeaseId lease = 0) = 0;
  // Deletes one key; returns the number deleted (0 or 1).
  virtual base::Result<int64_t> Delete(const std::string& key) = 0;
  // If every compare holds, runs `then_ops`, else `else_ops`; atomically.
  virtual base::Result<TxnResult> Txn(const std::vector<Compare>& compares,
                                      const std::vector<Operation>& then_ops,
                                      const std::vector<Operation>& else_ops = {}) = 0;

  // Leases. TTLs are whole seconds (etcd's unit), at least 1.
  virtual base::Result<LeaseId> GrantLease(std::chrono::seconds ttl) = 0;
  // Restarts the lease's TTL. kNotFound when it already expired or was revoked.
  virtual base::Status KeepAlive(LeaseId lease) = 0;
  // Ends the lease and deletes its keys now.
  virtual base::Status RevokeLease(LeaseId lease) = 0;

  // Delivers every change to keys under `prefix` with revision >= from_revision
  // (0: changes after now).
  virtual base::Result<std::unique_ptr<Watch>> WatchPrefix(const std::string& prefix,
                                                           int64_t from_revision,
                                                           WatchCallback callback) = 0;
};

}  // namespace supercluster::store
