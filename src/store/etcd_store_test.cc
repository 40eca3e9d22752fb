// Tests EtcdStore against real etcd processes (etcd_test_cluster.h): the store conformance
// suite on one shared etcd, then the etcd-specific behaviour and its faults — compaction,
// a restart in the middle of a watch, a three-member cluster losing a member, auth and TLS,
// unreachable endpoints — and a fake "etcd" (an HttpServer) answering malformed JSON.
#include "store/etcd_store.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "base/config.h"
#include "net/http_server.h"
#include "store/etcd_test_certificates.h"
#include "store/etcd_test_cluster.h"
#include "store/watch_recorder.h"
#include "store/store_test_backend.h"

namespace supercluster::store::testing {

using namespace std::chrono_literals;

namespace {

// One etcd for every test of this program that does not need its own: starting one takes
// about a second. Started on first use from the main thread; killed at exit.
base::Result<EtcdTestCluster*> SharedCluster() {
  static std::unique_ptr<EtcdTestCluster> cluster;
  static base::Status failure;
  if (!cluster && failure.ok()) {
    auto started = EtcdTestCluster::Start({});
    if (started.ok()) {
      cluster = std::move(*started);
    } else {
      failure = started.status();
    }
  }
  if (!cluster) return failure;
  return cluster.get();
}

// Watch threads end on their own after Cancel(); tests wait for that rather than sleep.
bool WatchThreadsFinish(int expected = 0, std::chrono::milliseconds timeout = 5s) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (EtcdStore::RunningWatchThreads() > expected) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

}  // namespace

// The conformance suite's way to the shared etcd: SetUp() empties it (revisions keep
// growing, which the suite does not mind).
class EtcdTestBackend : public StoreTestBackend {
 public:
  std::string Name() const override { return "etcd"; }

  void SetUp() override {
    auto cluster = SharedCluster();
    ASSERT_TRUE(cluster.ok()) << cluster.status().ToString();
    cluster_ = *cluster;
    // key "\0" with range_end "\0" is every key.
    auto wiped = cluster_->Post(0, "/v3/kv/deleterange", R"({"key":"AA==","range_end":"AA=="})");
    ASSERT_TRUE(wiped.ok()) << wiped.status().ToString();
  }

  void TearDown() override {
    EXPECT_TRUE(WatchThreadsFinish()) << "a watch thread outlived its test";
  }

  std::unique_ptr<Store> Open() override {
    if (cluster_ == nullptr) return nullptr;
    auto store = EtcdStore::Open(cluster_->StoreOptions());
    if (!store.ok()) return nullptr;
    return std::move(*store);
  }

 private:
  EtcdTestCluster* cluster_ = nullptr;
};

INSTANTIATE_TEST_SUITE_P(Etcd, StoreConformanceTest,
                         ::testing::Values(std::make_shared<EtcdTestBackend>()), BackendName);

namespace {


std::unique_ptr<EtcdStore> OpenOrDie(const EtcdStoreOptions& options) {
  auto store = EtcdStore::Open(options);
  EXPECT_TRUE(store.ok()) << store.status().ToString();
  return store.ok() ? std::move(*store) : nullptr;
}

// Repeats `operation` until it succeeds or `timeout` passes: for the first call after a
// fault, which may land while etcd is still electing a leader.
template <class Operation>
bool SucceedsWithin(std::chrono::milliseconds timeout, Operation operation) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (operation()) return true;
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(20ms);
  }
}

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// --- etcd-specific behaviour, on the shared etcd ---

class EtcdStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto cluster = SharedCluster();
    ASSERT_TRUE(cluster.ok()) << cluster.status().ToString();
    cluster_ = *cluster;
    auto wiped = cluster_->Post(0, "/v3/kv/deleterange", R"({"key":"AA==","range_end":"AA=="})");
    ASSERT_TRUE(wiped.ok()) << wiped.status().ToString();
    store_ = OpenOrDie(cluster_->StoreOptions());
    ASSERT_NE(store_, nullptr);
  }
  void TearDown() override { EXPECT_TRUE(WatchThreadsFinish()); }

  EtcdTestCluster* cluster_ = nullptr;
  std::unique_ptr<EtcdStore> store_;
};

