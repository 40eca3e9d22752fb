// Tests of SqliteStore: the shared conformance suite (store_conformance_test.cc) run
// against it, and what only the SQLite backend promises: processes sharing one file lose
// no update, a writer SIGKILLed mid-transaction leaves a consistent file, a dead process's
// lease still expires, history reads and its compaction, and hostile input (odd keys,
// oversized values, files that are not a store).
//
// Child processes are fork()ed; they never return into gtest but _exit() with 0 for
// success. The parent keeps a store on the file open while children run (see the fork
// note in sqlite_store.h).
#include "store/sqlite_store.h"
#include "store/watch_recorder.h"

#include <poll.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <thread>
#include <utility>

#include "store/store_test_backend.h"

namespace supercluster::store {
namespace {

using namespace std::chrono_literals;

// A fresh directory, removed with everything in it when the object goes.
class TempDir {
 public:
  TempDir() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "sqlite-store-test-XXXXXX").string();
    if (mkdtemp(pattern.data()) != nullptr) path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    if (!path_.empty()) std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Short intervals keep the tests quick; the rest are the defaults.
SqliteStoreOptions TestOptions(const std::string& path) {
  SqliteStoreOptions options;
  options.path = path;
  options.watch_poll_interval = 10ms;
  options.lease_sweep_interval = 50ms;
  return options;
}

}  // namespace

namespace testing {

class SqliteTestBackend : public StoreTestBackend {
 public:
  std::string Name() const override { return "sqlite"; }
  void SetUp() override { directory_ = std::make_unique<TempDir>(); }
  void TearDown() override { directory_.reset(); }
  std::unique_ptr<Store> Open() override {
    auto store = SqliteStore::Open(TestOptions(directory_->path() + "/store.db"));
    if (!store.ok()) {
      ADD_FAILURE() << store.status().ToString();
      return nullptr;
    }
    return std::move(store).value();
  }

 private:
  std::unique_ptr<TempDir> directory_;
};

INSTANTIATE_TEST_SUITE_P(Sqlite, StoreConformanceTest,
                         ::testing::Values(std::make_shared<SqliteTestBackend>()), BackendName);

}  // namespace testing

namespace {


// Polls `condition` until it holds or `timeout` passes.
template <class Condition>
bool Eventually(Condition condition, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

// A child process, forked at once but held until Start(): then it runs `body` and exits 0
// when that returned true. It never returns into gtest.
//
// Create children before the test starts any thread (a store and its watch). fork()
// copies only the calling thread; a lock another thread held at that moment (SQLite's,
// or the allocator's under ASan, whose clang 14 runtime does not take its locks around
// fork) stays locked in the child for ever. make asan once saw a child hang so for 30 s.
// Held, the child has nothing to wait for but its start signal; a parent that goes away
// closes the pipe, and the child exits without running `body`.
class HeldChild {
 public:
  template <class Body>
  explicit HeldChild(Body body) {
    int gate[2];
    if (pipe(gate) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      close(gate[1]);
      char go = 0;
      bool ok = false;
      if (read(gate[0], &go, 1) == 1) {
        try {
          ok = body();
        } catch (...) {
          ok = false;
        }
      }
      _exit(ok ? 0 : 1);
    }
    close(gate[0]);
    gate_ = gate[1];
  }
  ~HeldChild() { CloseGate(); }
  HeldChild(HeldChild&& other) noexcept
      : pid_(std::exchange(other.pid_, -1)), gate_(std::exchange(other.gate_, -1)) {}
  HeldChild(const HeldChild&) = delete;
  HeldChild& operator=(const HeldChild&) = delete;
  HeldChild& operator=(HeldChild&&) = delete;

  pid_t pid() const { return pid_; }  // -1 when fork() failed
  void Start() {
    const char go = 1;
    if (gate_ >= 0 && write(gate_, &go, 1) != 1) ADD_FAILURE() << "could not start the child";
    CloseGate();
  }

 private:
  void CloseGate() {
    if (gate_ >= 0) close(gate_);
    gate_ = -1;
  }

  pid_t pid_ = -1;
  int gate_ = -1;
};

// The child's exit code, or -1 if it had to be killed after `timeout` (or died of a signal).
int WaitForChild(pid_t pid, std::chrono::milliseconds timeout) {
  int status = 0;
  bool exited = Eventually([&] { return waitpid(pid, &status, WNOHANG) == pid; }, timeout);
  if (!exited) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return -1;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

void KillChild(pid_t pid) {
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
}

// PRAGMA integrity_check through a connection of its own; "ok" for a sound file.
std::string IntegrityCheck(const std::string& path) {
  sqlite3* db = nullptr;
  std::string result = "cannot open";
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) == SQLITE_OK) {
    sqlite3_stmt* statement = nullptr;
    if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &statement, nullptr) == SQLITE_OK &&
        sqlite3_step(statement) == SQLITE_ROW) {
      result = reinterpret_cast<const char*>(sqlite3_column_text(statement, 0));
    } else {
      result = sqlite3_errmsg(db);
    }
    sqlite3_finalize(statement);
  }
  sqlite3_close(db);
  return result;
}

