// The store conformance suite: behaviour every Store backend must have, run against each
// backend (see store_test_backend.h): reads and writes, revisions, transactions, CAS under
// contention, ordered exactly-once watches under concurrent writers, leases (including a
// holder killed with SIGKILL), and leader election.
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <iterator>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "store/election.h"
#include "store/store_test_backend.h"
#include "store/watch_recorder.h"

namespace supercluster::store::testing {

using namespace std::chrono_literals;

void StoreConformanceTest::SetUp() {
  backend().SetUp();
  store_ = backend().Open();
  ASSERT_NE(store_, nullptr);
}

void StoreConformanceTest::TearDown() {
  store_.reset();
  backend().TearDown();
}

std::string BackendName(const ::testing::TestParamInfo<std::shared_ptr<StoreTestBackend>>& info) {
  return info.param->Name();
}

GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(StoreConformanceTest);

namespace {

size_t ThreadCount() {
  std::error_code error;
  auto tasks = std::filesystem::directory_iterator("/proc/self/task", error);
  if (error) return 0;
  return static_cast<size_t>(std::distance(tasks, std::filesystem::directory_iterator()));
}

// Threads that end on their own once their store is closed (etcd's watch threads) may
// take a moment to go.
bool OnlyThisThreadWithin(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (ThreadCount() != 1) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

}  // namespace

// A fork while another thread holds a lock (the allocator's, SQLite's, the logger's)
// leaves the child with a lock nobody will release: its first use of it hangs. A child
// hung like that once in a full AddressSanitizer run (the test passed alone) while
// store()'s own thread ran beside the fork; with one thread at the fork it cannot.
pid_t StoreConformanceTest::ForkChild(const std::function<bool(Store&)>& body) {
  int ready[2];
  if (pipe(ready) != 0) return -1;
  store_.reset();
  if (!OnlyThisThreadWithin(5s)) {
    ADD_FAILURE() << ThreadCount() << " threads still running after store() closed";
    store_ = backend().Open();
    close(ready[0]);
    close(ready[1]);
    return -1;
  }
  pid_t pid = fork();
  if (pid < 0) {
    store_ = backend().Open();
    close(ready[0]);
    close(ready[1]);
    return -1;
  }
  if (pid == 0) {
    close(ready[0]);
    std::unique_ptr<Store> store = backend().Open();
    bool ok = store != nullptr && body(*store);
    char byte = ok ? 'y' : 'n';
    (void)!write(ready[1], &byte, 1);
    while (true) pause();
  }
  close(ready[1]);
  store_ = backend().Open();
  // A child stuck before it reports fails the test after a while instead of hanging it.
  pollfd ready_poll{ready[0], POLLIN, 0};
  char byte = 0;
  bool got = poll(&ready_poll, 1, 20000) == 1 && read(ready[0], &byte, 1) == 1 && byte == 'y';
  close(ready[0]);
  if (!got) {
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    return -1;
  }
  return pid;
}

namespace {

size_t CountEvents(const std::vector<std::vector<WatchEvent>>& batches) {
  return WatchRecorder::CountEvents(batches);
}

// Polls `condition` until true or the deadline; for effects that happen on a timer
// (lease expiry) rather than on an event the test can wait for.
template <class Condition>
bool Eventually(Condition condition, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(50ms);
  }
  return condition();
}

bool KeyExists(Store& store, const std::string& key) {
  auto got = store.Get(key);
  return got.ok() && got->has_value();
}

void KillChild(pid_t pid) {
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
}

}  // namespace

TEST_P(StoreConformanceTest, PutThenGet) {
  auto revision = store().Put("a/b", "value");
  ASSERT_TRUE(revision.ok()) << revision.status().ToString();
  auto got = store().Get("a/b");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ((*got)->value, "value");
  EXPECT_EQ((*got)->mod_revision, *revision);
  EXPECT_EQ((*got)->create_revision, *revision);
  EXPECT_EQ((*got)->version, 1);
  auto missing = store().Get("a/c");
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->has_value());
}

TEST_P(StoreConformanceTest, EveryWriteAdvancesTheRevisionByOne) {
  auto first = store().Put("k", "1");
  auto second = store().Put("k", "2");
  auto third = store().Put("other", "x");
  ASSERT_TRUE(first.ok() && second.ok() && third.ok());
  EXPECT_EQ(*second, *first + 1);
  EXPECT_EQ(*third, *second + 1);
  auto got = store().Get("k");
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ((*got)->version, 2);
  EXPECT_EQ((*got)->create_revision, *first);
  EXPECT_EQ((*got)->mod_revision, *second);
}