TEST_F(EtcdStoreTest, WatchOfCompactedHistoryEndsWithDataLoss) {
  auto first = store_->Put("compact/a", "1");
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  auto last = store_->Put("compact/a", "2");
  ASSERT_TRUE(last.ok());
  auto compacted = cluster_->Post(
      0, "/v3/kv/compaction", R"({"revision":")" + std::to_string(*last) + R"(","physical":true})");
  ASSERT_TRUE(compacted.ok()) << compacted.status().ToString();

  WatchRecorder log;
  auto watch = store_->WatchPrefix("compact/", *first, log.Callback());
  ASSERT_TRUE(watch.ok()) << watch.status().ToString();
  ASSERT_TRUE(log.WaitForError());
  EXPECT_EQ(log.FinalStatus()->code(), base::StatusCode::kDataLoss)
      << log.FinalStatus()->ToString();
  EXPECT_TRUE(Contains(log.FinalStatus()->message(), "compacted")) << log.FinalStatus()->message();
  EXPECT_TRUE(log.Batches().empty());

  auto old_read = store_->Range("compact/", {.revision = *first});
  ASSERT_FALSE(old_read.ok());
  EXPECT_EQ(old_read.status().code(), base::StatusCode::kDataLoss);
  // From the compaction revision on, history is still there.
  WatchRecorder recent;
  auto from_last = store_->WatchPrefix("compact/", *last, recent.Callback());
  ASSERT_TRUE(from_last.ok());
  EXPECT_TRUE(recent.WaitForRevision(*last));
}

TEST_F(EtcdStoreTest, CancelInsideTheCallbackStopsDelivery) {
  std::atomic<int> calls{0};
  std::atomic<Watch*> watch_pointer{nullptr};
  auto callback = [&](const std::vector<WatchEvent>&, const base::Status&) {
    calls.fetch_add(1);
    watch_pointer.load()->Cancel();
  };
  // Nothing is written under the prefix before the watch is stored, so the callback
  // always finds it.
  auto watch = store_->WatchPrefix("cancel-inside/", 0, callback);
  ASSERT_TRUE(watch.ok());
  watch_pointer.store(watch->get());
  ASSERT_TRUE(store_->Put("cancel-inside/1", "x").ok());
  ASSERT_TRUE(SucceedsWithin(5s, [&] { return calls.load() >= 1; }));
  ASSERT_TRUE(store_->Put("cancel-inside/2", "x").ok());
  // The watch thread must end without delivering the second write.
  EXPECT_TRUE(WatchThreadsFinish());
  EXPECT_EQ(calls.load(), 1);
}

TEST_F(EtcdStoreTest, WatchFromNowSkipsEarlierWrites) {
  ASSERT_TRUE(store_->Put("now/before", "x").ok());
  WatchRecorder log;
  auto watch = store_->WatchPrefix("now/", 0, log.Callback());
  ASSERT_TRUE(watch.ok());
  auto after = store_->Put("now/after", "y");
  ASSERT_TRUE(after.ok());
  ASSERT_TRUE(log.WaitForRevision(*after));
  ASSERT_EQ(log.Batches().size(), 1u);
  EXPECT_EQ(log.Batches()[0][0].kv.key, "now/after");
}

TEST_F(EtcdStoreTest, RejectsBadArgumentsAndUnknownLeases) {
  EXPECT_EQ(store_->Get("").status().code(), base::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->Put("", "x").status().code(), base::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->Range("x", {.limit = -1}).status().code(), base::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->GrantLease(0s).status().code(), base::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->WatchPrefix("x", -1, [](auto&, auto&) {}).status().code(),
            base::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->KeepAlive(0x7654321).code(), base::StatusCode::kNotFound);
  EXPECT_EQ(store_->RevokeLease(0x7654321).code(), base::StatusCode::kNotFound);
  EXPECT_EQ(store_->Put("lease/unknown", "x", 0x7654321).status().code(),
            base::StatusCode::kNotFound);
  auto future = store_->Range("x", {.revision = int64_t{1} << 60});
  EXPECT_EQ(future.status().code(), base::StatusCode::kInvalidArgument)
      << future.status().ToString();
}