Operation PutOp(std::string key, std::string value, LeaseId lease = 0) {
  return Operation{Operation::Kind::kPut, std::move(key), std::move(value), lease};
}

Operation DeleteOp(std::string key) {
  return Operation{Operation::Kind::kDelete, std::move(key), "", 0};
}

class SqliteStoreTest : public ::testing::Test {
 protected:
  std::string DatabasePath() const { return directory_.path() + "/store.db"; }

  std::unique_ptr<SqliteStore> OpenStore(const SqliteStoreOptions& options) {
    auto store = SqliteStore::Open(options);
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    return store.ok() ? std::move(store).value() : nullptr;
  }
  std::unique_ptr<SqliteStore> OpenStore() { return OpenStore(TestOptions(DatabasePath())); }

  int64_t CurrentRevision(Store& store) {
    auto range = store.Range("", {.limit = 1});
    EXPECT_TRUE(range.ok()) << range.status().ToString();
    return range.ok() ? range->revision : -1;
  }

  TempDir directory_;
};

// Each process increments one counter by compare-and-swap; the file serialises them.
TEST_F(SqliteStoreTest, ProcessesIncrementingByCasLoseNoUpdate) {
  constexpr int kProcesses = 4;
  constexpr int kIncrements = 30;
  constexpr int kTotal = kProcesses * kIncrements;
  std::vector<HeldChild> children;
  for (int p = 0; p < kProcesses; ++p) {
    children.emplace_back([this] {
      auto child_store = SqliteStore::Open(TestOptions(DatabasePath()));
      if (!child_store.ok()) return false;
      SqliteStore& client = **child_store;
      for (int done = 0; done < kIncrements;) {
        auto current = client.Get("counter");
        if (!current.ok() || !current->has_value()) return false;
        auto swapped = client.Txn(
            {{Compare::Kind::kModRevisionEquals, "counter", "", (*current)->mod_revision}},
            {PutOp("counter", std::to_string(std::stoi((*current)->value) + 1))});
        if (!swapped.ok()) return false;
        if (swapped->succeeded) ++done;
      }
      return true;
    });
    ASSERT_GT(children.back().pid(), 0);
  }
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  auto start = store->Put("counter", "0");
  ASSERT_TRUE(start.ok());
  testing::WatchRecorder recorder;
  auto watch = store->WatchPrefix("counter", *start + 1, recorder.Callback());
  ASSERT_TRUE(watch.ok());
  for (HeldChild& child : children) child.Start();
  for (HeldChild& child : children) EXPECT_EQ(WaitForChild(child.pid(), 60s), 0);

  auto counter = store->Get("counter");
  ASSERT_TRUE(counter.ok() && counter->has_value());
  EXPECT_EQ((*counter)->value, std::to_string(kTotal));
  EXPECT_EQ((*counter)->version, 1 + kTotal);
  // Successful swaps bumped the revision once each; failed ones not at all.
  EXPECT_EQ((*counter)->mod_revision, *start + kTotal);
  EXPECT_EQ(CurrentRevision(*store), *start + kTotal);
  // The log shows the counter going up by one at every revision, none skipped.
  ASSERT_TRUE(recorder.WaitForEvents(kTotal));
  int expected = 1;
  for (const auto& batch : recorder.Batches()) {
    ASSERT_EQ(batch.size(), 1u);
    EXPECT_EQ(batch[0].kv.value, std::to_string(expected));
    EXPECT_EQ(batch[0].kv.mod_revision, *start + expected);
    ++expected;
  }
  EXPECT_EQ(expected, kTotal + 1);
}

