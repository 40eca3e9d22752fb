#include "store/sqlite_store.h"

#include <openssl/rand.h>
#include <sys/stat.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <atomic>
#include <climits>
#include <exception>
#include <filesystem>
#include <mutex>
#include <optional>
#include <set>
#include <string_view>
#include <thread>
#include <utility>

#include "store/sqlite_connection.h"
#include "store/sqlite_tables.h"
#include "store/sqlite_watch_hub.h"

namespace supercluster::store {
namespace {

using sqlite::Connection;
using sqlite::Transaction;
using sqlite::WatchHub;
using sqlite::WriteBatch;

// How much of the log the watch thread reads at a time, so that a watch far behind does
// not pull the whole log into memory at once.
constexpr int64_t kRevisionsPerBatch = 256;
constexpr size_t kBatchByteBudget = 16 << 20;
constexpr int kLeaseIdAttempts = 8;

int64_t WallClockMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Keys are bytes; error messages show them readable and short.
std::string Printable(std::string_view bytes) {
  constexpr size_t kShown = 64;
  std::string out;
  for (size_t i = 0; i < bytes.size() && i < kShown; ++i) {
    auto c = static_cast<unsigned char>(bytes[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out += static_cast<char>(c);
    } else {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    }
  }
  if (bytes.size() > kShown) out += "...";
  return out;
}

base::Status CheckKey(std::string_view key) {
  if (key.empty()) return base::InvalidArgument("key is empty");
  if (key.size() > SqliteStore::kMaxKeyBytes) {
    return base::InvalidArgument("key '" + Printable(key) + "' has " + std::to_string(key.size()) +
                                 " bytes; the limit is " +
                                 std::to_string(SqliteStore::kMaxKeyBytes));
  }
  return base::Status::Ok();
}

base::Status CheckPrefix(std::string_view prefix) {
  if (prefix.size() > SqliteStore::kMaxKeyBytes) {
    return base::InvalidArgument("prefix '" + Printable(prefix) + "' has " +
                                 std::to_string(prefix.size()) + " bytes; the limit is " +
                                 std::to_string(SqliteStore::kMaxKeyBytes));
  }
  return base::Status::Ok();
}

base::Status CheckValue(std::string_view key, std::string_view value) {
  if (value.size() > SqliteStore::kMaxValueBytes) {
    return base::InvalidArgument("value for key '" + Printable(key) + "' has " +
                                 std::to_string(value.size()) + " bytes; the limit is " +
                                 std::to_string(SqliteStore::kMaxValueBytes));
  }
  return base::Status::Ok();
}

base::Status CheckLeaseArgument(LeaseId lease) {
  if (lease < 0) return base::InvalidArgument("lease id " + std::to_string(lease) + " is negative");
  return base::Status::Ok();
}

base::Status CheckOperations(const std::vector<Operation>& operations, const char* branch) {
  if (operations.size() > SqliteStore::kMaxTxnOperations) {
    return base::InvalidArgument("transaction has " + std::to_string(operations.size()) + " '" +
                                 branch + "' operations; the limit is " +
                                 std::to_string(SqliteStore::kMaxTxnOperations));
  }
  // One change per key per revision, as etcd requires: the change log and watch events
  // then say unambiguously what each key became.
  std::set<std::string_view> keys;
  for (const Operation& operation : operations) {
    SC_RETURN_IF_ERROR(CheckKey(operation.key));
    if (operation.kind == Operation::Kind::kPut) {
      SC_RETURN_IF_ERROR(CheckValue(operation.key, operation.value));
      SC_RETURN_IF_ERROR(CheckLeaseArgument(operation.lease));
    }
    if (!keys.insert(operation.key).second) {
      return base::InvalidArgument("transaction writes key '" + Printable(operation.key) +
                                   "' twice in its '" + branch + "' operations");
    }
  }
  return base::Status::Ok();
}

base::Status CheckCompares(const std::vector<Compare>& compares) {
  if (compares.size() > SqliteStore::kMaxTxnOperations) {
    return base::InvalidArgument("transaction has " + std::to_string(compares.size()) +
                                 " compares; the limit is " +
                                 std::to_string(SqliteStore::kMaxTxnOperations));
  }
  for (const Compare& compare : compares) {
    SC_RETURN_IF_ERROR(CheckKey(compare.key));
    if (compare.kind == Compare::Kind::kValueEquals) {
      SC_RETURN_IF_ERROR(CheckValue(compare.key, compare.value));
    }
  }
  return base::Status::Ok();
}

base::Status CheckOptions(const SqliteStoreOptions& options) {
  if (options.path.empty()) return base::InvalidArgument("store database path is empty");
  std::string where = "store database " + options.path + ": ";
  if (options.busy_timeout.count() < 0 || options.busy_timeout.count() > INT_MAX) {
    return base::InvalidArgument(where + "busy timeout must be 0 to " + std::to_string(INT_MAX) +
                                 " ms");
  }
  if (options.watch_poll_interval.count() <= 0 || options.lease_sweep_interval.count() <= 0) {
    return base::InvalidArgument(where + "watch poll and lease sweep intervals must be positive");
  }
  if (options.change_log_retention < 1) {
    return base::InvalidArgument(where + "change log retention must be at least 1 revision");
  }
  std::filesystem::path directory = std::filesystem::path(options.path).parent_path();
  std::error_code error;
  if (!directory.empty() && !std::filesystem::is_directory(directory, error)) {
    return base::InvalidArgument(where + "directory " + directory.string() + " does not exist");
  }
  return base::Status::Ok();
}

bool Holds(const Compare& compare, const std::optional<KeyValue>& kv) {
  switch (compare.kind) {
    case Compare::Kind::kExists:
      return kv.has_value();
    case Compare::Kind::kMissing:
      return !kv.has_value();
    case Compare::Kind::kValueEquals:
      return kv.has_value() && kv->value == compare.value;
    case Compare::Kind::kModRevisionEquals:
      return (kv ? kv->mod_revision : 0) == compare.revision;
  }
  return false;
}

base::Result<bool> AllHold(Connection& connection, const std::vector<Compare>& compares) {
  for (const Compare& compare : compares) {
    SC_ASSIGN_OR_RETURN(std::optional<KeyValue> kv, sqlite::ReadKey(connection, compare.key));
    if (!Holds(compare, kv)) return false;
  }
  return true;
}

base::Status LeaseNotFound(LeaseId lease) {
  return base::NotFound("lease " + std::to_string(lease) +
                        " not found: it expired, was revoked or never existed");
}

// A lease counts as gone once its time is up, even before a sweep deletes it.
base::Status CheckLeaseLive(Connection& connection, LeaseId lease, int64_t now_ms) {
  SC_ASSIGN_OR_RETURN(std::optional<sqlite::LeaseRow> row, sqlite::ReadLease(connection, lease));
  if (!row || row->expires_at_ms <= now_ms) return LeaseNotFound(lease);
  return base::Status::Ok();
}

base::Status CheckLeasesLive(Connection& connection, const std::vector<Operation>& operations) {
  int64_t now_ms = WallClockMs();
  for (const Operation& operation : operations) {
    if (operation.kind == Operation::Kind::kPut && operation.lease != 0) {
      SC_RETURN_IF_ERROR(CheckLeaseLive(connection, operation.lease, now_ms));
    }
  }
  return base::Status::Ok();
}

// Applies `operations`; returns how many keys they deleted.
base::Result<int64_t> Apply(WriteBatch& batch, const std::vector<Operation>& operations) {
  int64_t deleted = 0;
  for (const Operation& operation : operations) {
    if (operation.kind == Operation::Kind::kPut) {
      SC_RETURN_IF_ERROR(batch.Put(operation.key, operation.value, operation.lease));
    } else {
      SC_ASSIGN_OR_RETURN(bool existed, batch.Delete(operation.key));
      if (existed) ++deleted;
    }
  }
  return deleted;
}

// Random so that processes sharing the file never hand out the same id; positive
// because 0 means "no lease" and etcd's ids are positive too.
base::Result<LeaseId> RandomLeaseId() {
  uint64_t bits = 0;
  if (RAND_bytes(reinterpret_cast<unsigned char*>(&bits), sizeof bits) != 1) {
    return base::Internal("OpenSSL's random generator failed while choosing a lease id");
  }
  return static_cast<LeaseId>(bits >> 1);
}

}  // namespace

class SqliteStore::Impl {
 public:
  Impl(SqliteStoreOptions options, std::unique_ptr<Connection> api,
       std::unique_ptr<Connection> background)
      : options_(std::move(options)),
        api_(std::move(api)),
        background_(std::move(background)),
        hub_(std::make_shared<WatchHub>()) {}