TEST_F(EtcdStoreTest, EnforcesTheSameLimitsAsSqliteStore) {
  std::string longest(EtcdStore::kMaxKeyBytes, 'k');
  EXPECT_TRUE(store_->Put(longest, "x").ok());
  auto too_long = store_->Put(longest + "k", "x");
  EXPECT_EQ(too_long.status().code(), base::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->Range(longest + "k").status().code(), base::StatusCode::kInvalidArgument);
  std::string big(EtcdStore::kMaxValueBytes + 1, 'v');
  EXPECT_EQ(store_->Put("big", big).status().code(), base::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->Put("negative-lease", "x", -1).status().code(),
            base::StatusCode::kInvalidArgument);

  std::vector<Operation> many(EtcdStore::kMaxTxnOperations + 1);
  for (size_t i = 0; i < many.size(); ++i)
    many[i] = {Operation::Kind::kPut, "many/" + std::to_string(i), "x", 0};
  EXPECT_EQ(store_->Txn({}, many).status().code(), base::StatusCode::kInvalidArgument);
  many.pop_back();
  auto most = store_->Txn({}, many);
  EXPECT_TRUE(most.ok()) << most.status().ToString();
  // etcd itself refuses a transaction that writes one key twice.
  auto twice = store_->Txn(
      {}, {{Operation::Kind::kPut, "twice", "1", 0}, {Operation::Kind::kPut, "twice", "2", 0}});
  EXPECT_EQ(twice.status().code(), base::StatusCode::kInvalidArgument) << twice.status().ToString();
}

TEST_F(EtcdStoreTest, BinaryPrefixesSelectExactlyTheirKeys) {
  std::string high = "\xff\xff";
  ASSERT_TRUE(store_->Put(high + "a", "1").ok());
  ASSERT_TRUE(store_->Put(high + "\xff", "2").ok());
  ASSERT_TRUE(store_->Put("\xfe\xff", "3").ok());
  auto range = store_->Range(high);
  ASSERT_TRUE(range.ok()) << range.status().ToString();
  ASSERT_EQ(range->kvs.size(), 2u);
  EXPECT_EQ(range->kvs[0].key, high + "a");
  EXPECT_EQ(range->kvs[1].key, high + "\xff");
}

TEST(EtcdStoreOptionsTest, OpenChecksTheOptions) {
  EtcdStoreOptions options;
  EXPECT_EQ(EtcdStore::Open(options).status().code(), base::StatusCode::kInvalidArgument)
      << "no endpoints";
  options.endpoints = {"http://127.0.0.1:2379", "not a url:x"};
  EXPECT_EQ(EtcdStore::Open(options).status().code(), base::StatusCode::kInvalidArgument);
  options.endpoints = {"http://127.0.0.1:2379"};
  options.request_timeout = 0ms;
  EXPECT_EQ(EtcdStore::Open(options).status().code(), base::StatusCode::kInvalidArgument);
  options.request_timeout = 1s;
  options.password = "secret";
  EXPECT_EQ(EtcdStore::Open(options).status().code(), base::StatusCode::kInvalidArgument)
      << "password, no user";
}

// --- Faults, each on a cluster of its own ---