TEST_P(StoreConformanceTest, BinaryKeysAndValuesRoundTrip) {
  std::string key = std::string("bin/\x01\xff", 6);
  std::string value = std::string("\0\x80\xfe zero", 8);
  ASSERT_TRUE(store().Put(key, value).ok());
  auto got = store().Get(key);
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ((*got)->value, value);
}

TEST_P(StoreConformanceTest, RangeByPrefixIsOrderedAndLimited) {
  for (std::string key : {"p/c", "p/a", "q/a", "p/b", "pa"}) ASSERT_TRUE(store().Put(key, key).ok());
  auto all = store().Range("p/");
  ASSERT_TRUE(all.ok());
  std::vector<std::string> keys;
  for (const auto& kv : all->kvs) keys.push_back(kv.key);
  EXPECT_EQ(keys, (std::vector<std::string>{"p/a", "p/b", "p/c"}));
  EXPECT_FALSE(all->more);

  auto limited = store().Range("p/", {.limit = 2});
  ASSERT_TRUE(limited.ok());
  ASSERT_EQ(limited->kvs.size(), 2u);
  EXPECT_EQ(limited->kvs[1].key, "p/b");
  EXPECT_TRUE(limited->more);

  auto everything = store().Range("");
  ASSERT_TRUE(everything.ok());
  EXPECT_EQ(everything->kvs.size(), 5u);
}

TEST_P(StoreConformanceTest, RangeAtAnEarlierRevisionSeesThePast) {
  auto before = store().Put("h/x", "old");
  ASSERT_TRUE(before.ok());
  ASSERT_TRUE(store().Put("h/x", "new").ok());
  ASSERT_TRUE(store().Put("h/y", "later").ok());
  auto past = store().Range("h/", {.revision = *before});
  ASSERT_TRUE(past.ok()) << past.status().ToString();
  ASSERT_EQ(past->kvs.size(), 1u);
  EXPECT_EQ(past->kvs[0].value, "old");
  auto now = store().Range("h/");
  ASSERT_TRUE(now.ok());
  EXPECT_EQ(now->kvs.size(), 2u);
  EXPECT_GE(now->revision, *before + 2);
}

TEST_P(StoreConformanceTest, DeleteReportsHowManyKeysWent) {
  ASSERT_TRUE(store().Put("d/1", "x").ok());
  auto deleted = store().Delete("d/1");
  ASSERT_TRUE(deleted.ok());
  EXPECT_EQ(*deleted, 1);
  EXPECT_FALSE(KeyExists(store(), "d/1"));
  auto again = store().Delete("d/1");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, 0);
}

TEST_P(StoreConformanceTest, TxnComparesDecideWhichBranchRuns) {
  auto created = store().Put("t/a", "1");
  ASSERT_TRUE(created.ok());
  struct Case {
    Compare compare;
    bool expected;
  };
  std::vector<Case> cases = {
      {{Compare::Kind::kExists, "t/a", "", 0}, true},
      {{Compare::Kind::kExists, "t/none", "", 0}, false},
      {{Compare::Kind::kMissing, "t/none", "", 0}, true},
      {{Compare::Kind::kMissing, "t/a", "", 0}, false},
      {{Compare::Kind::kValueEquals, "t/a", "1", 0}, true},
      {{Compare::Kind::kValueEquals, "t/a", "2", 0}, false},
      {{Compare::Kind::kModRevisionEquals, "t/a", "", *created}, true},
      {{Compare::Kind::kModRevisionEquals, "t/a", "", *created + 100}, false},
      {{Compare::Kind::kModRevisionEquals, "t/none", "", 0}, true},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    std::string marker = "t/result" + std::to_string(i);
    auto result = store().Txn({cases[i].compare}, {{Operation::Kind::kPut, marker, "then", 0}},
                              {{Operation::Kind::kPut, marker, "else", 0}});
    ASSERT_TRUE(result.ok()) << i << ": " << result.status().ToString();
    EXPECT_EQ(result->succeeded, cases[i].expected) << "case " << i;
    auto marker_value = store().Get(marker);
    ASSERT_TRUE(marker_value.ok() && marker_value->has_value());
    EXPECT_EQ((*marker_value)->value, cases[i].expected ? "then" : "else") << "case " << i;
  }
}