// A child writes x/1..x/5 with one value per transaction and is SIGKILLed at a random
// moment, several times. Each time the file must be sound and the five keys equal.
TEST_F(SqliteStoreTest, WriterKilledMidTransactionLeavesConsistentDatabase) {
  constexpr int kRounds = 6;
  constexpr int kKeys = 5;
  const unsigned seed = std::random_device()();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 random(seed);
  std::vector<HeldChild> children;  // one per round, each started in its round
  for (int round = 0; round < kRounds; ++round) {
    children.emplace_back([this, round] {
      auto child_store = SqliteStore::Open(TestOptions(DatabasePath()));
      if (!child_store.ok()) return false;
      // Large values make each commit long, so the kill usually lands inside one. The
      // deadline ends the child should the parent die first.
      std::string padding(64 * 1024, static_cast<char>('a' + round));
      auto give_up = std::chrono::steady_clock::now() + 30s;
      for (int i = 0; std::chrono::steady_clock::now() < give_up; ++i) {
        std::string value = std::to_string(round) + "." + std::to_string(i) + padding;
        std::vector<Operation> puts;
        for (int k = 1; k <= kKeys; ++k) puts.push_back(PutOp("x/" + std::to_string(k), value));
        if (!(*child_store)->Txn({}, puts).ok()) return false;
      }
      return true;
    });
    ASSERT_GT(children.back().pid(), 0);
  }
  auto store = OpenStore();  // also keeps the file open across the children (see header)
  ASSERT_NE(store, nullptr);
  testing::WatchRecorder recorder;
  auto watch = store->WatchPrefix("x/", CurrentRevision(*store) + 1, recorder.Callback());
  ASSERT_TRUE(watch.ok());

  for (int round = 0; round < kRounds; ++round) {
    int64_t before = CurrentRevision(*store);
    children[round].Start();
    ASSERT_TRUE(Eventually([&] { return CurrentRevision(*store) > before; }, 10s))
        << "round " << round << ": the child never committed";
    std::this_thread::sleep_for(std::chrono::milliseconds(random() % 40));
    KillChild(children[round].pid());

    ASSERT_EQ(IntegrityCheck(DatabasePath()), "ok") << "round " << round;
    auto reopened = OpenStore();
    ASSERT_NE(reopened, nullptr);
    auto keys = reopened->Range("x/");
    ASSERT_TRUE(keys.ok()) << keys.status().ToString();
    ASSERT_EQ(keys->kvs.size(), static_cast<size_t>(kKeys));
    for (const KeyValue& kv : keys->kvs) {
      EXPECT_EQ(kv.value, keys->kvs[0].value) << "round " << round << ": " << kv.key;
      EXPECT_EQ(kv.mod_revision, keys->kvs[0].mod_revision);
    }
  }

  // Every committed transaction reached the watch whole: five events at one revision.
  int64_t final_revision = CurrentRevision(*store);
  ASSERT_TRUE(Eventually(
      [&] {
        auto batches = recorder.Batches();
        return !batches.empty() && batches.back()[0].kv.mod_revision == final_revision;
      },
      10s));
  int64_t previous = 0;
  for (const auto& batch : recorder.Batches()) {
    ASSERT_EQ(batch.size(), static_cast<size_t>(kKeys));
    for (const WatchEvent& event : batch) {
      EXPECT_EQ(event.kv.value, batch[0].kv.value);
      EXPECT_EQ(event.kv.mod_revision, batch[0].kv.mod_revision);
    }
    if (previous != 0) {
      EXPECT_EQ(batch[0].kv.mod_revision, previous + 1);
    }
    previous = batch[0].kv.mod_revision;
  }
  EXPECT_TRUE(recorder.Errors().empty());
}

// The lease's keys go when its TTL runs out although the process that granted it is dead;
// the parent's store sweeps it, and its watch sees both deletes in one revision.
TEST_F(SqliteStoreTest, LeaseOfKilledProcessExpiresAndItsKeysVanish) {
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  HeldChild held([&] {
    close(ready[0]);
    auto child_store = SqliteStore::Open(TestOptions(DatabasePath()));
    if (!child_store.ok()) return false;
    auto lease = (*child_store)->GrantLease(1s);
    if (!lease.ok()) return false;
    if (!(*child_store)
             ->Txn({}, {PutOp("leased/a", "1", *lease), PutOp("leased/b", "2", *lease)})
             .ok()) {
      return false;
    }
    char byte = 'y';
    if (write(ready[1], &byte, 1) != 1) return false;
    std::this_thread::sleep_for(30s);  // killed long before
    return true;
  });
  const pid_t child = held.pid();
  ASSERT_GT(child, 0);
  close(ready[1]);
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  testing::WatchRecorder recorder;
  auto watch = store->WatchPrefix("leased/", 0, recorder.Callback());
  ASSERT_TRUE(watch.ok());
  // Before the child's grant: the lease cannot expire sooner than 1 s after this.
  auto spawned_at = std::chrono::steady_clock::now();
  held.Start();
  // A child stuck before it reports (a lock inherited across fork) must fail the test,
  // not hang it.
  pollfd ready_poll{ready[0], POLLIN, 0};
  bool reported = poll(&ready_poll, 1, 20000) == 1;
  char byte = 0;
  if (reported) reported = read(ready[0], &byte, 1) == 1;
  close(ready[0]);
  if (!reported) KillChild(child);
  ASSERT_TRUE(reported) << "the child did not set up its lease within 20 s";
  KillChild(child);

  ASSERT_TRUE(recorder.WaitForEvents(4)) << "no delete events after the lease's TTL";
  EXPECT_GE(std::chrono::steady_clock::now() - spawned_at, 1s) << "expired before its TTL";
  auto batches = recorder.Batches();
  ASSERT_EQ(batches.size(), 2u);
  ASSERT_EQ(batches[1].size(), 2u);
  EXPECT_EQ(batches[1][0].kind, WatchEvent::Kind::kDelete);
  EXPECT_EQ(batches[1][0].kv.key, "leased/a");
  EXPECT_EQ(batches[1][1].kv.key, "leased/b");
  auto left = store->Range("leased/");
  ASSERT_TRUE(left.ok());
  EXPECT_TRUE(left->kvs.empty());
}