// etcd is SIGKILLed in the middle of a watch while a writer keeps writing, then started
// again on the same data and ports: the watch must resume and deliver every revision once.
TEST(EtcdFaultTest, RestartMidWatchLosesAndRepeatsNothing) {
  auto cluster = EtcdTestCluster::Start({});
  ASSERT_TRUE(cluster.ok()) << cluster.status().ToString();
  EtcdStoreOptions options = (*cluster)->StoreOptions();
  options.request_timeout = 1s;
  auto store = OpenOrDie(options);
  ASSERT_NE(store, nullptr);
  auto start = store->Put("start", "x");
  ASSERT_TRUE(start.ok());

  WatchRecorder log;
  auto watch = store->WatchPrefix("w/", *start + 1, log.Callback());
  ASSERT_TRUE(watch.ok());

  constexpr int kWrites = 80;
  constexpr int kWritesBeforeKill = 20;
  std::atomic<int> written{0};
  std::atomic<int> failures{0};
  std::atomic<bool> killed{false};
  std::mutex revisions_mutex;
  std::map<int64_t, std::string> written_revisions;  // revision -> key, for writes that said so
  std::thread writer([&] {
    auto deadline = std::chrono::steady_clock::now() + 30s;
    for (int i = 0; i < kWrites && std::chrono::steady_clock::now() < deadline; ++i) {
      // The writer pauses until etcd is down, so that it surely writes into the outage.
      while (i == kWritesBeforeKill && !killed.load() &&
             std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(1ms);
      }
      std::string key = "w/" + std::to_string(i);
      auto revision = store->Put(key, std::to_string(i));
      if (!revision.ok()) {  // etcd is down: write it again (it may also have landed)
        failures.fetch_add(1);
        --i;
        std::this_thread::sleep_for(10ms);
        continue;
      }
      std::lock_guard lock(revisions_mutex);
      written_revisions[*revision] = key;
      written.store(i + 1);
    }
  });
  ASSERT_TRUE(SucceedsWithin(10s, [&] { return written.load() >= kWritesBeforeKill; }));
  // Kill etcd in the middle of the watch: after it delivered the writes so far.
  int64_t delivered_before_kill = 0;
  {
    std::lock_guard lock(revisions_mutex);
    delivered_before_kill = written_revisions.rbegin()->first;
  }
  ASSERT_TRUE(log.WaitForRevision(delivered_before_kill));
  ASSERT_TRUE((*cluster)->Kill(0).ok());
  killed.store(true);
  ASSERT_TRUE(SucceedsWithin(10s, [&] { return failures.load() > 0; }));
  ASSERT_TRUE((*cluster)->Restart(0).ok());
  writer.join();
  ASSERT_EQ(written.load(), kWrites);

  auto now = store->Range("w/");
  ASSERT_TRUE(now.ok());
  int64_t last = now->revision;
  ASSERT_TRUE(log.WaitForRevision(last, 15s)) << "the watch did not catch up to revision " << last;

  // Only the writer wrote after `start`, so the watch must have delivered exactly the
  // revisions start+1 .. last, each once, in order (writes whose answer was lost included).
  std::vector<int64_t> expected;
  for (int64_t revision = *start + 1; revision <= last; ++revision) expected.push_back(revision);
  EXPECT_EQ(log.Revisions(), expected);
  for (const auto& batch : log.Batches()) {
    ASSERT_EQ(batch.size(), 1u);
    auto known = written_revisions.find(batch[0].kv.mod_revision);
    if (known != written_revisions.end()) {
      EXPECT_EQ(batch[0].kv.key, known->second);
    }
  }
  EXPECT_FALSE(log.FinalStatus().has_value()) << log.FinalStatus()->ToString();
}

// Writes and reads keep working through an EtcdStore that lists all members, with one of
// them killed — the first in the list, then another — and a watch keeps delivering.
TEST(EtcdFaultTest, ThreeMemberClusterServesWithOneMemberKilled) {
  auto cluster = EtcdTestCluster::Start({.members = 3, .tls = std::nullopt});
  ASSERT_TRUE(cluster.ok()) << cluster.status().ToString();
  auto store = OpenOrDie((*cluster)->StoreOptions());
  ASSERT_NE(store, nullptr);
  auto start = store->Put("k/start", "x");
  ASSERT_TRUE(start.ok()) << start.status().ToString();
  WatchRecorder log;
  auto watch = store->WatchPrefix("k/", *start + 1, log.Callback());
  ASSERT_TRUE(watch.ok());

  std::set<int64_t> written;
  auto serves = [&](const std::string& phase) {
    // The first write may meet an election (when the leader was killed); after one
    // success, every call must succeed.
    std::string key = "k/" + phase + "/first";
    EXPECT_TRUE(SucceedsWithin(20s, [&] {
      auto revision = store->Put(key, "x");
      if (revision.ok()) written.insert(*revision);
      return revision.ok();
    })) << phase;
    for (int i = 0; i < 20; ++i) {
      std::string each = "k/" + phase + "/" + std::to_string(i);
      auto revision = store->Put(each, std::to_string(i));
      ASSERT_TRUE(revision.ok()) << phase << ": " << revision.status().ToString();
      written.insert(*revision);
      auto read = store->Get(each);
      ASSERT_TRUE(read.ok()) << phase << ": " << read.status().ToString();
      ASSERT_TRUE(read->has_value());
      EXPECT_EQ((*read)->value, std::to_string(i));
    }
  };

  ASSERT_TRUE((*cluster)->Kill(0).ok());
  serves("without-first");
  ASSERT_TRUE((*cluster)->Restart(0).ok());
  ASSERT_TRUE((*cluster)->Kill(1).ok());
  serves("without-second");

  ASSERT_TRUE(log.WaitForRevision(*written.rbegin(), 15s));
  std::vector<int64_t> delivered = log.Revisions();
  EXPECT_TRUE(std::is_sorted(delivered.begin(), delivered.end()));
  EXPECT_EQ(std::set<int64_t>(delivered.begin(), delivered.end()).size(), delivered.size());
  for (int64_t revision : written)
    EXPECT_TRUE(std::binary_search(delivered.begin(), delivered.end(), revision)) << revision;
}

