#include "store/sqlite_connection.h"

#include <pthread.h>
#include <sqlite3.h>

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <utility>

namespace supercluster::store::sqlite {
namespace {

// Runs a statement with no parameters and no rows through the cache, so that the BEGIN and
// COMMIT of every transaction are not parsed again each time.
base::Status RunCached(Connection& connection, const char* sql) {
  SC_ASSIGN_OR_RETURN(Query query, connection.Prepare(sql));
  return query.Run();
}

// sqlite3_bind_blob binds NULL for a null pointer even when the length is 0; an empty
// string must stay an empty value, not a missing one.
const char* NonNullData(std::string_view bytes) { return bytes.data() ? bytes.data() : ""; }

}  // namespace

// ---- ForkGuard ----

// The count of guards held, and whether a fork() is waiting for it to reach zero.
struct ForkGuard::State {
  std::mutex mutex;
  std::condition_variable no_holders;  // the count reached zero
  std::condition_variable fork_done;
  int holders = 0;
  bool forking = false;
};

namespace {

// Replaced, not reset, in a forked child: the child has one thread, and the old state's
// mutex and condition variables may record threads that did not survive the fork.
// Leaked on purpose: fork handlers may run while static destructors do at exit.
std::atomic<ForkGuard::State*> current_fork_state{new ForkGuard::State};

void BeforeFork() {
  ForkGuard::State* state = current_fork_state.load();
  std::unique_lock<std::mutex> lock(state->mutex);
  state->forking = true;
  state->no_holders.wait(lock, [state] { return state->holders == 0; });
  // Held across fork(), so the child cannot inherit it locked by a thread it lacks.
  lock.release();
}

void AfterForkInParent() {
  ForkGuard::State* state = current_fork_state.load();
  state->forking = false;
  state->mutex.unlock();
  state->fork_done.notify_all();
}

void AfterForkInChild() { current_fork_state.store(new ForkGuard::State); }

}  // namespace

ForkGuard::ForkGuard() {
  static std::once_flag registered;
  std::call_once(registered,
                 [] { pthread_atfork(BeforeFork, AfterForkInParent, AfterForkInChild); });
  state_ = current_fork_state.load();
  std::unique_lock<std::mutex> lock(state_->mutex);
  state_->fork_done.wait(lock, [this] { return !state_->forking; });
  ++state_->holders;
}

ForkGuard::ForkGuard(ForkGuard&& other) noexcept : state_(std::exchange(other.state_, nullptr)) {}

ForkGuard::~ForkGuard() {
  if (state_ == nullptr) return;
  std::lock_guard<std::mutex> lock(state_->mutex);
  if (--state_->holders == 0) state_->no_holders.notify_all();
}

// ---- Query ----

Query::Query(Connection& connection, sqlite3_stmt* statement, bool* in_use)
    : connection_(&connection), statement_(statement), in_use_(in_use) {
  *in_use_ = true;
}

Query::Query(Query&& other) noexcept
    : connection_(other.connection_),
      statement_(std::exchange(other.statement_, nullptr)),
      in_use_(other.in_use_),
      bind_error_(std::move(other.bind_error_)) {}

Query::~Query() {
  if (statement_ == nullptr) return;
  sqlite3_reset(statement_);
  sqlite3_clear_bindings(statement_);
  *in_use_ = false;
}

Query& Query::Bind(int index, int64_t value) {
  int code = sqlite3_bind_int64(statement_, index, value);
  if (code != SQLITE_OK && bind_error_.ok()) bind_error_ = connection_->Error(code, "binding");
  return *this;
}

Query& Query::Bind(int index, std::string_view bytes) {
  int code =
      sqlite3_bind_blob64(statement_, index, NonNullData(bytes), bytes.size(), SQLITE_TRANSIENT);
  if (code != SQLITE_OK && bind_error_.ok()) bind_error_ = connection_->Error(code, "binding");
  return *this;
}

Query& Query::BindNull(int index) {
  int code = sqlite3_bind_null(statement_, index);
  if (code != SQLITE_OK && bind_error_.ok()) bind_error_ = connection_->Error(code, "binding");
  return *this;
}

base::Result<bool> Query::Next() {
  if (!bind_error_.ok()) return bind_error_;
  int code = sqlite3_step(statement_);
  if (code == SQLITE_ROW) return true;
  if (code == SQLITE_DONE) return false;
  return connection_->Error(code, std::string("running \"") + sqlite3_sql(statement_) + "\"");
}

base::Status Query::Run() {
  while (true) {
    SC_ASSIGN_OR_RETURN(bool row, Next());
    if (!row) return base::Status::Ok();
  }
}

int64_t Query::Int(int column) const { return sqlite3_column_int64(statement_, column); }

std::string Query::Bytes(int column) const {
  // column_blob before column_bytes, as SQLite's documentation requires.
  const void* data = sqlite3_column_blob(statement_, column);
  int size = sqlite3_column_bytes(statement_, column);
  if (data == nullptr || size <= 0) return std::string();
  return std::string(static_cast<const char*>(data), static_cast<size_t>(size));
}

bool Query::IsNull(int column) const {
  return sqlite3_column_type(statement_, column) == SQLITE_NULL;
}

// ---- Connection ----

void Connection::StatementDeleter::operator()(sqlite3_stmt* statement) const {
  sqlite3_finalize(statement);
}

Connection::Connection(Settings settings) : settings_(std::move(settings)) {}

Connection::~Connection() {
  ForkGuard guard;
  cache_.clear();  // statements must be finalized before the handle closes
  if (handle_ != nullptr) sqlite3_close_v2(handle_);
}

base::Result<std::unique_ptr<Connection>> Connection::Open(const Settings& settings) {
  // Declared before the guard so that, on failure, it closes after the guard is released:
  // the destructor takes a guard of its own and guards do not nest.
  std::unique_ptr<Connection> connection(new Connection(settings));
  ForkGuard guard;
  // NOMUTEX: each connection is used by one thread at a time (the store serialises its
  // callers), so SQLite's own per-connection mutex would only cost time.
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
  int code = sqlite3_open_v2(settings.path.c_str(), &connection->handle_, flags, nullptr);
  if (code != SQLITE_OK) return connection->Error(code, "opening it");
  SC_RETURN_IF_ERROR(connection->Configure());
  return connection;
}

base::Status Connection::Configure() {
  sqlite3_extended_result_codes(handle_, 1);
  sqlite3_busy_timeout(handle_, static_cast<int>(settings_.busy_timeout.count()));
  // FULL syncs every commit (durable across power loss); NORMAL syncs at checkpoints only,
  // which in WAL mode is still consistent after a crash of the process or the machine.
  SC_RETURN_IF_ERROR(
      Execute(settings_.durable_commits ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL"));
  // Without a limit the log file keeps the size of its largest burst of writes forever.
  return Execute("PRAGMA journal_size_limit=67108864");
}

base::Status Connection::EnableWriteAheadLog() {
  ForkGuard guard;
  // WAL lets readers (watch pollers in every process) run while one process writes, and
  // makes a commit one append to the log, which a crash either has or has not.
  SC_ASSIGN_OR_RETURN(Query query, Prepare("PRAGMA journal_mode=WAL"));
  SC_ASSIGN_OR_RETURN(bool row, query.Next());
  std::string mode = row ? query.Bytes(0) : std::string();
  if (mode != "wal") {
    return base::FailedPrecondition("database " + path() +
                                    " cannot use write-ahead logging (journal mode is '" + mode +
                                    "'); put it on a local filesystem");
  }
  return base::Status::Ok();
}

base::Result<Query> Connection::Prepare(const char* sql) {
  auto cached = cache_.find(sql);
  if (cached == cache_.end()) {
    sqlite3_stmt* statement = nullptr;
    int code = sqlite3_prepare_v3(handle_, sql, -1, SQLITE_PREPARE_PERSISTENT, &statement, nullptr);
    if (code != SQLITE_OK) {
      sqlite3_finalize(statement);
      return Error(code, std::string("preparing \"") + sql + "\"");
    }
    cached = cache_.emplace(sql, CachedStatement{{statement, StatementDeleter()}, false}).first;
  }
  if (cached->second.in_use) {
    return base::Internal(std::string("statement \"") + sql + "\" used while already in use");
  }
  return Query(*this, cached->second.statement.get(), &cached->second.in_use);
}

base::Status Connection::Execute(const char* sql) {
  int code = sqlite3_exec(handle_, sql, nullptr, nullptr, nullptr);
  if (code != SQLITE_OK) return Error(code, std::string("running \"") + sql + "\"");
  return base::Status::Ok();
}

int64_t Connection::ChangedRows() const { return sqlite3_changes64(handle_); }

base::Status Connection::Error(int code, std::string_view doing) const {
  std::string detail = handle_ != nullptr ? sqlite3_errmsg(handle_) : sqlite3_errstr(code);
  std::string where = "database " + path();
  std::string context = " (" + detail + ", while " + std::string(doing) + ")";
  switch (code & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return base::Unavailable(where + " is busy: another writer held its lock longer than " +
                               std::to_string(settings_.busy_timeout.count()) + " ms" + context +
                               "; retry");
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return base::DataLoss(where + " is corrupt or not a SQLite database" + context +
                            "; restore it from a backup or move it aside to start empty");
    case SQLITE_FULL:
    case SQLITE_NOMEM:
      return base::ResourceExhausted(where + " ran out of space" + context);
    case SQLITE_PERM:
    case SQLITE_READONLY:
    case SQLITE_AUTH:
      return base::PermissionDenied(where + " cannot be written" + context +
                                    "; check the file's and its directory's permissions");
    case SQLITE_CANTOPEN:
    case SQLITE_IOERR: {
      int system_error = handle_ != nullptr ? sqlite3_system_errno(handle_) : 0;
      std::string os = system_error != 0 ? std::string(": ") + std::strerror(system_error) : "";
      return base::Unavailable(where + " cannot be read or written" + os + context);
    }
    case SQLITE_TOOBIG:
      return base::InvalidArgument(where + ": value too large" + context);
    default:
      return base::Internal(where + ": unexpected SQLite error" + context);
  }
}

// ---- Transaction ----

Transaction::Transaction(Connection& connection, ForkGuard guard)
    : connection_(&connection), guard_(std::move(guard)) {}

Transaction::Transaction(Transaction&& other) noexcept
    : connection_(other.connection_),
      guard_(std::move(other.guard_)),
      open_(std::exchange(other.open_, false)) {}

base::Result<Transaction> Transaction::Begin(Connection& connection, Mode mode) {
  ForkGuard guard;
  SC_RETURN_IF_ERROR(RunCached(connection, mode == Mode::kWrite ? "BEGIN IMMEDIATE" : "BEGIN"));
  return Transaction(connection, std::move(guard));
}

base::Status Transaction::Commit() {
  SC_RETURN_IF_ERROR(RunCached(*connection_, "COMMIT"));
  open_ = false;
  return base::Status::Ok();
}

Transaction::~Transaction() {
  // After some errors (disk full, I/O) SQLite has already rolled back; ROLLBACK then
  // fails harmlessly with "no transaction is active".
  if (open_) (void)RunCached(*connection_, "ROLLBACK");
}

}  // namespace supercluster::store::sqlite
