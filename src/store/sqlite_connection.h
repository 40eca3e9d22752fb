// RAII wrappers over SQLite's C API, used only by SqliteStore (src/store/sqlite_*): one
// connection to the database file, its cached prepared statements, and read or write
// transactions. SQLite's result codes become Status values whose messages name the
// database file, so an operator reading "unavailable: database /x/state.db is busy ..."
// knows which file and what to do.
//
// Fork safety: tests (and any program that forks) may fork() while another thread of the
// process is inside SQLite. SQLite keeps per-process lock bookkeeping and mutexes that a
// child inherits in whatever state they were in, so a child that opens the same file
// could deadlock or see a phantom lock. Every use of SQLite here therefore happens under
// a ForkGuard (one of many concurrent holds on a process-wide count); a pthread_atfork
// handler waits for the count to reach zero and keeps new holders out, so fork() waits
// until no transaction of ours is open.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "base/status.h"

struct sqlite3;
struct sqlite3_stmt;

namespace supercluster::store::sqlite {

// Held while this thread uses SQLite; see the fork-safety note above. Not reentrant: a
// thread holds at most one at a time (a nested one could wait on a pending fork that
// waits on the outer one).
class ForkGuard {
 public:
  ForkGuard();
  ~ForkGuard();
  ForkGuard(ForkGuard&& other) noexcept;
  ForkGuard& operator=(ForkGuard&&) = delete;
  ForkGuard(const ForkGuard&) = delete;

  struct State;  // defined in the .cc

 private:
  State* state_;  // null once moved from
};

class Connection;

// One use of a cached prepared statement: bind, step, read columns. Resets the statement
// when it goes out of scope so the cache can hand it out again. Bound text is copied, so
// arguments need not outlive the call.
class Query {
 public:
  // `in_use` is the cache's flag for this statement, cleared when the Query ends.
  Query(Connection& connection, sqlite3_stmt* statement, bool* in_use);
  Query(Query&& other) noexcept;
  Query& operator=(Query&&) = delete;
  Query(const Query&) = delete;
  ~Query();

  // Parameters are numbered from 1, as in SQL's ?1, ?2. Strings are bound as BLOBs so
  // that keys compare bytewise and may hold NUL bytes.
  Query& Bind(int index, int64_t value);
  Query& Bind(int index, std::string_view bytes);
  Query& BindNull(int index);

  // Steps once: true when a row is ready to read, false when the statement is done.
  base::Result<bool> Next();
  // Steps until done, for statements that return no rows.
  base::Status Run();

  // Columns are numbered from 0.
  int64_t Int(int column) const;
  std::string Bytes(int column) const;
  bool IsNull(int column) const;

 private:
  Connection* connection_;
  sqlite3_stmt* statement_;
  bool* in_use_;
  base::Status bind_error_;  // the first failed Bind, reported by Next/Run
};

class Connection {
 public:
  struct Settings {
    std::string path;
    std::chrono::milliseconds busy_timeout{5000};
    bool durable_commits = true;  // fsync every commit (synchronous=FULL)
  };

  // Opens (creating if needed) the database file. Reads nothing from it yet, so that the
  // caller can check whose file it is before changing anything.
  static base::Result<std::unique_ptr<Connection>> Open(const Settings& settings);
  ~Connection();  // takes its own ForkGuard
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  const std::string& path() const { return settings_.path; }

  // Switches the file to write-ahead logging (a setting stored in the file, so done once
  // per file, but harmless to repeat). Not inside a transaction.
  base::Status EnableWriteAheadLog();

  // A cached statement for `sql`, which must be a string literal: the cache keys on its
  // address. Prepare, Execute and the Query they return are used inside a Transaction,
  // whose ForkGuard covers them.
  base::Result<Query> Prepare(const char* sql);
  // Runs SQL with no parameters and no result rows (pragmas, DDL).
  base::Status Execute(const char* sql);
  // The Status for SQLite result code `code`, saying what we were `doing`.
  base::Status Error(int code, std::string_view doing) const;
  // Rows changed by the last INSERT/UPDATE/DELETE.
  int64_t ChangedRows() const;

 private:
  explicit Connection(Settings settings);
  base::Status Configure();

  struct StatementDeleter {
    void operator()(sqlite3_stmt* statement) const;
  };

  Settings settings_;
  sqlite3* handle_ = nullptr;
  struct CachedStatement {
    std::unique_ptr<sqlite3_stmt, StatementDeleter> statement;
    bool in_use = false;  // a live Query holds it; a nested use would reset it mid-read
  };
  std::unordered_map<const char*, CachedStatement> cache_;
};

// A read or write transaction on one connection; rolls back unless committed. A write
// transaction is BEGIN IMMEDIATE: it takes the database's single write lock up front
// (waiting up to the busy timeout), so two writers never both read a revision and both
// try to increment it.
class Transaction {
 public:
  enum class Mode { kRead, kWrite };

  static base::Result<Transaction> Begin(Connection& connection, Mode mode);
  Transaction(Transaction&& other) noexcept;
  Transaction& operator=(Transaction&&) = delete;
  ~Transaction();

  base::Status Commit();

 private:
  Transaction(Connection& connection, ForkGuard guard);

  Connection* connection_;
  ForkGuard guard_;  // released after the rollback in the destructor
  bool open_ = true;
};

}  // namespace supercluster::store::sqlite