TEST(EtcdAuthTest, LogsInAndLogsInAgainAfterEtcdForgetsTheToken) {
  auto cluster = EtcdTestCluster::Start({});
  ASSERT_TRUE(cluster.ok()) << cluster.status().ToString();
  ASSERT_TRUE((*cluster)->EnableAuth("root-password").ok());
  EtcdStoreOptions options = (*cluster)->StoreOptions();

  auto anonymous = OpenOrDie(options);
  auto refused = anonymous->Get("a");
  EXPECT_EQ(refused.status().code(), base::StatusCode::kPermissionDenied)
      << refused.status().ToString();

  options.username = "root";
  options.password = "wrong";
  auto wrong = OpenOrDie(options);
  auto denied = wrong->Put("a", "x");
  EXPECT_EQ(denied.status().code(), base::StatusCode::kPermissionDenied)
      << denied.status().ToString();

  options.password = "root-password";
  auto store = OpenOrDie(options);
  ASSERT_TRUE(store->Put("auth/1", "x").ok());
  WatchRecorder log;
  auto watch = store->WatchPrefix("auth/", 0, log.Callback());
  ASSERT_TRUE(watch.ok()) << watch.status().ToString();
  auto second = store->Put("auth/2", "y");
  ASSERT_TRUE(second.ok());
  ASSERT_TRUE(log.WaitForRevision(*second));

  // A restarted etcd has forgotten every simple token: the store and the watch must log
  // in again without the caller noticing.
  ASSERT_TRUE((*cluster)->Kill(0).ok());
  ASSERT_TRUE((*cluster)->Restart(0).ok());
  auto third = store->Put("auth/3", "z");
  ASSERT_TRUE(third.ok()) << third.status().ToString();
  ASSERT_TRUE(log.WaitForRevision(*third))
      << (log.FinalStatus() ? log.FinalStatus()->ToString() : "");
  EXPECT_EQ(log.Revisions(), (std::vector<int64_t>{*second, *third}));
}

TEST(EtcdTlsTest, MutualTlsWorksAndWrongTrustFails) {
  std::string directory =
      std::filesystem::temp_directory_path() / ("sc-etcd-tls-" + std::to_string(::getpid()));
  std::filesystem::create_directories(directory);
  struct Cleanup {
    std::string path;
    ~Cleanup() { std::filesystem::remove_all(path); }
  } cleanup{directory};
  auto certificates = WriteTestCertificates(directory);
  ASSERT_TRUE(certificates.ok()) << certificates.status().ToString();
  auto cluster = EtcdTestCluster::Start({.members = 1, .tls = *certificates});
  ASSERT_TRUE(cluster.ok()) << cluster.status().ToString();
  EtcdStoreOptions options = (*cluster)->StoreOptions();
  ASSERT_EQ(options.endpoints[0].rfind("https://", 0), 0u);

  auto store = OpenOrDie(options);
  auto put = store->Put("tls/1", "x");
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  WatchRecorder log;
  auto watch = store->WatchPrefix("tls/", *put, log.Callback());
  ASSERT_TRUE(watch.ok());
  ASSERT_TRUE(log.WaitForRevision(*put));

  EtcdStoreOptions no_client_certificate = options;
  no_client_certificate.tls.certificate_file.clear();
  no_client_certificate.tls.private_key_file.clear();
  EXPECT_FALSE(OpenOrDie(no_client_certificate)->Get("tls/1").ok());

  EtcdStoreOptions wrong_trust = options;
  wrong_trust.tls.ca_file = certificates->unrelated_ca_file;
  auto untrusted = OpenOrDie(wrong_trust)->Get("tls/1");
  EXPECT_EQ(untrusted.status().code(), base::StatusCode::kUnavailable);
  EXPECT_TRUE(Contains(untrusted.status().message(), "TLS")) << untrusted.status().message();

  EtcdStoreOptions missing_file = options;
  missing_file.tls.ca_file = directory + "/missing.pem";
  EXPECT_EQ(OpenOrDie(missing_file)->Get("tls/1").status().code(),
            base::StatusCode::kInvalidArgument);
}