TEST_F(SqliteStoreTest, WatchSeesWritesOfAnotherProcess) {
  HeldChild child([this] {
    auto child_store = SqliteStore::Open(TestOptions(DatabasePath()));
    return child_store.ok() && (*child_store)->Put("p/a", "1").ok() &&
           (*child_store)->Put("q/ignored", "x").ok() && (*child_store)->Put("p/b", "2").ok() &&
           (*child_store)->Delete("p/a").ok();
  });
  ASSERT_GT(child.pid(), 0);
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  testing::WatchRecorder recorder;
  auto watch = store->WatchPrefix("p/", 0, recorder.Callback());
  ASSERT_TRUE(watch.ok());
  child.Start();
  ASSERT_EQ(WaitForChild(child.pid(), 30s), 0);
  ASSERT_TRUE(recorder.WaitForEvents(3));
  auto batches = recorder.Batches();
  ASSERT_EQ(batches.size(), 3u);
  EXPECT_EQ(batches[0][0].kv.key, "p/a");
  EXPECT_EQ(batches[0][0].kind, WatchEvent::Kind::kPut);
  EXPECT_EQ(batches[1][0].kv.key, "p/b");
  EXPECT_EQ(batches[1][0].kv.mod_revision, batches[0][0].kv.mod_revision + 2);
  EXPECT_EQ(batches[2][0].kind, WatchEvent::Kind::kDelete);
  EXPECT_EQ(batches[2][0].kv.key, "p/a");
}

// A store file removed or replaced under a running process: its watches end with an error
// naming the file instead of waiting in silence for writes that now go elsewhere.
TEST_F(SqliteStoreTest, WatchEndsWhenTheFileIsRemovedOrReplaced) {
  for (bool replace : {false, true}) {
    SCOPED_TRACE(replace ? "replaced" : "removed");
    auto store = OpenStore();
    ASSERT_NE(store, nullptr);
    testing::WatchRecorder recorder;
    auto watch = store->WatchPrefix("p/", 0, recorder.Callback());
    ASSERT_TRUE(watch.ok());
    ASSERT_TRUE(store->Put("p/a", "1").ok());
    ASSERT_TRUE(recorder.WaitForEvents(1));
    for (const char* suffix : {"", "-wal", "-shm"}) {
      std::filesystem::remove(DatabasePath() + suffix);
    }
    if (replace) {
      auto other = SqliteStore::Open(TestOptions(DatabasePath()));
      ASSERT_TRUE(other.ok()) << other.status().ToString();
      ASSERT_TRUE((*other)->Put("p/b", "2").ok());
    }
    ASSERT_TRUE(recorder.WaitForError());
    base::Status error = recorder.Errors().front();
    EXPECT_EQ(error.code(), base::StatusCode::kFailedPrecondition) << error.ToString();
    EXPECT_NE(error.message().find(DatabasePath()), std::string::npos) << error.ToString();
    EXPECT_NE(error.message().find(replace ? "replaced" : "removed"), std::string::npos)
        << error.ToString();
    // From then on every call fails the same way: a cache on top backs off and reports
    // itself stale, rather than reading the old file and watching again in a loop.
    EXPECT_EQ(store->Get("p/a").status().code(), base::StatusCode::kFailedPrecondition);
    EXPECT_EQ(store->Range("p/").status().code(), base::StatusCode::kFailedPrecondition);
    EXPECT_EQ(store->Put("p/c", "3").status().code(), base::StatusCode::kFailedPrecondition);
    testing::WatchRecorder again;
    EXPECT_EQ(store->WatchPrefix("p/", 0, again.Callback()).status().code(),
              base::StatusCode::kFailedPrecondition);
    (*watch)->Cancel();
    store.reset();
    for (const char* suffix : {"", "-wal", "-shm"}) {
      std::filesystem::remove(DatabasePath() + suffix);
    }
  }
}