  ~Impl() {
    hub_->Stop();
    if (thread_.joinable()) thread_.join();
  }

  void Start() {
    opened_file_ = IdentityOf(options_.path);
    thread_ = std::thread([this] { Run(); });
  }

  struct WriteOutcome {
    bool succeeded = false;
    bool changed = false;
    int64_t revision = 0;
    int64_t deleted = 0;
  };
  base::Result<WriteOutcome> Write(const std::vector<Compare>& compares,
                                   const std::vector<Operation>& then_ops,
                                   const std::vector<Operation>& else_ops);

  base::Result<std::optional<KeyValue>> Get(const std::string& key);
  base::Result<RangeResult> Range(const std::string& prefix, const RangeOptions& options);
  base::Result<LeaseId> GrantLease(std::chrono::seconds ttl);
  base::Status KeepAlive(LeaseId lease);
  base::Status RevokeLease(LeaseId lease);
  base::Result<std::unique_ptr<Watch>> WatchPrefix(const std::string& prefix, int64_t from_revision,
                                                   WatchCallback callback);

 private:
  struct PollBatch {
    WatchHub::Batch batch;
    bool more = false;  // the log holds revisions past the batch
  };

  // Which file a path names: device and inode (none when it names no file).
  struct FileIdentity {
    dev_t device = 0;
    ino_t inode = 0;
    bool operator==(const FileIdentity&) const = default;
  };
  static std::optional<FileIdentity> IdentityOf(const std::string& path);