TEST_P(StoreConformanceTest, TxnAppliesAllOperationsAtOneRevision) {
  ASSERT_TRUE(store().Put("m/gone", "x").ok());
  auto result = store().Txn({}, {{Operation::Kind::kPut, "m/1", "a", 0},
                                 {Operation::Kind::kPut, "m/2", "b", 0},
                                 {Operation::Kind::kDelete, "m/gone", "", 0}});
  ASSERT_TRUE(result.ok());
  EXPECT_TRUE(result->succeeded);
  auto one = store().Get("m/1");
  auto two = store().Get("m/2");
  ASSERT_TRUE(one.ok() && one->has_value() && two.ok() && two->has_value());
  EXPECT_EQ((*one)->mod_revision, result->revision);
  EXPECT_EQ((*two)->mod_revision, result->revision);
  EXPECT_FALSE(KeyExists(store(), "m/gone"));
}

// N clients increment one counter by compare-and-swap; no increment may be lost.
TEST_P(StoreConformanceTest, CasUnderContentionLosesNoIncrement) {
  constexpr int kWriters = 4;
  constexpr int kIncrements = 25;
  ASSERT_TRUE(store().Put("counter", "0").ok());
  std::atomic<int> failures{0};
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&] {
      std::unique_ptr<Store> client = backend().Open();
      for (int i = 0; i < kIncrements; ++i) {
        while (true) {
          auto current = client->Get("counter");
          if (!current.ok() || !current->has_value()) {
            failures.fetch_add(1);
            return;
          }
          int value = std::stoi((*current)->value);
          auto swapped = client->Txn(
              {{Compare::Kind::kModRevisionEquals, "counter", "", (*current)->mod_revision}},
              {{Operation::Kind::kPut, "counter", std::to_string(value + 1), 0}});
          if (!swapped.ok()) {
            failures.fetch_add(1);
            return;
          }
          if (swapped->succeeded) break;
        }
      }
    });
  }
  for (auto& writer : writers) writer.join();
  EXPECT_EQ(failures.load(), 0);
  auto final_value = store().Get("counter");
  ASSERT_TRUE(final_value.ok() && final_value->has_value());
  EXPECT_EQ((*final_value)->value, std::to_string(kWriters * kIncrements));
  EXPECT_EQ((*final_value)->version, 1 + kWriters * kIncrements);
}

// Concurrent writers; one watcher must see every revision exactly once, in order.
TEST_P(StoreConformanceTest, WatchDeliversEveryChangeOnceInOrderUnderConcurrentWriters) {
  constexpr int kWriters = 4;
  constexpr int kWrites = 40;
  auto start = store().Put("unwatched", "x");
  ASSERT_TRUE(start.ok());
  WatchRecorder recorder;
  auto watch = store().WatchPrefix("w/", *start + 1, recorder.Callback());
  ASSERT_TRUE(watch.ok()) << watch.status().ToString();

  std::vector<std::thread> writers;
  std::mutex written_mutex;
  std::set<int64_t> written_revisions;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      std::unique_ptr<Store> client = backend().Open();
      for (int i = 0; i < kWrites; ++i) {
        auto revision = client->Put("w/" + std::to_string(w) + "/" + std::to_string(i % 10),
                                    std::to_string(i));
        if (revision.ok()) {
          std::lock_guard lock(written_mutex);
          written_revisions.insert(*revision);
        }
        // Writes outside the prefix interleave and must not be delivered.
        (void)client->Put("other/" + std::to_string(w), std::to_string(i));
      }
    });
  }
  for (auto& writer : writers) writer.join();
  ASSERT_EQ(written_revisions.size(), static_cast<size_t>(kWriters * kWrites));
  ASSERT_TRUE(recorder.WaitFor(
      [&](const auto& batches) { return CountEvents(batches) >= written_revisions.size(); }))
      << "got " << recorder.EventCount() << " of " << written_revisions.size();
  std::this_thread::sleep_for(200ms);  // nothing extra may arrive late

  std::vector<int64_t> delivered;
  for (const auto& batch : recorder.Batches()) {
    ASSERT_FALSE(batch.empty());
    for (const WatchEvent& event : batch) {
      EXPECT_EQ(event.kv.key.rfind("w/", 0), 0u) << event.kv.key;
      EXPECT_EQ(event.kv.mod_revision, batch.front().kv.mod_revision);
      delivered.push_back(event.kv.mod_revision);
    }
  }
  EXPECT_TRUE(std::is_sorted(delivered.begin(), delivered.end()));
  EXPECT_EQ(std::set<int64_t>(delivered.begin(), delivered.end()).size(), delivered.size())
      << "a revision was delivered twice";
  EXPECT_EQ(std::set<int64_t>(delivered.begin(), delivered.end()), written_revisions);
  EXPECT_FALSE(recorder.FinalStatus().has_value());
}