TEST_F(SqliteStoreTest, WatchFromCompactedRevisionReportsDataLossOnce) {
  SqliteStoreOptions options = TestOptions(DatabasePath());
  options.change_log_retention = 5;
  auto store = OpenStore(options);
  ASSERT_NE(store, nullptr);
  auto first = store->Put("k", "0");
  ASSERT_TRUE(first.ok());
  for (int i = 1; i < 20; ++i) ASSERT_TRUE(store->Put("k", std::to_string(i)).ok());
  int64_t current = *first + 19;

  testing::WatchRecorder recorder;
  auto watch = store->WatchPrefix("k", *first, recorder.Callback());
  ASSERT_TRUE(watch.ok());
  ASSERT_TRUE(recorder.WaitForError());
  ASSERT_TRUE(store->Put("k", "more").ok());
  // The watch ended: nothing after the error, however long we wait for the next write
  // to reach a live watch of the same prefix.
  testing::WatchRecorder live;
  auto live_watch = store->WatchPrefix("k", current + 1, live.Callback());
  ASSERT_TRUE(live_watch.ok());
  ASSERT_TRUE(live.WaitForEvents(1));
  EXPECT_TRUE(recorder.Batches().empty());
  ASSERT_EQ(recorder.Errors().size(), 1u);
  EXPECT_EQ(recorder.Errors()[0].code(), base::StatusCode::kDataLoss);
  EXPECT_NE(recorder.Errors()[0].message().find("compacted"), std::string::npos);

  // The oldest kept revisions still replay; older ones are gone for Range too.
  testing::WatchRecorder recent;
  auto recent_watch = store->WatchPrefix("k", current - 3, recent.Callback());
  ASSERT_TRUE(recent_watch.ok());
  ASSERT_TRUE(recent.WaitForEvents(5));
  EXPECT_TRUE(recent.Errors().empty());
  EXPECT_EQ(recent.Batches()[0][0].kv.value, "16");
  auto old = store->Range("k", {.revision = *first});
  EXPECT_EQ(old.status().code(), base::StatusCode::kDataLoss);
  EXPECT_NE(old.status().message().find("oldest kept is"), std::string::npos)
      << old.status().ToString();
  auto kept = store->Range("k", {.revision = current - 3});
  ASSERT_TRUE(kept.ok()) << kept.status().ToString();
  ASSERT_EQ(kept->kvs.size(), 1u);
  EXPECT_EQ(kept->kvs[0].value, "16");
}

// Random writes; Range at each past revision must equal what Range returned back then.
TEST_F(SqliteStoreTest, RangeAtOldRevisionsMatchesWhatWasThere) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  std::mt19937 random(7);
  std::map<int64_t, std::vector<KeyValue>> snapshots;
  LeaseId lease = 0;
  {
    auto granted = store->GrantLease(60s);
    ASSERT_TRUE(granted.ok());
    lease = *granted;
  }
  for (int step = 0; step < 60; ++step) {
    std::string key = "h/" + std::to_string(random() % 6);
    std::string other = "h/" + std::to_string(6 + random() % 3);
    switch (random() % 4) {
      case 0:
        ASSERT_TRUE(store->Put(key, "v" + std::to_string(step)).ok());
        break;
      case 1:
        ASSERT_TRUE(store->Delete(key).ok());
        break;
      case 2:
        ASSERT_TRUE(store->Put(key, "leased" + std::to_string(step), lease).ok());
        break;
      default:
        ASSERT_TRUE(store->Txn({}, {PutOp(key, "t" + std::to_string(step)), DeleteOp(other)}).ok());
    }
    auto now = store->Range("h/");
    ASSERT_TRUE(now.ok());
    snapshots[now->revision] = now->kvs;
  }
  ASSERT_TRUE(store->RevokeLease(lease).ok());
  for (const auto& [revision, kvs] : snapshots) {
    auto past = store->Range("h/", {.revision = revision});
    ASSERT_TRUE(past.ok()) << past.status().ToString();
    EXPECT_EQ(past->kvs, kvs) << "at revision " << revision;
    if (kvs.size() > 1) {
      auto limited = store->Range("h/", {.limit = 1, .revision = revision});
      ASSERT_TRUE(limited.ok());
      EXPECT_TRUE(limited->more);
      EXPECT_EQ(limited->kvs, std::vector<KeyValue>{kvs[0]});
    }
  }
  auto future = store->Range("h/", {.revision = CurrentRevision(*store) + 1});
  EXPECT_EQ(future.status().code(), base::StatusCode::kInvalidArgument);
}