// --- No etcd at all ---

// A TCP port on 127.0.0.1 that accepts connections (the kernel completes them) but never
// answers: a hung member.
class SilentListener {
 public:
  SilentListener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof(address);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
        ::listen(fd_, 16) == 0 &&
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
      port_ = ntohs(address.sin_port);
    }
  }
  ~SilentListener() { ::close(fd_); }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

// Ports nothing listens on: bound (all at once, so they differ), then closed.
std::vector<std::string> RefusingUrls(int count) {
  std::vector<std::unique_ptr<SilentListener>> listeners;
  std::vector<std::string> urls;
  for (int i = 0; i < count; ++i) {
    listeners.push_back(std::make_unique<SilentListener>());
    urls.push_back(listeners.back()->url());
  }
  return urls;
}

TEST(EtcdUnreachableTest, FailsWithinTheTimeoutsNamingEveryEndpoint) {
  SilentListener silent;
  std::vector<std::string> refusing = RefusingUrls(2);
  const std::string& refused_a = refusing[0];
  const std::string& refused_b = refusing[1];
  EtcdStoreOptions options;
  options.endpoints = {refused_a, silent.url(), refused_b};
  options.connect_timeout = 300ms;
  options.request_timeout = 300ms;
  auto store = OpenOrDie(options);

  auto started = std::chrono::steady_clock::now();
  auto read = store->Get("k");
  auto elapsed = std::chrono::steady_clock::now() - started;
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.status().code(), base::StatusCode::kUnavailable);
  for (const std::string& url : options.endpoints) {
    EXPECT_TRUE(Contains(read.status().message(), url))
        << url << " missing in " << read.status().message();
  }
  // One timeout for the silent member, almost nothing for the refusing ones.
  EXPECT_LT(elapsed, 2s);

  // A write that reached the silent member may have been applied: no other member is tried.
  options.endpoints = {silent.url(), refused_a};
  auto write = OpenOrDie(options)->Put("k", "v");
  ASSERT_FALSE(write.ok());
  EXPECT_EQ(write.status().code(), base::StatusCode::kUnavailable);
  EXPECT_TRUE(Contains(write.status().message(), "may or may not have been applied"))
      << write.status().message();

  // A write that reached no member fails over through all of them.
  options.endpoints = {refused_a, refused_b};
  auto refused = OpenOrDie(options)->Put("k", "v");
  ASSERT_FALSE(refused.ok());
  EXPECT_TRUE(Contains(refused.status().message(), refused_a) &&
              Contains(refused.status().message(), refused_b))
      << refused.status().message();

  auto watch_now = OpenOrDie(options)->WatchPrefix("k", 0, [](auto&, auto&) {});
  EXPECT_EQ(watch_now.status().code(), base::StatusCode::kUnavailable);
  // A watch from a given revision keeps trying in the background until cancelled.
  auto watch_later = OpenOrDie(options)->WatchPrefix("k", 5, [](auto&, auto&) {});
  ASSERT_TRUE(watch_later.ok());
  watch_later->reset();
  EXPECT_TRUE(WatchThreadsFinish(0, 2s));
}

// --- A fake etcd answering malformed JSON ---