TEST_P(StoreConformanceTest, WatchFromThePastReplaysHistory) {
  auto first = store().Put("r/a", "1");
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(store().Put("r/a", "2").ok());
  ASSERT_TRUE(store().Delete("r/a").ok());
  WatchRecorder recorder;
  auto watch = store().WatchPrefix("r/", *first, recorder.Callback());
  ASSERT_TRUE(watch.ok());
  ASSERT_TRUE(recorder.WaitFor([](const auto& batches) { return CountEvents(batches) >= 3; }));
  auto batches = recorder.Batches();
  ASSERT_EQ(batches.size(), 3u);
  EXPECT_EQ(batches[0][0].kind, WatchEvent::Kind::kPut);
  EXPECT_EQ(batches[0][0].kv.value, "1");
  EXPECT_EQ(batches[1][0].kv.value, "2");
  EXPECT_EQ(batches[2][0].kind, WatchEvent::Kind::kDelete);
  EXPECT_EQ(batches[2][0].kv.key, "r/a");
  EXPECT_EQ(batches[2][0].kv.mod_revision, *first + 2);
}

TEST_P(StoreConformanceTest, TxnEventsArriveTogether) {
  WatchRecorder recorder;
  auto watch = store().WatchPrefix("g/", 0, recorder.Callback());
  ASSERT_TRUE(watch.ok());
  auto result = store().Txn({}, {{Operation::Kind::kPut, "g/1", "a", 0},
                                 {Operation::Kind::kPut, "g/2", "b", 0}});
  ASSERT_TRUE(result.ok());
  ASSERT_TRUE(recorder.WaitFor([](const auto& batches) { return CountEvents(batches) >= 2; }));
  auto batches = recorder.Batches();
  ASSERT_EQ(batches.size(), 1u);
  EXPECT_EQ(batches[0].size(), 2u);
}

TEST_P(StoreConformanceTest, CancelledWatchDeliversNothingMore) {
  WatchRecorder recorder;
  auto watch = store().WatchPrefix("c/", 0, recorder.Callback());
  ASSERT_TRUE(watch.ok());
  ASSERT_TRUE(store().Put("c/1", "x").ok());
  ASSERT_TRUE(recorder.WaitFor([](const auto& batches) { return CountEvents(batches) >= 1; }));
  (*watch)->Cancel();
  ASSERT_TRUE(store().Put("c/2", "x").ok());
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(recorder.EventCount(), 1u);
}

TEST_P(StoreConformanceTest, RevokedLeaseTakesItsKeys) {
  auto lease = store().GrantLease(30s);
  ASSERT_TRUE(lease.ok()) << lease.status().ToString();
  ASSERT_TRUE(store().Put("l/a", "x", *lease).ok());
  ASSERT_TRUE(store().Put("l/b", "x", *lease).ok());
  ASSERT_TRUE(store().Put("l/kept", "x").ok());
  auto got = store().Get("l/a");
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ((*got)->lease, *lease);
  ASSERT_TRUE(store().RevokeLease(*lease).ok());
  EXPECT_FALSE(KeyExists(store(), "l/a"));
  EXPECT_FALSE(KeyExists(store(), "l/b"));
  EXPECT_TRUE(KeyExists(store(), "l/kept"));
  EXPECT_EQ(store().KeepAlive(*lease).code(), base::StatusCode::kNotFound);
}

TEST_P(StoreConformanceTest, PutWithUnknownLeaseFails) {
  auto put = store().Put("l/orphan", "x", 0x1234567);
  EXPECT_FALSE(put.ok());
  EXPECT_FALSE(KeyExists(store(), "l/orphan"));
}