TEST_F(SqliteStoreTest, FailedCompareAndMissingDeleteKeepTheRevision) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Put("a", "1").ok());
  int64_t before = CurrentRevision(*store);
  auto deleted = store->Delete("missing");
  ASSERT_TRUE(deleted.ok());
  EXPECT_EQ(*deleted, 0);
  auto failed = store->Txn({{Compare::Kind::kValueEquals, "a", "2", 0}}, {PutOp("a", "3")});
  ASSERT_TRUE(failed.ok());
  EXPECT_FALSE(failed->succeeded);
  EXPECT_EQ(failed->revision, before);
  EXPECT_EQ(CurrentRevision(*store), before);
}

TEST_F(SqliteStoreTest, KeysAndValuesAreBytesWithinDocumentedLimits) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  std::string with_nul("n/a\0b", 5);
  ASSERT_TRUE(store->Put(with_nul, std::string("v\0", 2)).ok());
  ASSERT_TRUE(store->Put("n/a", "plain").ok());
  auto got = store->Get(with_nul);
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ((*got)->value, std::string("v\0", 2));
  auto under_nul = store->Range(std::string("n/a\0", 4));
  ASSERT_TRUE(under_nul.ok());
  ASSERT_EQ(under_nul->kvs.size(), 1u);
  EXPECT_EQ(under_nul->kvs[0].key, with_nul);

  // A prefix of 0xff bytes has no successor: the range runs to the end of the key space.
  ASSERT_TRUE(store->Put("\xff\xff", "top").ok());
  ASSERT_TRUE(store->Put("\xff\xff\xff", "topmost").ok());
  auto top = store->Range("\xff\xff");
  ASSERT_TRUE(top.ok());
  EXPECT_EQ(top->kvs.size(), 2u);

  ASSERT_TRUE(store->Put("empty", "").ok());
  auto empty = store->Get("empty");
  ASSERT_TRUE(empty.ok() && empty->has_value());
  EXPECT_EQ((*empty)->value, "");

  std::string longest(SqliteStore::kMaxKeyBytes, 'k');
  EXPECT_TRUE(store->Put(longest, "x").ok());
  EXPECT_EQ(store->Put(longest + "k", "x").status().code(), base::StatusCode::kInvalidArgument);
  EXPECT_EQ(store->Get(longest + "k").status().code(), base::StatusCode::kInvalidArgument);
  EXPECT_EQ(store->Put("", "x").status().code(), base::StatusCode::kInvalidArgument);
  EXPECT_EQ(store->Delete("").status().code(), base::StatusCode::kInvalidArgument);

  std::string largest(SqliteStore::kMaxValueBytes, '\0');
  EXPECT_TRUE(store->Put("big", largest).ok());
  auto big = store->Get("big");
  ASSERT_TRUE(big.ok() && big->has_value());
  EXPECT_EQ((*big)->value.size(), SqliteStore::kMaxValueBytes);
  auto too_big = store->Put("big", largest + "x");
  EXPECT_EQ(too_big.status().code(), base::StatusCode::kInvalidArgument);
  EXPECT_NE(too_big.status().message().find("limit"), std::string::npos);

  std::vector<Operation> too_many;
  for (size_t i = 0; i <= SqliteStore::kMaxTxnOperations; ++i) {
    too_many.push_back(PutOp("many/" + std::to_string(i), "x"));
  }
  EXPECT_EQ(store->Txn({}, too_many).status().code(), base::StatusCode::kInvalidArgument);
  EXPECT_EQ(store->Txn({}, {PutOp("dup", "1"), DeleteOp("dup")}).status().code(),
            base::StatusCode::kInvalidArgument);
  EXPECT_EQ(store->Put("negative", "x", -5).status().code(), base::StatusCode::kInvalidArgument);
  EXPECT_EQ(store->GrantLease(0s).status().code(), base::StatusCode::kInvalidArgument);
  EXPECT_EQ(store->Range("", {.limit = -1}).status().code(), base::StatusCode::kInvalidArgument);
  EXPECT_EQ(store->WatchPrefix("", -1, [](auto&, auto&) {}).status().code(),
            base::StatusCode::kInvalidArgument);
}

TEST_F(SqliteStoreTest, FileOfRandomBytesIsReportedAsDataLoss) {
  {
    std::mt19937 random(1);
    std::ofstream file(DatabasePath(), std::ios::binary);
    for (int i = 0; i < 64 * 1024; ++i) file.put(static_cast<char>(random()));
  }
  auto store = SqliteStore::Open(TestOptions(DatabasePath()));
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), base::StatusCode::kDataLoss) << store.status().ToString();
  EXPECT_NE(store.status().message().find(DatabasePath()), std::string::npos);
}