// An HttpServer on 127.0.0.1 that answers every etcd path with one configured answer; the
// watch path streams it.
class FakeEtcd {
 public:
  FakeEtcd() {
    auto router = std::make_shared<net::HttpRouter>();
    for (const char* path :
         {"/v3/kv/range", "/v3/kv/put", "/v3/kv/deleterange", "/v3/kv/txn", "/v3/lease/grant",
          "/v3/lease/keepalive", "/v3/lease/revoke", "/v3/auth/authenticate"}) {
      router->Handle("POST", path,
                     [this](net::HttpRequest, std::shared_ptr<net::Responder> responder) {
                       std::lock_guard lock(mutex_);
                       net::HttpResponse response = net::HttpResponse::Json(status_, body_);
                       responder->Send(response);
                     });
    }
    router->Handle("POST", "/v3/watch",
                   [this](net::HttpRequest, std::shared_ptr<net::Responder> responder) {
                     std::lock_guard lock(mutex_);
                     ++watch_requests_;
                     responder->StartStream(status_, {});
                     responder->Write(body_);
                     responder->Finish();
                   });
    net::ServerOptions options = net::ServerOptions::FromConfig(base::Config::Defaults());
    server_ = std::make_unique<net::HttpServer>(options, router);
    auto endpoint = net::ParseEndpoint("127.0.0.1:0");
    EXPECT_TRUE(endpoint.ok() && server_->Listen(*endpoint).ok() && server_->Start().ok());
    url_ = "http://127.0.0.1:" + std::to_string(server_->BoundEndpoints().at(0).port);
  }
  ~FakeEtcd() { server_->Stop(); }

  void Answer(int status, std::string body) {
    std::lock_guard lock(mutex_);
    status_ = status;
    body_ = std::move(body);
  }
  int watch_requests() {
    std::lock_guard lock(mutex_);
    return watch_requests_;
  }
  EtcdStoreOptions StoreOptions() const {
    EtcdStoreOptions options;
    options.endpoints = {url_};
    options.connect_timeout = 500ms;
    options.request_timeout = 1s;
    options.watch_idle_timeout = 1s;
    options.max_response_bytes = 1 << 20;
    return options;
  }

 private:
  std::mutex mutex_;
  int status_ = 200;
  std::string body_;
  int watch_requests_ = 0;
  std::unique_ptr<net::HttpServer> server_;
  std::string url_;
};

struct MalformedAnswer {
  std::string name;
  int status;
  std::string body;
  // The body is well-formed for calls that do not read keys, which then succeed.
  bool only_key_reads_fail = false;
};

void PrintTo(const MalformedAnswer& answer, std::ostream* out) { *out << answer.name; }

class EtcdMalformedAnswerTest : public ::testing::TestWithParam<MalformedAnswer> {};

TEST_P(EtcdMalformedAnswerTest, EveryCallFailsCleanly) {
  FakeEtcd fake;
  fake.Answer(GetParam().status, GetParam().body);
  auto store = OpenOrDie(fake.StoreOptions());
  std::vector<base::Status> statuses = {
      store->Get("k").status(),
      store->Range("k").status(),
      store->Put("k", "v").status(),
      store->Delete("k").status(),
      store->Txn({{Compare::Kind::kExists, "k", "", 0}}, {}).status(),
      store->GrantLease(5s).status(),
      store->KeepAlive(7),
      store->WatchPrefix("k", 0, [](auto&, auto&) {}).status(),
  };
  // Get and Range read keys; the rest, the watch's start included, do not.
  std::set<size_t> key_reads = {0, 1};
  for (size_t i = 0; i < statuses.size(); ++i) {
    if (GetParam().only_key_reads_fail && !key_reads.count(i)) continue;
    EXPECT_FALSE(statuses[i].ok()) << "call " << i;
    EXPECT_FALSE(statuses[i].message().empty()) << "call " << i;
    EXPECT_NE(statuses[i].code(), base::StatusCode::kInternal) << statuses[i].ToString();
  }
  base::Status revoked = store->RevokeLease(7);
  if (!GetParam().only_key_reads_fail) {
    EXPECT_FALSE(revoked.ok());
  }
}

