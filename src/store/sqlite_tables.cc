#include "store/sqlite_tables.h"

#include <map>
#include <utility>

namespace supercluster::store::sqlite {
namespace {

constexpr int64_t kSchemaVersion = 1;
// PRAGMA application_id marks the file as ours ("SCST"), so pointing the store at some
// other program's SQLite database fails with a clear error instead of mixing tables.
constexpr int64_t kApplicationId = 0x53435354;

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS meta (
  name TEXT PRIMARY KEY,
  value INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS kv (
  key BLOB NOT NULL UNIQUE,
  value BLOB NOT NULL,
  create_revision INTEGER NOT NULL,
  mod_revision INTEGER NOT NULL,
  version INTEGER NOT NULL,
  lease INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS kv_by_lease ON kv (lease) WHERE lease != 0;
CREATE TABLE IF NOT EXISTS changes (
  revision INTEGER NOT NULL,
  position INTEGER NOT NULL,
  key BLOB NOT NULL,
  deleted INTEGER NOT NULL,
  value BLOB,
  create_revision INTEGER NOT NULL,
  version INTEGER NOT NULL,
  lease INTEGER NOT NULL,
  prev_value BLOB,
  prev_create_revision INTEGER NOT NULL,
  prev_mod_revision INTEGER NOT NULL,
  prev_version INTEGER NOT NULL,
  prev_lease INTEGER NOT NULL,
  UNIQUE (revision, position)
);
CREATE INDEX IF NOT EXISTS changes_by_key ON changes (key, revision);
CREATE TABLE IF NOT EXISTS leases (
  id INTEGER PRIMARY KEY,
  ttl_seconds INTEGER NOT NULL,
  expires_at_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS leases_by_expiry ON leases (expires_at_ms);
)sql";

// The smallest key greater than every key starting with `prefix`, or nullopt when there
// is none (the prefix is empty or all 0xff bytes), as etcd computes range ends.
std::optional<std::string> PrefixEnd(std::string prefix) {
  while (!prefix.empty()) {
    auto last = static_cast<unsigned char>(prefix.back());
    if (last < 0xff) {
      prefix.back() = static_cast<char>(last + 1);
      return prefix;
    }
    prefix.pop_back();
  }
  return std::nullopt;
}

// Reads value, create_revision, mod_revision, version, lease from consecutive columns.
KeyValue KeyValueFromColumns(const Query& query, int first_column, std::string key) {
  KeyValue kv;
  kv.key = std::move(key);
  kv.value = query.Bytes(first_column);
  kv.create_revision = query.Int(first_column + 1);
  kv.mod_revision = query.Int(first_column + 2);
  kv.version = query.Int(first_column + 3);
  kv.lease = query.Int(first_column + 4);
  return kv;
}

base::Result<int64_t> ReadInt(Connection& connection, const char* sql) {
  SC_ASSIGN_OR_RETURN(Query query, connection.Prepare(sql));
  SC_ASSIGN_OR_RETURN(bool row, query.Next());
  if (!row) return base::Internal("database " + connection.path() + ": no row for " + sql);
  return query.Int(0);
}

base::Status CheckOwnership(Connection& connection) {
  SC_ASSIGN_OR_RETURN(int64_t application_id, ReadInt(connection, "PRAGMA application_id"));
  if (application_id == kApplicationId) return base::Status::Ok();
  if (application_id == 0) {
    SC_ASSIGN_OR_RETURN(int64_t objects, ReadInt(connection, "SELECT count(*) FROM sqlite_schema"));
    if (objects == 0) return base::Status::Ok();  // a new, empty file
  }
  return base::FailedPrecondition("database " + connection.path() +
                                  " is a SQLite database of another program, not a "
                                  "Supercluster store; choose another path");
}

base::Status CheckSchemaVersion(Connection& connection) {
  SC_ASSIGN_OR_RETURN(int64_t version,
                      ReadInt(connection, "SELECT value FROM meta WHERE name = 'schema_version'"));
  if (version > kSchemaVersion) {
    return base::FailedPrecondition("database " + connection.path() + " has store schema version " +
                                    std::to_string(version) + ", newer than this program's " +
                                    std::to_string(kSchemaVersion) + "; upgrade this program");
  }
  return base::Status::Ok();
}

base::Result<std::map<std::string, KeyValue>> ReadCurrentRange(
    Connection& connection, const std::string& prefix, const std::optional<std::string>& end) {
  static constexpr const char* kBounded =
      "SELECT key, value, create_revision, mod_revision, version, lease FROM kv "
      "WHERE key >= ?1 AND key < ?2 ORDER BY key";
  static constexpr const char* kUnbounded =
      "SELECT key, value, create_revision, mod_revision, version, lease FROM kv "
      "WHERE key >= ?1 ORDER BY key";
  SC_ASSIGN_OR_RETURN(Query query, connection.Prepare(end ? kBounded : kUnbounded));
  query.Bind(1, prefix);
  if (end) query.Bind(2, *end);
  std::map<std::string, KeyValue> kvs;
  while (true) {
    SC_ASSIGN_OR_RETURN(bool row, query.Next());
    if (!row) return kvs;
    std::string key = query.Bytes(0);
    kvs.emplace(key, KeyValueFromColumns(query, 1, key));
  }
}

// The range as of the current revision, with the limit applied by SQLite.
base::Result<RangeResult> ReadLatestRange(Connection& connection, const std::string& prefix,
                                          int64_t limit, int64_t current) {
  static constexpr const char* kBounded =
      "SELECT key, value, create_revision, mod_revision, version, lease FROM kv "
      "WHERE key >= ?1 AND key < ?2 ORDER BY key LIMIT ?3";
  static constexpr const char* kUnbounded =
      "SELECT key, value, create_revision, mod_revision, version, lease FROM kv "
      "WHERE key >= ?1 ORDER BY key LIMIT ?3";
  std::optional<std::string> end = PrefixEnd(prefix);
  SC_ASSIGN_OR_RETURN(Query query, connection.Prepare(end ? kBounded : kUnbounded));
  query.Bind(1, prefix);
  if (end) query.Bind(2, *end);
  // One row past the limit tells whether the result was cut short; -1 is no limit.
  query.Bind(3, limit > 0 ? limit + 1 : int64_t{-1});
  RangeResult result;
  result.revision = current;
  while (true) {
    SC_ASSIGN_OR_RETURN(bool row, query.Next());
    if (!row) return result;
    if (limit > 0 && static_cast<int64_t>(result.kvs.size()) == limit) {
      result.more = true;
      return result;
    }
    result.kvs.push_back(KeyValueFromColumns(query, 1, query.Bytes(0)));
  }
}

// The range as of an older revision: today's keys, with every key changed after
// `revision` put back to its state before its first such change.
base::Result<RangeResult> ReadPastRange(Connection& connection, const std::string& prefix,
                                        int64_t limit, int64_t revision, int64_t current) {
  static constexpr const char* kBounded =
      "SELECT key, prev_value, prev_create_revision, prev_mod_revision, prev_version, "
      "prev_lease FROM changes WHERE revision > ?1 AND key >= ?2 AND key < ?3 "
      "ORDER BY key, revision";
  static constexpr const char* kUnbounded =
      "SELECT key, prev_value, prev_create_revision, prev_mod_revision, prev_version, "
      "prev_lease FROM changes WHERE revision > ?1 AND key >= ?2 ORDER BY key, revision";
  std::optional<std::string> end = PrefixEnd(prefix);
  SC_ASSIGN_OR_RETURN(auto kvs, ReadCurrentRange(connection, prefix, end));
  {
    SC_ASSIGN_OR_RETURN(Query query, connection.Prepare(end ? kBounded : kUnbounded));
    query.Bind(1, revision).Bind(2, prefix);
    if (end) query.Bind(3, *end);
    std::string previous_key;
    bool first_row = true;
    while (true) {
      SC_ASSIGN_OR_RETURN(bool row, query.Next());
      if (!row) break;
      std::string key = query.Bytes(0);
      if (!first_row && key == previous_key) continue;  // only the earliest change counts
      first_row = false;
      previous_key = key;
      if (query.IsNull(1)) {
        kvs.erase(key);
      } else {
        kvs.insert_or_assign(key, KeyValueFromColumns(query, 1, key));
      }
    }
  }
  RangeResult result;
  result.revision = current;
  for (auto& [key, kv] : kvs) {
    if (limit > 0 && static_cast<int64_t>(result.kvs.size()) == limit) {
      result.more = true;
      break;
    }
    result.kvs.push_back(std::move(kv));
  }
  return result;
}

}  // namespace

// Whether the file holds this program's store at this schema version already: then opening
// it writes nothing. Requires a transaction.
base::Result<bool> IsPrepared(Connection& connection) {
  SC_ASSIGN_OR_RETURN(int64_t application_id, ReadInt(connection, "PRAGMA application_id"));
  if (application_id != kApplicationId) return false;
  SC_RETURN_IF_ERROR(CheckSchemaVersion(connection));  // a newer one is an error
  SC_ASSIGN_OR_RETURN(int64_t version,
                      ReadInt(connection, "SELECT value FROM meta WHERE name = 'schema_version'"));
  return version == kSchemaVersion;
}

base::Status PrepareSchema(Connection& connection) {
  bool prepared = false;
  {
    // Before switching the journal mode, which would change another program's file.
    SC_ASSIGN_OR_RETURN(Transaction look, Transaction::Begin(connection, Transaction::Mode::kRead));
    SC_RETURN_IF_ERROR(CheckOwnership(connection));
    SC_ASSIGN_OR_RETURN(prepared, IsPrepared(connection));
  }
  SC_RETURN_IF_ERROR(connection.EnableWriteAheadLog());
  // A store in place is only read: a write transaction here would wait for any other
  // process's write (up to busy_timeout), and then fail a command that only reads.
  if (prepared) return base::Status::Ok();
  SC_ASSIGN_OR_RETURN(Transaction transaction,
                      Transaction::Begin(connection, Transaction::Mode::kWrite));
  SC_RETURN_IF_ERROR(CheckOwnership(connection));  // a racing opener may have been first
  SC_RETURN_IF_ERROR(connection.Execute(kSchema));
  {
    // A new store starts at revision 1, as etcd does, with its whole history kept.
    SC_ASSIGN_OR_RETURN(Query query,
                        connection.Prepare("INSERT OR IGNORE INTO meta (name, value) VALUES "
                                           "('schema_version', ?1), ('revision', 1), "
                                           "('compacted_revision', 0)"));
    SC_RETURN_IF_ERROR(query.Bind(1, kSchemaVersion).Run());
  }
  std::string mark = "PRAGMA application_id = " + std::to_string(kApplicationId);
  SC_RETURN_IF_ERROR(connection.Execute(mark.c_str()));
  SC_RETURN_IF_ERROR(CheckSchemaVersion(connection));
  return transaction.Commit();
}

base::Result<Revisions> ReadRevisions(Connection& connection) {
  SC_ASSIGN_OR_RETURN(
      Query query,
      connection.Prepare("SELECT (SELECT value FROM meta WHERE name = 'revision'), "
                         "(SELECT value FROM meta WHERE name = 'compacted_revision')"));
  SC_ASSIGN_OR_RETURN(bool row, query.Next());
  if (!row || query.IsNull(0) || query.IsNull(1)) {
    return base::DataLoss("database " + connection.path() +
                          " has lost its revision counters (table meta)");
  }
  return Revisions{query.Int(0), query.Int(1)};
}

base::Result<std::optional<KeyValue>> ReadKey(Connection& connection, std::string_view key) {
  SC_ASSIGN_OR_RETURN(
      Query query, connection.Prepare("SELECT value, create_revision, mod_revision, version, lease "
                                      "FROM kv WHERE key = ?1"));
  query.Bind(1, key);
  SC_ASSIGN_OR_RETURN(bool row, query.Next());
  if (!row) return std::optional<KeyValue>();
  return std::optional<KeyValue>(KeyValueFromColumns(query, 0, std::string(key)));
}

base::Result<RangeResult> ReadRange(Connection& connection, const std::string& prefix,
                                    int64_t limit, int64_t revision, const Revisions& revisions) {
  if (revision == revisions.current) {
    return ReadLatestRange(connection, prefix, limit, revisions.current);
  }
  return ReadPastRange(connection, prefix, limit, revision, revisions.current);
}

base::Result<LoggedChanges> ReadChanges(Connection& connection, int64_t first, int64_t last,
                                        size_t byte_budget) {
  SC_ASSIGN_OR_RETURN(
      Query query,
      connection.Prepare("SELECT revision, key, deleted, value, create_revision, version, "
                         "lease FROM changes WHERE revision >= ?1 AND revision <= ?2 "
                         "ORDER BY revision, position"));
  query.Bind(1, first).Bind(2, last);
  LoggedChanges read;
  read.last = last;
  size_t bytes = 0;
  while (true) {
    SC_ASSIGN_OR_RETURN(bool row, query.Next());
    if (!row) return read;
    int64_t revision = query.Int(0);
    if (bytes >= byte_budget && !read.changes.empty() && revision != read.changes.back().revision) {
      read.last = revision - 1;  // a revision is delivered whole or not yet
      return read;
    }
    LoggedChange change;
    change.revision = revision;
    change.event.kv.key = query.Bytes(1);
    change.event.kv.mod_revision = revision;
    if (query.Int(2) != 0) {
      change.event.kind = WatchEvent::Kind::kDelete;
    } else {
      change.event.kind = WatchEvent::Kind::kPut;
      change.event.kv.value = query.Bytes(3);
      change.event.kv.create_revision = query.Int(4);
      change.event.kv.version = query.Int(5);
      change.event.kv.lease = query.Int(6);
    }
    bytes += change.event.kv.key.size() + change.event.kv.value.size();
    read.changes.push_back(std::move(change));
  }
}

// ---- WriteBatch ----

WriteBatch::WriteBatch(Connection& connection, Revisions revisions, int64_t retention)
    : connection_(&connection), revisions_(revisions), retention_(retention) {}

base::Result<WriteBatch> WriteBatch::Start(Connection& connection, int64_t retention) {
  SC_ASSIGN_OR_RETURN(Revisions revisions, ReadRevisions(connection));
  return WriteBatch(connection, revisions, retention);
}

base::Status WriteBatch::LogChange(std::string_view key, const KeyValue* now,
                                   const std::optional<KeyValue>& before) {
  SC_ASSIGN_OR_RETURN(
      Query query,
      connection_->Prepare(
          "INSERT INTO changes (revision, position, key, deleted, value, create_revision, "
          "version, lease, prev_value, prev_create_revision, prev_mod_revision, "
          "prev_version, prev_lease) "
          "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"));
  query.Bind(1, revisions_.current + 1).Bind(2, position_).Bind(3, key);
  query.Bind(4, int64_t{now == nullptr ? 1 : 0});
  if (now != nullptr) {
    query.Bind(5, now->value).Bind(6, now->create_revision).Bind(7, now->version);
    query.Bind(8, now->lease);
  } else {
    query.BindNull(5).Bind(6, int64_t{0}).Bind(7, int64_t{0}).Bind(8, int64_t{0});
  }
  if (before) {
    query.Bind(9, before->value).Bind(10, before->create_revision);
    query.Bind(11, before->mod_revision).Bind(12, before->version).Bind(13, before->lease);
  } else {
    query.BindNull(9).Bind(10, int64_t{0}).Bind(11, int64_t{0}).Bind(12, int64_t{0});
    query.Bind(13, int64_t{0});
  }
  SC_RETURN_IF_ERROR(query.Run());
  ++position_;
  return base::Status::Ok();
}

base::Status WriteBatch::Put(std::string_view key, std::string_view value, LeaseId lease) {
  SC_ASSIGN_OR_RETURN(std::optional<KeyValue> before, ReadKey(*connection_, key));
  KeyValue now;
  now.value = std::string(value);
  now.mod_revision = revisions_.current + 1;
  now.create_revision = before ? before->create_revision : now.mod_revision;
  now.version = before ? before->version + 1 : 1;
  now.lease = lease;
  {
    SC_ASSIGN_OR_RETURN(
        Query query,
        connection_->Prepare(
            "INSERT INTO kv (key, value, create_revision, mod_revision, version, lease) "
            "VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (key) DO UPDATE SET "
            "value = excluded.value, create_revision = excluded.create_revision, "
            "mod_revision = excluded.mod_revision, version = excluded.version, "
            "lease = excluded.lease"));
    query.Bind(1, key).Bind(2, value).Bind(3, now.create_revision).Bind(4, now.mod_revision);
    query.Bind(5, now.version).Bind(6, now.lease);
    SC_RETURN_IF_ERROR(query.Run());
  }
  return LogChange(key, &now, before);
}

base::Result<bool> WriteBatch::Delete(std::string_view key) {
  SC_ASSIGN_OR_RETURN(std::optional<KeyValue> before, ReadKey(*connection_, key));
  if (!before) return false;
  {
    SC_ASSIGN_OR_RETURN(Query query, connection_->Prepare("DELETE FROM kv WHERE key = ?1"));
    query.Bind(1, key);
    SC_RETURN_IF_ERROR(query.Run());
  }
  SC_RETURN_IF_ERROR(LogChange(key, nullptr, before));
  return true;
}

base::Status WriteBatch::DeleteKeysOf(LeaseId lease) {
  std::vector<std::string> keys;
  {
    SC_ASSIGN_OR_RETURN(
        Query query,
        // "lease != 0" lets SQLite use the partial index kv_by_lease.
        connection_->Prepare("SELECT key FROM kv WHERE lease = ?1 AND lease != 0 ORDER BY key"));
    query.Bind(1, lease);
    while (true) {
      SC_ASSIGN_OR_RETURN(bool row, query.Next());
      if (!row) break;
      keys.push_back(query.Bytes(0));
    }
  }
  for (const std::string& key : keys) {
    base::Result<bool> deleted = Delete(key);
    if (!deleted.ok()) return deleted.status();
  }
  return base::Status::Ok();
}

base::Result<int64_t> WriteBatch::Finish() {
  if (!changed()) return revisions_.current;
  int64_t revision = revisions_.current + 1;
  {
    SC_ASSIGN_OR_RETURN(Query query,
                        connection_->Prepare("UPDATE meta SET value = ?1 WHERE name = 'revision'"));
    SC_RETURN_IF_ERROR(query.Bind(1, revision).Run());
  }
  // Trimming a revision or two per write keeps the log at exactly `retention` revisions
  // without a separate compaction pass.
  int64_t new_compacted = revision - retention_;
  if (new_compacted > revisions_.compacted) {
    {
      SC_ASSIGN_OR_RETURN(Query query,
                          connection_->Prepare("DELETE FROM changes WHERE revision <= ?1"));
      SC_RETURN_IF_ERROR(query.Bind(1, new_compacted).Run());
    }
    SC_ASSIGN_OR_RETURN(
        Query query,
        connection_->Prepare("UPDATE meta SET value = ?1 WHERE name = 'compacted_revision'"));
    SC_RETURN_IF_ERROR(query.Bind(1, new_compacted).Run());
  }
  return revision;
}

// ---- leases ----

base::Result<std::optional<LeaseRow>> ReadLease(Connection& connection, LeaseId lease) {
  SC_ASSIGN_OR_RETURN(
      Query query,
      connection.Prepare("SELECT ttl_seconds, expires_at_ms FROM leases WHERE id = ?1"));
  query.Bind(1, lease);
  SC_ASSIGN_OR_RETURN(bool row, query.Next());
  if (!row) return std::optional<LeaseRow>();
  return std::optional<LeaseRow>(LeaseRow{query.Int(0), query.Int(1)});
}

base::Result<bool> InsertLease(Connection& connection, LeaseId lease, const LeaseRow& row) {
  SC_ASSIGN_OR_RETURN(
      Query query,
      connection.Prepare("INSERT OR IGNORE INTO leases (id, ttl_seconds, expires_at_ms) "
                         "VALUES (?1, ?2, ?3)"));
  query.Bind(1, lease).Bind(2, row.ttl_seconds).Bind(3, row.expires_at_ms);
  SC_RETURN_IF_ERROR(query.Run());
  return connection.ChangedRows() == 1;
}

base::Status SetLeaseExpiry(Connection& connection, LeaseId lease, int64_t expires_at_ms) {
  SC_ASSIGN_OR_RETURN(Query query,
                      connection.Prepare("UPDATE leases SET expires_at_ms = ?2 WHERE id = ?1"));
  return query.Bind(1, lease).Bind(2, expires_at_ms).Run();
}

base::Status DeleteLease(Connection& connection, LeaseId lease) {
  SC_ASSIGN_OR_RETURN(Query query, connection.Prepare("DELETE FROM leases WHERE id = ?1"));
  return query.Bind(1, lease).Run();
}

base::Result<std::vector<LeaseId>> ExpiredLeases(Connection& connection, int64_t now_ms) {
  SC_ASSIGN_OR_RETURN(Query query,
                      connection.Prepare("SELECT id FROM leases WHERE expires_at_ms <= ?1"));
  query.Bind(1, now_ms);
  std::vector<LeaseId> leases;
  while (true) {
    SC_ASSIGN_OR_RETURN(bool row, query.Next());
    if (!row) return leases;
    leases.push_back(query.Int(0));
  }
}

}  // namespace supercluster::store::sqlite