TEST_F(SqliteStoreTest, DamagedPagesAreReportedAsDataLoss) {
  {
    SqliteStoreOptions options = TestOptions(DatabasePath());
    auto store = OpenStore(options);
    ASSERT_NE(store, nullptr);
    for (int i = 0; i < 200; ++i) {
      ASSERT_TRUE(store->Put("key/" + std::to_string(i), std::string(500, 'v')).ok());
    }
  }  // the last close checkpoints the log into the main file
  {
    // Overwrite every page but the first (which names the tables) with noise.
    std::mt19937 random(2);
    auto size = std::filesystem::file_size(DatabasePath());
    ASSERT_GT(size, 4096u * 3);
    std::fstream file(DatabasePath(), std::ios::binary | std::ios::in | std::ios::out);
    file.seekp(4096);
    for (auto i = 4096u; i < size; ++i) file.put(static_cast<char>(random()));
  }
  auto store = SqliteStore::Open(TestOptions(DatabasePath()));
  base::Status status = store.status();
  if (store.ok()) status = (*store)->Range("").status();
  EXPECT_EQ(status.code(), base::StatusCode::kDataLoss) << status.ToString();
  EXPECT_NE(status.message().find(DatabasePath()), std::string::npos) << status.ToString();
}

TEST_F(SqliteStoreTest, AnotherProgramsDatabaseIsRefused) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(DatabasePath().c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "CREATE TABLE photos (id INTEGER)", nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  auto store = SqliteStore::Open(TestOptions(DatabasePath()));
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), base::StatusCode::kFailedPrecondition);
  EXPECT_NE(store.status().message().find("another program"), std::string::npos);
}

TEST_F(SqliteStoreTest, BadOptionsAreInvalidArguments) {
  SqliteStoreOptions options = TestOptions(DatabasePath());
  options.change_log_retention = 0;
  EXPECT_EQ(SqliteStore::Open(options).status().code(), base::StatusCode::kInvalidArgument);
  options = TestOptions(directory_.path() + "/no/such/dir/store.db");
  auto missing = SqliteStore::Open(options);
  EXPECT_EQ(missing.status().code(), base::StatusCode::kInvalidArgument);
  EXPECT_NE(missing.status().message().find("does not exist"), std::string::npos);
  options = TestOptions(DatabasePath());
  options.watch_poll_interval = 0ms;
  EXPECT_EQ(SqliteStore::Open(options).status().code(), base::StatusCode::kInvalidArgument);
}