INSTANTIATE_TEST_SUITE_P(
    Answers, EtcdMalformedAnswerTest,
    ::testing::Values(
        MalformedAnswer{"NotJson", 200, "<html>hello</html>"}, MalformedAnswer{"Empty", 200, ""},
        MalformedAnswer{"Truncated", 200, R"({"header":{"revision":"5"},"kvs":[{"key":"YQ==")"},
        MalformedAnswer{"RevisionOverflowsInt64", 200,
                        R"({"header":{"revision":"99999999999999999999999"}})"},
        MalformedAnswer{"NumberOverflowsDouble", 200, R"({"header":{"revision":1e999}})"},
        MalformedAnswer{"NegativeRevision", 200,
                        R"({"header":{"revision":"-1"},"deleted":"-4","ID":"-1"})"},
        MalformedAnswer{"TopLevelArray", 200, "[1,2,3]"},
        MalformedAnswer{"WrongTypes", 200,
                        R"({"header":{"revision":true},"kvs":{"a":1},"succeeded":"yes",)"
                        R"("ID":[],"TTL":{},"result":7})"},
        MalformedAnswer{"BadBase64", 200, R"({"header":{"revision":"5"},"kvs":[{"key":"!!!"}]})",
                        true},
        MalformedAnswer{"DeepNesting", 200, std::string(100000, '[')},
        MalformedAnswer{"NotUtf8", 200, "{\"header\":{\"revision\":\"\xff\xfe\"}}"},
        MalformedAnswer{"HtmlBadGateway", 502, "<html>502 Bad Gateway</html>"},
        MalformedAnswer{"ErrorWithoutCode", 500, R"({"error":1,"code":"x"})"},
        MalformedAnswer{"ErrorWithHugeCode", 400, R"({"code":1e300,"message":"x"})"}),
    [](const ::testing::TestParamInfo<MalformedAnswer>& info) { return info.param.name; });

TEST(EtcdMalformedWatchTest, GarbageInTheStreamEndsTheWatchWithDataLoss) {
  FakeEtcd fake;
  for (const std::string& stream :
       {std::string("{\"result\":{\"created\":true}}\nnot json at all"),
        std::string("{\"result\":{\"events\":[{\"kv\":{\"key\":\"!!\"}}]}}"),
        std::string("{\"result\":{\"events\":\"many\"}}"),
        "{\"result\":{\"header\":{},\"x\":\"" + std::string(100000, 'x') + "\"}}"}) {
    fake.Answer(200, stream);
    EtcdStoreOptions options = fake.StoreOptions();
    options.max_response_bytes = 50000;  // below the last stream's one object
    auto store = OpenOrDie(options);
    WatchRecorder log;
    auto watch = store->WatchPrefix("k", 3, log.Callback());
    ASSERT_TRUE(watch.ok());
    ASSERT_TRUE(log.WaitForError()) << stream.substr(0, 60);
    EXPECT_EQ(log.FinalStatus()->code(), base::StatusCode::kDataLoss)
        << log.FinalStatus()->ToString();
    EXPECT_TRUE(log.Batches().empty());
  }
  EXPECT_TRUE(WatchThreadsFinish());
}

TEST(EtcdMalformedWatchTest, EventsAtOrBelowTheDeliveredRevisionAreNotRepeated) {
  FakeEtcd fake;
  // A stream that (wrongly) repeats revision 5 and goes back to 4, then ends; every
  // reconnection gets the same, so revision 5 and 6 must each be delivered exactly once.
  auto event = [](int revision) {
    return R"({"kv":{"key":"a3g=","mod_revision":")" + std::to_string(revision) +
           R"(","value":"eA=="}})";
  };
  fake.Answer(200, R"({"result":{"created":true}})"
                   R"({"result":{"events":[)" +
                       event(5) + "," + event(5) + "]}}" + R"({"result":{"events":[)" + event(4) +
                       "," + event(6) + "]}}");
  auto store = OpenOrDie(fake.StoreOptions());
  WatchRecorder log;
  auto watch = store->WatchPrefix("k", 5, log.Callback());
  ASSERT_TRUE(watch.ok());
  ASSERT_TRUE(log.WaitForRevision(6));
  // The stream ends after each answer; let the watch reopen it a few times.
  ASSERT_TRUE(SucceedsWithin(5s, [&] { return fake.watch_requests() >= 4; }));
  EXPECT_EQ(log.Revisions(), (std::vector<int64_t>{5, 6}));
  ASSERT_EQ(log.Batches()[0].size(), 2u) << "one revision's events arrive together";
  watch->reset();
  EXPECT_TRUE(WatchThreadsFinish());
}

}  // namespace
}  // namespace supercluster::store::testing