  void Run();
  void RunOnce(std::chrono::steady_clock::time_point& next_sweep);
  // kFailedPrecondition once the store's path no longer names the file it opened.
  base::Status CheckFileStillThere() const;
  void PollWatches();
  base::Result<std::optional<PollBatch>> ReadBatch(int64_t oldest_needed);
  void ReportPollError(const base::Status& status);
  void SweepLeases();
  base::Status SweepExpiredLeases();

  const SqliteStoreOptions options_;
  std::mutex api_mutex_;  // one caller at a time on api_
  std::unique_ptr<Connection> api_;
  std::unique_ptr<Connection> background_;  // used only by thread_
  std::shared_ptr<WatchHub> hub_;
  std::thread thread_;
  std::optional<FileIdentity> opened_file_;  // set by Start, before thread_ runs
  // Set once CheckFileStillThere fails: from then on every call fails with its message, so
  // that a cache on top (PrefixCache) backs off and reports itself stale instead of reading
  // the old file again and again. The message is written once, before the flag.
  std::atomic<bool> file_lost_{false};
  std::string file_lost_message_;
  base::Status FileLost() const {
    if (!file_lost_.load(std::memory_order_acquire)) return base::Status::Ok();
    return base::FailedPrecondition(file_lost_message_);
  }
  bool poll_failing_ = false;   // thread_ only: log a failure once, not every poll
  bool sweep_failing_ = false;  // thread_ only
};

// ---- writes and reads (callers' threads) ----

base::Result<SqliteStore::Impl::WriteOutcome> SqliteStore::Impl::Write(
    const std::vector<Compare>& compares, const std::vector<Operation>& then_ops,
    const std::vector<Operation>& else_ops) {
  SC_RETURN_IF_ERROR(FileLost());
  SC_RETURN_IF_ERROR(CheckCompares(compares));
  SC_RETURN_IF_ERROR(CheckOperations(then_ops, "then"));
  SC_RETURN_IF_ERROR(CheckOperations(else_ops, "else"));
  WriteOutcome outcome;
  {
    std::lock_guard<std::mutex> lock(api_mutex_);
    SC_ASSIGN_OR_RETURN(Transaction transaction,
                        Transaction::Begin(*api_, Transaction::Mode::kWrite));
    SC_ASSIGN_OR_RETURN(WriteBatch batch, WriteBatch::Start(*api_, options_.change_log_retention));
    SC_ASSIGN_OR_RETURN(outcome.succeeded, AllHold(*api_, compares));
    const std::vector<Operation>& operations = outcome.succeeded ? then_ops : else_ops;
    SC_RETURN_IF_ERROR(CheckLeasesLive(*api_, operations));
    SC_ASSIGN_OR_RETURN(outcome.deleted, Apply(batch, operations));
    SC_ASSIGN_OR_RETURN(outcome.revision, batch.Finish());
    SC_RETURN_IF_ERROR(transaction.Commit());
    outcome.changed = batch.changed();
  }
  if (outcome.changed) hub_->Wake();
  return outcome;
}

base::Result<std::optional<KeyValue>> SqliteStore::Impl::Get(const std::string& key) {
  SC_RETURN_IF_ERROR(FileLost());
  SC_RETURN_IF_ERROR(CheckKey(key));
  std::lock_guard<std::mutex> lock(api_mutex_);
  SC_ASSIGN_OR_RETURN(Transaction transaction, Transaction::Begin(*api_, Transaction::Mode::kRead));
  SC_ASSIGN_OR_RETURN(std::optional<KeyValue> kv, sqlite::ReadKey(*api_, key));
  SC_RETURN_IF_ERROR(transaction.Commit());
  return kv;
}

base::Result<RangeResult> SqliteStore::Impl::Range(const std::string& prefix,
                                                   const RangeOptions& options) {
  SC_RETURN_IF_ERROR(FileLost());
  SC_RETURN_IF_ERROR(CheckPrefix(prefix));
  if (options.limit < 0) return base::InvalidArgument("range limit is negative");
  if (options.revision < 0) return base::InvalidArgument("range revision is negative");
  std::lock_guard<std::mutex> lock(api_mutex_);
  SC_ASSIGN_OR_RETURN(Transaction transaction, Transaction::Begin(*api_, Transaction::Mode::kRead));
  SC_ASSIGN_OR_RETURN(sqlite::Revisions revisions, sqlite::ReadRevisions(*api_));
  int64_t revision = options.revision == 0 ? revisions.current : options.revision;
  if (revision > revisions.current) {
    return base::InvalidArgument("revision " + std::to_string(revision) +
                                 " is in the future; the store is at revision " +
                                 std::to_string(revisions.current));
  }
  if (revision < revisions.compacted) {
    return base::DataLoss("revision " + std::to_string(revision) +
                          " was compacted; oldest kept is " + std::to_string(revisions.compacted));
  }
  SC_ASSIGN_OR_RETURN(RangeResult result,
                      sqlite::ReadRange(*api_, prefix, options.limit, revision, revisions));
  SC_RETURN_IF_ERROR(transaction.Commit());
  return result;
}

base::Result<LeaseId> SqliteStore::Impl::GrantLease(std::chrono::seconds ttl) {
  SC_RETURN_IF_ERROR(FileLost());
  if (ttl.count() < 1 || ttl.count() > kMaxLeaseTtlSeconds) {
    return base::InvalidArgument("lease TTL of " + std::to_string(ttl.count()) +
                                 " s is outside 1 to " + std::to_string(kMaxLeaseTtlSeconds));
  }
  std::lock_guard<std::mutex> lock(api_mutex_);
  SC_ASSIGN_OR_RETURN(Transaction transaction,
                      Transaction::Begin(*api_, Transaction::Mode::kWrite));
  sqlite::LeaseRow row{ttl.count(), WallClockMs() + ttl.count() * 1000};
  for (int attempt = 0; attempt < kLeaseIdAttempts; ++attempt) {
    SC_ASSIGN_OR_RETURN(LeaseId lease, RandomLeaseId());
    if (lease == 0) continue;
    SC_ASSIGN_OR_RETURN(bool inserted, sqlite::InsertLease(*api_, lease, row));
    if (!inserted) continue;  // taken; 2^63 ids make a second collision unheard of
    SC_RETURN_IF_ERROR(transaction.Commit());
    return lease;
  }
  return base::Internal("database " + options_.path + ": no free lease id after " +
                        std::to_string(kLeaseIdAttempts) + " random tries");
}

base::Status SqliteStore::Impl::KeepAlive(LeaseId lease) {
  SC_RETURN_IF_ERROR(FileLost());
  std::lock_guard<std::mutex> lock(api_mutex_);
  SC_ASSIGN_OR_RETURN(Transaction transaction,
                      Transaction::Begin(*api_, Transaction::Mode::kWrite));
  SC_ASSIGN_OR_RETURN(std::optional<sqlite::LeaseRow> row, sqlite::ReadLease(*api_, lease));
  int64_t now_ms = WallClockMs();
  if (!row || row->expires_at_ms <= now_ms) return LeaseNotFound(lease);
  SC_RETURN_IF_ERROR(sqlite::SetLeaseExpiry(*api_, lease, now_ms + row->ttl_seconds * 1000));
  return transaction.Commit();
}

base::Status SqliteStore::Impl::RevokeLease(LeaseId lease) {
  SC_RETURN_IF_ERROR(FileLost());
  bool changed = false;
  {
    std::lock_guard<std::mutex> lock(api_mutex_);
    SC_ASSIGN_OR_RETURN(Transaction transaction,
                        Transaction::Begin(*api_, Transaction::Mode::kWrite));
    SC_ASSIGN_OR_RETURN(std::optional<sqlite::LeaseRow> row, sqlite::ReadLease(*api_, lease));
    if (!row) return LeaseNotFound(lease);
    SC_ASSIGN_OR_RETURN(WriteBatch batch, WriteBatch::Start(*api_, options_.change_log_retention));
    SC_RETURN_IF_ERROR(batch.DeleteKeysOf(lease));
    SC_RETURN_IF_ERROR(sqlite::DeleteLease(*api_, lease));
    SC_RETURN_IF_ERROR(batch.Finish().status());
    SC_RETURN_IF_ERROR(transaction.Commit());
    changed = batch.changed();
  }
  if (changed) hub_->Wake();
  return base::Status::Ok();
}

base::Result<std::unique_ptr<Watch>> SqliteStore::Impl::WatchPrefix(const std::string& prefix,
                                                                    int64_t from_revision,
                                                                    WatchCallback callback) {
  SC_RETURN_IF_ERROR(FileLost());
  SC_RETURN_IF_ERROR(CheckPrefix(prefix));
  if (from_revision < 0) return base::InvalidArgument("watch start revision is negative");
  if (!callback) return base::InvalidArgument("watch callback is empty");
  int64_t next_revision = from_revision;
  if (from_revision == 0) {
    std::lock_guard<std::mutex> lock(api_mutex_);
    SC_ASSIGN_OR_RETURN(Transaction transaction,
                        Transaction::Begin(*api_, Transaction::Mode::kRead));
    SC_ASSIGN_OR_RETURN(sqlite::Revisions revisions, sqlite::ReadRevisions(*api_));
    SC_RETURN_IF_ERROR(transaction.Commit());
    next_revision = revisions.current + 1;
  }
  return hub_->Add(prefix, next_revision, std::move(callback));
}

// ---- the background thread: watch delivery and lease expiry ----

void SqliteStore::Impl::Run() {
  hub_->SetDeliveryThread(std::this_thread::get_id());
  auto next_sweep = std::chrono::steady_clock::now();
  while (!hub_->stopping()) {
    // An escaping exception (out of memory) would end the process; this thread's work is
    // worth retrying instead.
    try {
      RunOnce(next_sweep);
    } catch (const std::exception& error) {
      spdlog::error("store {}: background thread: {}", options_.path, error.what());
    }
  }
}

void SqliteStore::Impl::RunOnce(std::chrono::steady_clock::time_point& next_sweep) {
  // Polls only while someone watches; the sweep runs regardless, because leases granted
  // by other (perhaps dead) processes must expire whether or not anyone here watches.
  auto deadline = next_sweep;
  if (hub_->OldestNeeded()) {
    deadline = std::min(deadline, std::chrono::steady_clock::now() + options_.watch_poll_interval);
  }
  if (!hub_->WaitForWake(deadline)) return;
  if (std::chrono::steady_clock::now() >= next_sweep) {
    SweepLeases();
    next_sweep = std::chrono::steady_clock::now() + options_.lease_sweep_interval;
  }
  PollWatches();
}

std::optional<SqliteStore::Impl::FileIdentity> SqliteStore::Impl::IdentityOf(
    const std::string& path) {
  struct stat status {};
  if (::stat(path.c_str(), &status) != 0) return std::nullopt;
  return FileIdentity{status.st_dev, status.st_ino};
}

// A store file deleted or replaced under a running process (rm, mv, a restore from backup)
// leaves its open connections on the old file: writes from elsewhere go to the new one, and
// watches here would wait for them in silence. One stat per poll tells.
base::Status SqliteStore::Impl::CheckFileStillThere() const {
  if (!opened_file_) return base::Status::Ok();  // it could not be told at the start either
  std::optional<FileIdentity> now = IdentityOf(options_.path);
  // Only a path that names nothing is "removed"; a stat that fails otherwise (EACCES, EIO)
  // tells nothing.
  if (!now && errno != ENOENT && errno != ENOTDIR) return base::Status::Ok();
  if (now == opened_file_) return base::Status::Ok();
  return base::FailedPrecondition("store " + options_.path +
                                  (now ? " was replaced by another file"
                                       : " was removed") +
                                  " while open; this process still reads the old one: "
                                  "restart it");
}

void SqliteStore::Impl::PollWatches() {
  if (!hub_->OldestNeeded()) return;
  if (base::Status lost = FileLost(); !lost.ok()) return hub_->EndAll(lost);
  if (base::Status file = CheckFileStillThere(); !file.ok()) {
    spdlog::error("{}", file.message());  // once: every call fails with it from now on
    file_lost_message_ = file.message();
    file_lost_.store(true, std::memory_order_release);
    hub_->EndAll(file);
    return;
  }
  while (!hub_->stopping()) {
    std::optional<int64_t> oldest_needed = hub_->OldestNeeded();
    if (!oldest_needed) return;
    base::Result<std::optional<PollBatch>> read = ReadBatch(*oldest_needed);
    if (!read.ok()) {
      ReportPollError(read.status());
      return;
    }
    poll_failing_ = false;
    if (!read->has_value()) return;  // nothing new
    hub_->Deliver((*read)->batch);
    if (!(*read)->more) return;
  }
}

base::Result<std::optional<SqliteStore::Impl::PollBatch>> SqliteStore::Impl::ReadBatch(
    int64_t oldest_needed) {
  // One read transaction, so the revisions and the log rows come from one snapshot: every
  // revision up to `current` is committed and no smaller one can appear later.
  SC_ASSIGN_OR_RETURN(Transaction transaction,
                      Transaction::Begin(*background_, Transaction::Mode::kRead));
  SC_ASSIGN_OR_RETURN(sqlite::Revisions revisions, sqlite::ReadRevisions(*background_));
  if (revisions.current < oldest_needed) return std::optional<PollBatch>();
  PollBatch poll;
  poll.batch.compacted = revisions.compacted;
  poll.batch.first = std::max(oldest_needed, revisions.compacted + 1);
  int64_t last = std::min(revisions.current, poll.batch.first + kRevisionsPerBatch - 1);
  SC_ASSIGN_OR_RETURN(sqlite::LoggedChanges read,
                      sqlite::ReadChanges(*background_, poll.batch.first, last, kBatchByteBudget));
  SC_RETURN_IF_ERROR(transaction.Commit());
  poll.batch.changes = std::move(read.changes);
  poll.batch.last = read.last;
  poll.more = poll.batch.last < revisions.current;
  return std::optional<PollBatch>(std::move(poll));
}

void SqliteStore::Impl::ReportPollError(const base::Status& status) {
  bool transient = status.code() == base::StatusCode::kUnavailable ||
                   status.code() == base::StatusCode::kResourceExhausted;
  if (transient) {
    // Watches resume where they were at the next poll that succeeds.
    if (!poll_failing_) spdlog::warn("store watches paused: {}", status.ToString());
    poll_failing_ = true;
    return;
  }
  spdlog::error("store watches ended: {}", status.ToString());
  hub_->EndAll(status);
}

void SqliteStore::Impl::SweepLeases() {
  base::Status status = SweepExpiredLeases();
  if (status.ok()) {
    sweep_failing_ = false;
    return;
  }
  if (!sweep_failing_) spdlog::warn("store lease sweep failed: {}", status.ToString());
  sweep_failing_ = true;
}

base::Status SqliteStore::Impl::SweepExpiredLeases() {
  int64_t now_ms = WallClockMs();
  {
    // Looking first under a read transaction keeps the common case (nothing expired) off
    // the write lock that every process's writers share.
    SC_ASSIGN_OR_RETURN(Transaction look,
                        Transaction::Begin(*background_, Transaction::Mode::kRead));
    SC_ASSIGN_OR_RETURN(std::vector<LeaseId> expired, sqlite::ExpiredLeases(*background_, now_ms));
    if (expired.empty()) return base::Status::Ok();
  }
  SC_ASSIGN_OR_RETURN(Transaction transaction,
                      Transaction::Begin(*background_, Transaction::Mode::kWrite));
  // Read again under the write lock: another process may have swept them meanwhile.
  SC_ASSIGN_OR_RETURN(std::vector<LeaseId> expired, sqlite::ExpiredLeases(*background_, now_ms));
  SC_ASSIGN_OR_RETURN(WriteBatch batch,
                      WriteBatch::Start(*background_, options_.change_log_retention));
  for (LeaseId lease : expired) {
    SC_RETURN_IF_ERROR(batch.DeleteKeysOf(lease));
    SC_RETURN_IF_ERROR(sqlite::DeleteLease(*background_, lease));
  }
  SC_RETURN_IF_ERROR(batch.Finish().status());
  return transaction.Commit();
}

// ---- SqliteStore ----

SqliteStore::SqliteStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

SqliteStore::~SqliteStore() = default;

base::Result<std::unique_ptr<SqliteStore>> SqliteStore::Open(const SqliteStoreOptions& options) {
  SC_RETURN_IF_ERROR(CheckOptions(options));
  Connection::Settings settings{options.path, options.busy_timeout, options.durable_commits};
  SC_ASSIGN_OR_RETURN(std::unique_ptr<Connection> api, Connection::Open(settings));
  SC_RETURN_IF_ERROR(sqlite::PrepareSchema(*api));
  SC_ASSIGN_OR_RETURN(std::unique_ptr<Connection> background, Connection::Open(settings));
  auto impl = std::make_unique<Impl>(options, std::move(api), std::move(background));
  impl->Start();
  return std::unique_ptr<SqliteStore>(new SqliteStore(std::move(impl)));
}

base::Result<std::optional<KeyValue>> SqliteStore::Get(const std::string& key) {
  return impl_->Get(key);
}

base::Result<RangeResult> SqliteStore::Range(const std::string& prefix,
                                             const RangeOptions& options) {
  return impl_->Range(prefix, options);
}

base::Result<int64_t> SqliteStore::Put(const std::string& key, const std::string& value,
                                       LeaseId lease) {
  Operation put{Operation::Kind::kPut, key, value, lease};
  SC_ASSIGN_OR_RETURN(Impl::WriteOutcome outcome, impl_->Write({}, {put}, {}));
  return outcome.revision;
}

base::Result<int64_t> SqliteStore::Delete(const std::string& key) {
  Operation del{Operation::Kind::kDelete, key, "", 0};
  SC_ASSIGN_OR_RETURN(Impl::WriteOutcome outcome, impl_->Write({}, {del}, {}));
  return outcome.deleted;
}

base::Result<TxnResult> SqliteStore::Txn(const std::vector<Compare>& compares,
                                         const std::vector<Operation>& then_ops,
                                         const std::vector<Operation>& else_ops) {
  SC_ASSIGN_OR_RETURN(Impl::WriteOutcome outcome, impl_->Write(compares, then_ops, else_ops));
  return TxnResult{outcome.succeeded, outcome.revision};
}

base::Result<LeaseId> SqliteStore::GrantLease(std::chrono::seconds ttl) {
  return impl_->GrantLease(ttl);
}

base::Status SqliteStore::KeepAlive(LeaseId lease) { return impl_->KeepAlive(lease); }

base::Status SqliteStore::RevokeLease(LeaseId lease) { return impl_->RevokeLease(lease); }

base::Result<std::unique_ptr<Watch>> SqliteStore::WatchPrefix(const std::string& prefix,
                                                              int64_t from_revision,
                                                              WatchCallback callback) {
  return impl_->WatchPrefix(prefix, from_revision, std::move(callback));
}

}  // namespace supercluster::store