// Another connection holds the write lock past the busy timeout: writes say so, naming
// the file; reads go on (WAL readers do not wait for writers).
TEST_F(SqliteStoreTest, WriteLockHeldElsewhereIsUnavailable) {
  SqliteStoreOptions options = TestOptions(DatabasePath());
  options.busy_timeout = 100ms;
  auto store = OpenStore(options);
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Put("k", "v").ok());
  sqlite3* blocker = nullptr;
  ASSERT_EQ(sqlite3_open(DatabasePath().c_str(), &blocker), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(blocker, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);

  auto put = store->Put("k", "w");
  EXPECT_EQ(put.status().code(), base::StatusCode::kUnavailable) << put.status().ToString();
  EXPECT_NE(put.status().message().find(DatabasePath()), std::string::npos);
  auto got = store->Get("k");
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ((*got)->value, "v");
  // Opening the store reads too (the schema is in place): `store get` and a starting
  // router or worker do not wait for another process's write, nor fail after busy_timeout.
  auto another = SqliteStore::Open(options);
  ASSERT_TRUE(another.ok()) << another.status().ToString();
  got = (*another)->Get("k");
  ASSERT_TRUE(got.ok() && got->has_value()) << got.status().ToString();
  EXPECT_EQ((*got)->value, "v");
  another->reset();

  ASSERT_EQ(sqlite3_exec(blocker, "ROLLBACK", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(blocker);
  EXPECT_TRUE(store->Put("k", "w").ok());
}

TEST_F(SqliteStoreTest, ExpiredLeaseIsGoneBeforeAnySweep) {
  SqliteStoreOptions options = TestOptions(DatabasePath());
  options.lease_sweep_interval = std::chrono::hours(1);  // only the first, at start
  auto store = OpenStore(options);
  ASSERT_NE(store, nullptr);
  auto lease = store->GrantLease(1s);
  auto granted_by = std::chrono::system_clock::now();  // expiry is at most 1 s after this
  ASSERT_TRUE(lease.ok());
  ASSERT_TRUE(store->Put("l/k", "v", *lease).ok());
  // Expiry is wall-clock time, so waiting for the wall clock to pass it is exact.
  ASSERT_TRUE(
      Eventually([&] { return std::chrono::system_clock::now() > granted_by + 1001ms; }, 5s));
  EXPECT_EQ(store->KeepAlive(*lease).code(), base::StatusCode::kNotFound);
  EXPECT_EQ(store->Put("l/other", "v", *lease).status().code(), base::StatusCode::kNotFound);
  auto still = store->Get("l/k");  // not swept yet
  ASSERT_TRUE(still.ok());
  EXPECT_TRUE(still->has_value());
  EXPECT_TRUE(store->RevokeLease(*lease).ok());
  auto gone = store->Get("l/k");
  ASSERT_TRUE(gone.ok());
  EXPECT_FALSE(gone->has_value());
  EXPECT_EQ(store->RevokeLease(*lease).code(), base::StatusCode::kNotFound);
}

TEST_F(SqliteStoreTest, WatchFarBehindCatchesUpInOrder) {
  SqliteStoreOptions options = TestOptions(DatabasePath());
  options.durable_commits = false;  // many small commits; durability is not under test
  auto store = OpenStore(options);
  ASSERT_NE(store, nullptr);
  constexpr int kWrites = 700;  // several of the watch thread's read batches
  auto first = store->Put("b/0", "0");
  ASSERT_TRUE(first.ok());
  for (int i = 1; i < kWrites; ++i) {
    ASSERT_TRUE(store->Put("b/" + std::to_string(i % 7), std::to_string(i)).ok());
  }
  testing::WatchRecorder recorder;
  auto watch = store->WatchPrefix("b/", *first, recorder.Callback());
  ASSERT_TRUE(watch.ok());
  ASSERT_TRUE(recorder.WaitForEvents(kWrites));
  auto batches = recorder.Batches();
  ASSERT_EQ(batches.size(), static_cast<size_t>(kWrites));
  for (int i = 0; i < kWrites; ++i) {
    EXPECT_EQ(batches[i][0].kv.value, std::to_string(i));
    EXPECT_EQ(batches[i][0].kv.mod_revision, *first + i);
  }
}

// More history than the watch thread reads at once (by bytes): still whole and in order.
TEST_F(SqliteStoreTest, WatchCatchesUpThroughLargeValues) {
  SqliteStoreOptions options = TestOptions(DatabasePath());
  options.durable_commits = false;
  auto store = OpenStore(options);
  ASSERT_NE(store, nullptr);
  constexpr int kWrites = 40;  // 40 MiB of values
  auto first = store->Put("big/0", std::string(1 << 20, '0'));
  ASSERT_TRUE(first.ok());
  for (int i = 1; i < kWrites; ++i) {
    char fill = static_cast<char>('0' + i % 10);
    ASSERT_TRUE(store
                    ->Txn({}, {PutOp("big/" + std::to_string(i), std::string(1 << 20, fill)),
                               PutOp("big/marker", std::to_string(i))})
                    .ok());
  }
  testing::WatchRecorder recorder;
  auto watch = store->WatchPrefix("big/", *first, recorder.Callback());
  ASSERT_TRUE(watch.ok());
  ASSERT_TRUE(recorder.WaitForEvents(1 + 2 * (kWrites - 1)));
  auto batches = recorder.Batches();
  ASSERT_EQ(batches.size(), static_cast<size_t>(kWrites));
  for (int i = 1; i < kWrites; ++i) {
    ASSERT_EQ(batches[i].size(), 2u) << "revision split across deliveries";
    EXPECT_EQ(batches[i][0].kv.mod_revision, *first + i);
    EXPECT_EQ(batches[i][1].kv.value, std::to_string(i));
  }
}

TEST_F(SqliteStoreTest, CancelInsideCallbackStopsDeliveryWithoutDeadlock) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  std::mutex mutex;
  std::unique_ptr<Watch> watch;
  int calls = 0;
  auto created = store->WatchPrefix("c/", 0, [&](const auto&, const auto&) {
    std::lock_guard<std::mutex> lock(mutex);
    ++calls;
    watch->Cancel();
  });
  ASSERT_TRUE(created.ok());
  {
    std::lock_guard<std::mutex> lock(mutex);
    watch = std::move(created).value();
  }
  ASSERT_TRUE(store->Put("c/1", "x").ok());
  ASSERT_TRUE(Eventually(
      [&] {
        std::lock_guard<std::mutex> lock(mutex);
        return calls == 1;
      },
      10s));
  // A later write reaches a second watch, so the first had its chance to misbehave.
  testing::WatchRecorder after;
  auto second = store->WatchPrefix("c/", 0, after.Callback());
  ASSERT_TRUE(second.ok());
  ASSERT_TRUE(store->Put("c/2", "x").ok());
  ASSERT_TRUE(after.WaitForEvents(1));
  std::lock_guard<std::mutex> lock(mutex);
  EXPECT_EQ(calls, 1);
}

TEST_F(SqliteStoreTest, WatchHandleMayOutliveItsStore) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  auto watch = store->WatchPrefix("", 0, [](const auto&, const auto&) {});
  ASSERT_TRUE(watch.ok());
  store.reset();
  (*watch)->Cancel();
  watch->reset();
}

}  // namespace
}  // namespace supercluster::store