TEST_P(StoreConformanceTest, ExpiredLeaseRemovesKeysAndKeepAliveExtends) {
  auto expiring = store().GrantLease(1s);
  auto renewed = store().GrantLease(1s);
  ASSERT_TRUE(expiring.ok() && renewed.ok());
  ASSERT_TRUE(store().Put("e/expiring", "x", *expiring).ok());
  ASSERT_TRUE(store().Put("e/renewed", "x", *renewed).ok());
  auto start = std::chrono::steady_clock::now();
  bool expired = false;
  while (std::chrono::steady_clock::now() - start < 8s) {
    ASSERT_TRUE(store().KeepAlive(*renewed).ok());
    if (!KeyExists(store(), "e/expiring")) {
      expired = true;
      break;
    }
    std::this_thread::sleep_for(200ms);
  }
  EXPECT_TRUE(expired) << "key of an expired lease still there";
  EXPECT_GE(std::chrono::steady_clock::now() - start, 900ms) << "expired before its TTL";
  EXPECT_TRUE(KeyExists(store(), "e/renewed"));
  EXPECT_EQ(store().KeepAlive(*expiring).code(), base::StatusCode::kNotFound);
}

TEST_P(StoreConformanceTest, KilledLeaseHolderLosesItsKeysAfterTheTtl) {
  pid_t child = ForkChild([](Store& store) {
    auto lease = store.GrantLease(1s);
    return lease.ok() && store.Put("holder/key", "alive", *lease).ok();
  });
  ASSERT_GT(child, 0) << "child could not set up its lease";
  EXPECT_TRUE(KeyExists(store(), "holder/key"));
  KillChild(child);
  EXPECT_TRUE(Eventually([&] { return !KeyExists(store(), "holder/key"); }, 8s))
      << "the killed holder's key outlived its lease";
}

TEST_P(StoreConformanceTest, ElectionElectsExactlyOneLeader) {
  constexpr int kCandidates = 3;
  std::vector<std::unique_ptr<Store>> clients;
  std::vector<std::unique_ptr<Election>> elections;
  for (int i = 0; i < kCandidates; ++i) {
    clients.push_back(backend().Open());
    elections.push_back(std::make_unique<Election>(*clients.back(), "/sc/test/election", 5s));
  }
  std::vector<base::Status> results(kCandidates);
  std::vector<std::thread> campaigns;
  for (int i = 0; i < kCandidates; ++i) {
    campaigns.emplace_back([&, i] {
      results[i] = elections[i]->Campaign("candidate-" + std::to_string(i), 1500ms);
    });
  }
  for (auto& campaign : campaigns) campaign.join();
  int leaders = 0;
  int leader_index = -1;
  for (int i = 0; i < kCandidates; ++i) {
    if (results[i].ok()) {
      ++leaders;
      leader_index = i;
      EXPECT_TRUE(elections[i]->IsLeader());
    } else {
      EXPECT_EQ(results[i].code(), base::StatusCode::kDeadlineExceeded) << results[i].ToString();
      EXPECT_FALSE(elections[i]->IsLeader());
    }
  }
  ASSERT_EQ(leaders, 1);
  auto observed = Election::Leader(store(), "/sc/test/election");
  ASSERT_TRUE(observed.ok() && observed->has_value());
  EXPECT_EQ((*observed)->value, "candidate-" + std::to_string(leader_index));

  // The leader resigns: one of the others takes over.
  ASSERT_TRUE(elections[leader_index]->Resign().ok());
  int next = (leader_index + 1) % kCandidates;
  EXPECT_TRUE(elections[next]->Campaign("candidate-" + std::to_string(next), 3s).ok() ||
              elections[(next + 1) % kCandidates]
                  ->Campaign("candidate-" + std::to_string((next + 1) % kCandidates), 3s)
                  .ok());
}

TEST_P(StoreConformanceTest, ElectionReelectsAfterTheLeaderIsKilled) {
  pid_t child = ForkChild([](Store& store) {
    // Leaked on purpose: the child is killed while leader, as a crashed process would be.
    auto* election = new Election(store, "/sc/test/failover", std::chrono::seconds(1));
    return election->Campaign("child", 5s).ok();
  });
  ASSERT_GT(child, 0) << "child did not become leader";
  auto observed = Election::Leader(store(), "/sc/test/failover");
  ASSERT_TRUE(observed.ok() && observed->has_value());
  EXPECT_EQ((*observed)->value, "child");

  Election successor(store(), "/sc/test/failover", 5s);
  auto killed_at = std::chrono::steady_clock::now();
  KillChild(child);
  base::Status elected = successor.Campaign("parent", 10s);
  ASSERT_TRUE(elected.ok()) << elected.ToString();
  EXPECT_LT(std::chrono::steady_clock::now() - killed_at, 8s);
  observed = Election::Leader(store(), "/sc/test/failover");
  ASSERT_TRUE(observed.ok() && observed->has_value());
  EXPECT_EQ((*observed)->value, "parent");
}

}  // namespace supercluster::store::testing
