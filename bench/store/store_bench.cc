// store_bench: put, CAS and watch-delivery rates and latencies of one cluster state store
// backend (src/store), each measured next to an anchor in the same run.
//
//   (a) sequential Put, one client: puts/s, latency p50/p99
//   (b) Put from --clients threads, each with its own Store client: aggregate puts/s
//   (c) CAS increments of one contended counter by --clients clients (Get, then a Txn that
//       compares the key's mod_revision): successful increments/s and retries per increment;
//       the final counter is checked against the increments that succeeded (no lost update)
//   (d) watch delivery: one writer puts keys under a prefix while a watcher on that prefix
//       records, per key, the time from just before its Put was issued to the callback
//       seeing its revision; p50/p99 and delivered events/s. Run twice: with the watch on
//       the writer's own Store and on a second Store (another process's view).
//
// sqlite also probes the disk: a 4 KiB write in place + fdatasync, the floor under any
// durable commit on this filesystem; once as is and once with every CPU kept busy by
// lowest-priority spinners (see ProbeSync).
//
// Every put writes a value no earlier put wrote (a counter in its last bytes), so no backend
// can skip a write as a no-op. Keys cycle over 1000 per client, as state updates would.
//
// Anchors, for (a) and (b), with the same keys, values and client count:
//   sqlite: the same puts through the sqlite3 C API on a fresh file, with the settings
//           SqliteStore uses (WAL, synchronous=FULL, one BEGIN IMMEDIATE transaction per put
//           upserting one row): the floor for a durable single-row write.
//   etcd:   the same puts sent to etcd's /v3/kv/put with net::HttpClient (base64 key and
//           value in a JSON body, keep-alive): etcd's own cost without the store layer.
// ratio = store puts/s / anchor puts/s. Store and anchor alternate in two rounds (store,
// anchor, anchor, store) so a drift of the machine hits both alike. For SQLite, both files
// stay open for the whole run and their write-ahead logs are first filled to the size at
// which SQLite checkpoints and rewrites them in place: the steady state of a store in
// service (while the log still grows, every sync must also make its new size durable).
//
// Usage:
//   store_bench --backend sqlite --path /tmp/bench.db [--duration 5] [--ops 0] [--json F]
//   store_bench --backend etcd --endpoint http://127.0.0.1:2379 [...]
// bench/store/run.sh starts etcd and runs both backends (or `make bench`).
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <sched.h>
#include <sqlite3.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <latch>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "base/config.h"
#include "base/flags.h"
#include "base/status.h"
#include "net/endpoint.h"
#include "net/http_client.h"
#include "store/etcd_store.h"
#include "store/sqlite_store.h"
#include "store/store.h"

namespace supercluster::bench {
namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

constexpr int64_t kKeySpace = 1000;   // puts cycle over this many keys per client
constexpr int64_t kWarmupOps = 20;    // untimed puts per client before each measured loop
constexpr int64_t kWatchCapacity = 1 << 20;  // keys one watch run may write without --ops
constexpr auto kWatchDrainTimeout = std::chrono::seconds(10);

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

// CPU time the calling thread has used. Both stores and both anchors do a put's client-side
// work on the caller's thread, so this is the client's CPU cost of the puts it makes.
int64_t ThreadCpuNs() {
  timespec now{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  return static_cast<int64_t>(now.tv_sec) * 1'000'000'000 + now.tv_nsec;
}

struct Settings {
  std::string backend;
  std::string path;
  std::string endpoint;
  double duration_s = 5;
  int64_t ops = 0;
  int64_t clients = 4;
  int64_t value_bytes = 128;
  std::string json_path;
};

// Nearest-rank percentile of latencies in nanoseconds, as microseconds.
double PercentileUs(std::vector<int64_t>& ns, double q) {
  if (ns.empty()) return 0;
  size_t rank = static_cast<size_t>(std::ceil(q * static_cast<double>(ns.size())));
  rank = std::clamp<size_t>(rank, 1, ns.size());
  std::nth_element(ns.begin(), ns.begin() + static_cast<std::ptrdiff_t>(rank - 1), ns.end());
  return static_cast<double>(ns[rank - 1]) / 1000.0;
}

std::string MakeValue(int64_t bytes) {
  std::string value(static_cast<size_t>(bytes), 'v');
  for (size_t i = 0; i < value.size(); ++i) value[i] = static_cast<char>('a' + i % 26);
  return value;
}

// Writes a number unique in this process over the last (up to 16) bytes of `value`. Every
// put must change its row: SQLite skips the write (and so the WAL append and the sync) of
// a row whose new content is byte-for-byte the old one, which would flatter the anchor.
void Stamp(std::string& value) {
  static std::atomic<uint64_t> sequence{0};
  uint64_t number = sequence.fetch_add(1, std::memory_order_relaxed);
  size_t digits = std::min<size_t>(16, value.size());
  for (size_t i = 0; i < digits; ++i) {
    value[value.size() - 1 - i] = static_cast<char>('0' + number % 10);
    number /= 10;
  }
}

// ---- Put clients: the store and the anchors behind one interface --------------------

class Putter {
 public:
  virtual ~Putter() = default;
  virtual base::Status Put(const std::string& key, const std::string& value) = 0;
};

using PutterFactory = std::function<base::Result<std::unique_ptr<Putter>>()>;

class StorePutter : public Putter {
 public:
  explicit StorePutter(std::unique_ptr<store::Store> store) : store_(std::move(store)) {}
  base::Status Put(const std::string& key, const std::string& value) override {
    return store_->Put(key, value).status();
  }

 private:
  std::unique_ptr<store::Store> store_;
};

// The SQLite anchor: one connection, configured as src/store/sqlite_connection.cc
// configures SqliteStore's (NOMUTEX, busy timeout, synchronous=FULL, journal_size_limit,
// WAL), and one BEGIN IMMEDIATE ... COMMIT per put around a single-row upsert.
class RawSqlitePutter : public Putter {
 public:
  static base::Result<std::unique_ptr<Putter>> Open(const std::string& path) {
    std::unique_ptr<RawSqlitePutter> putter(new RawSqlitePutter());
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    if (sqlite3_open_v2(path.c_str(), &putter->db_, flags, nullptr) != SQLITE_OK) {
      return putter->Error("opening");
    }
    sqlite3_busy_timeout(putter->db_, 5000);
    for (const char* sql :
         {"PRAGMA synchronous=FULL", "PRAGMA journal_size_limit=67108864",
          "PRAGMA journal_mode=WAL",
          "CREATE TABLE IF NOT EXISTS kv (key BLOB NOT NULL UNIQUE, value BLOB NOT NULL)"}) {
      if (sqlite3_exec(putter->db_, sql, nullptr, nullptr, nullptr) != SQLITE_OK) {
        return putter->Error(sql);
      }
    }
    static constexpr const char* kUpsert =
        "INSERT INTO kv (key, value) VALUES (?1, ?2) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value";
    const char* statements[] = {"BEGIN IMMEDIATE", kUpsert, "COMMIT"};
    sqlite3_stmt** targets[] = {&putter->begin_, &putter->upsert_, &putter->commit_};
    for (int i = 0; i < 3; ++i) {
      if (sqlite3_prepare_v3(putter->db_, statements[i], -1, SQLITE_PREPARE_PERSISTENT,
                             targets[i], nullptr) != SQLITE_OK) {
        return putter->Error(statements[i]);
      }
    }
    return std::unique_ptr<Putter>(std::move(putter));
  }

  ~RawSqlitePutter() override {
    for (sqlite3_stmt* statement : {begin_, upsert_, commit_}) sqlite3_finalize(statement);
    if (db_ != nullptr) sqlite3_close_v2(db_);
  }

  base::Status Put(const std::string& key, const std::string& value) override {
    if (!Step(begin_)) return Error("BEGIN IMMEDIATE");
    sqlite3_bind_blob(upsert_, 1, key.data(), static_cast<int>(key.size()), SQLITE_STATIC);
    sqlite3_bind_blob(upsert_, 2, value.data(), static_cast<int>(value.size()),
                      SQLITE_STATIC);
    bool upserted = Step(upsert_);
    sqlite3_clear_bindings(upsert_);
    if (!upserted) {
      base::Status error = Error("upsert");
      sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
      return error;
    }
    if (!Step(commit_)) {
      base::Status error = Error("COMMIT");
      sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
      return error;
    }
    return base::Status::Ok();
  }

 private:
  RawSqlitePutter() = default;

  static bool Step(sqlite3_stmt* statement) {
    int code = sqlite3_step(statement);
    sqlite3_reset(statement);
    return code == SQLITE_DONE;
  }

  base::Status Error(const std::string& doing) const {
    return base::Unavailable("raw sqlite3 anchor: " + doing + ": " +
                             (db_ != nullptr ? sqlite3_errmsg(db_) : "no handle"));
  }

  sqlite3* db_ = nullptr;
  sqlite3_stmt* begin_ = nullptr;
  sqlite3_stmt* upsert_ = nullptr;
  sqlite3_stmt* commit_ = nullptr;
};

// Holds a SQLite file open for the whole run. SQLite deletes the write-ahead log when the
// last connection to a file closes, and a log that starts empty grows with every commit,
// so each sync must also make the new file size durable; a store in service keeps its file
// open and its log at full size, rewriting it in place after each checkpoint. This
// connection keeps that steady state across the clients that come and go between
// measurements.
class SqliteKeeper {
 public:
  static base::Result<std::unique_ptr<SqliteKeeper>> Open(const std::string& path) {
    std::unique_ptr<SqliteKeeper> keeper(new SqliteKeeper());
    keeper->wal_path_ = path + "-wal";
    if (sqlite3_open_v2(path.c_str(), &keeper->db_, SQLITE_OPEN_READWRITE, nullptr) !=
        SQLITE_OK) {
      return base::Unavailable("keeping " + path + " open: " + sqlite3_errmsg(keeper->db_));
    }
    SC_ASSIGN_OR_RETURN(int64_t page_size, keeper->ReadInt("PRAGMA page_size"));
    SC_ASSIGN_OR_RETURN(int64_t checkpoint_pages, keeper->ReadInt("PRAGMA wal_autocheckpoint"));
    // A frame is a 24-byte header and a page, after the log's 32-byte header.
    keeper->full_log_bytes_ = checkpoint_pages * (page_size + 24) + 32;
    return keeper;
  }
  ~SqliteKeeper() { sqlite3_close_v2(db_); }

  // Puts through `putter` until the log has reached the size at which SQLite checkpoints and
  // starts again from its beginning, then a few more; returns how many puts that took.
  base::Result<int64_t> FillLog(Putter& putter, const std::string& value) {
    constexpr int64_t kMaxPuts = 20000;
    constexpr int64_t kPutsAfterFull = 50;
    std::string stamped = value;
    int64_t puts = 0;
    int64_t after_full = 0;
    while (after_full < kPutsAfterFull) {
      if (puts == kMaxPuts) {
        return base::Internal(wal_path_ + " did not reach " + std::to_string(full_log_bytes_) +
                              " bytes in " + std::to_string(kMaxPuts) + " puts");
      }
      Stamp(stamped);
      SC_RETURN_IF_ERROR(putter.Put("bench/fill/" + std::to_string(puts % kKeySpace), stamped));
      ++puts;
      struct stat info {};
      if (after_full > 0 || (::stat(wal_path_.c_str(), &info) == 0 &&
                             static_cast<int64_t>(info.st_size) >= full_log_bytes_)) {
        ++after_full;
      }
    }
    return puts;
  }

 private:
  SqliteKeeper() = default;

  base::Result<int64_t> ReadInt(const char* sql) {
    sqlite3_stmt* statement = nullptr;
    if (sqlite3_prepare_v2(db_, sql, -1, &statement, nullptr) != SQLITE_OK ||
        sqlite3_step(statement) != SQLITE_ROW) {
      sqlite3_finalize(statement);
      return base::Unavailable(std::string(sql) + ": " + sqlite3_errmsg(db_));
    }
    int64_t value = sqlite3_column_int64(statement, 0);
    sqlite3_finalize(statement);
    return value;
  }

  sqlite3* db_ = nullptr;
  std::string wal_path_;
  int64_t full_log_bytes_ = 0;
};

std::string Base64(const std::string& bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  int written = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()),
                                static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(written));
  return out;
}

// The etcd anchor: POST /v3/kv/put on one kept-alive connection; only the HTTP status of
// the answer is checked.
class RawEtcdPutter : public Putter {
 public:
  explicit RawEtcdPutter(const net::Endpoint& endpoint)
      : client_(endpoint, [] {
          net::ClientOptions options = net::ClientOptions::FromConfig(base::Config::Defaults());
          options.connect_timeout = std::chrono::milliseconds(1000);
          options.request_timeout = std::chrono::milliseconds(5000);
          return options;
        }()) {
    request_.method = "POST";
    request_.target = "/v3/kv/put";
    request_.headers.Set("Content-Type", "application/json");
  }

  base::Status Put(const std::string& key, const std::string& value) override {
    request_.body = "{\"key\":\"" + Base64(key) + "\",\"value\":\"" + Base64(value) + "\"}";
    auto response = client_.Request(request_);
    if (!response.ok()) return response.status();
    if (response->status != 200) {
      return base::Unavailable("etcd /v3/kv/put: HTTP " + std::to_string(response->status) +
                               ": " + response->body);
    }
    return base::Status::Ok();
  }

 private:
  net::HttpClient client_;
  net::HttpRequest request_;
};

// ---- measuring ------------------------------------------------------------------------

struct RunStats {
  int64_t ops = 0;
  double seconds = 0;  // wall time of the measured loops, summed over rounds
  int64_t client_cpu_ns = 0;  // CPU of the client threads during the measured loops
  std::vector<int64_t> latencies_ns;

  void Add(RunStats other) {
    ops += other.ops;
    seconds += other.seconds;
    client_cpu_ns += other.client_cpu_ns;
    latencies_ns.insert(latencies_ns.end(), other.latencies_ns.begin(),
                        other.latencies_ns.end());
  }
  double Rate() const { return seconds > 0 ? static_cast<double>(ops) / seconds : 0; }
  json ToJson() {
    json out = {{"ops", ops},
                {"seconds", seconds},
                {"ops_per_second", Rate()},
                {"p50_us", PercentileUs(latencies_ns, 0.50)},
                {"p99_us", PercentileUs(latencies_ns, 0.99)}};
    if (client_cpu_ns > 0 && ops > 0) {
      out["client_cpu_us_per_op"] =
          static_cast<double>(client_cpu_ns) / 1000.0 / static_cast<double>(ops);
    }
    return out;
  }
};

// Runs `clients` threads, each with its own client from `factory`, putting keys
// "<prefix><client>/<i mod kKeySpace>" until `seconds` pass or each made `ops_cap` puts.
base::Result<RunStats> RunPuts(const PutterFactory& factory, int64_t clients,
                               const std::string& prefix, const std::string& value,
                               double seconds, int64_t ops_cap) {
  struct PerClient {
    int64_t ops = 0;
    int64_t start_ns = 0;
    int64_t end_ns = 0;
    int64_t cpu_ns = 0;
    std::vector<int64_t> latencies_ns;
    base::Status status;
  };
  std::vector<std::unique_ptr<Putter>> putters;
  for (int64_t c = 0; c < clients; ++c) {
    SC_ASSIGN_OR_RETURN(auto putter, factory());
    putters.push_back(std::move(putter));
  }
  std::vector<PerClient> results(static_cast<size_t>(clients));
  std::latch ready(clients);
  auto duration = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(seconds));
  std::vector<std::thread> threads;
  for (int64_t c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      PerClient& mine = results[static_cast<size_t>(c)];
      Putter& putter = *putters[static_cast<size_t>(c)];
      std::string base = prefix + std::to_string(c) + "/";
      std::string stamped = value;
      for (int64_t i = 0; i < kWarmupOps && mine.status.ok(); ++i) {
        Stamp(stamped);
        mine.status = putter.Put(base + std::to_string(i % kKeySpace), stamped);
      }
      ready.arrive_and_wait();
      Clock::time_point start = Clock::now();
      Clock::time_point deadline = start + duration;
      mine.start_ns = NowNs();
      int64_t cpu_start = ThreadCpuNs();
      for (int64_t i = 0; mine.status.ok() && (ops_cap == 0 || i < ops_cap); ++i) {
        std::string key = base + std::to_string(i % kKeySpace);
        Stamp(stamped);
        int64_t before = NowNs();
        mine.status = putter.Put(key, stamped);
        int64_t after = NowNs();
        if (!mine.status.ok()) break;
        mine.latencies_ns.push_back(after - before);
        ++mine.ops;
        if (Clock::now() >= deadline) break;
      }
      mine.cpu_ns = ThreadCpuNs() - cpu_start;
      mine.end_ns = NowNs();
    });
  }
  for (std::thread& thread : threads) thread.join();
  RunStats stats;
  int64_t first_start = INT64_MAX;
  int64_t last_end = 0;
  for (PerClient& result : results) {
    if (!result.status.ok()) return result.status;
    stats.ops += result.ops;
    stats.client_cpu_ns += result.cpu_ns;
    first_start = std::min(first_start, result.start_ns);
    last_end = std::max(last_end, result.end_ns);
    stats.latencies_ns.insert(stats.latencies_ns.end(), result.latencies_ns.begin(),
                              result.latencies_ns.end());
  }
  stats.seconds = static_cast<double>(last_end - first_start) / 1e9;
  return stats;
}

struct PairStats {
  RunStats ours;
  RunStats anchor;
};

// Store and anchor in two rounds, ABBA, each loop half of `seconds` (and of `ops_cap`).
base::Result<PairStats> RunPair(const PutterFactory& ours, const PutterFactory& anchor,
                                int64_t clients, const std::string& name,
                                const std::string& value, const Settings& settings) {
  PairStats pair;
  double half = settings.duration_s / 2;
  int64_t cap = settings.ops > 0 ? std::max<int64_t>(1, settings.ops / 2) : 0;
  for (int round = 0; round < 2; ++round) {
    for (int side = 0; side < 2; ++side) {
      bool run_ours = (round == 0) == (side == 0);
      std::string prefix = "bench/" + name + "/" + (run_ours ? "store" : "anchor") + "/";
      SC_ASSIGN_OR_RETURN(RunStats stats, RunPuts(run_ours ? ours : anchor, clients, prefix,
                                                  value, half, cap));
      (run_ours ? pair.ours : pair.anchor).Add(std::move(stats));
    }
  }
  return pair;
}

struct CasStats {
  int64_t increments = 0;
  int64_t failed_attempts = 0;  // Txns whose compare failed (another client was first)
  double seconds = 0;
  std::vector<int64_t> latencies_ns;  // first Get to the successful Txn, per increment
  int64_t final_value = 0;
};

base::Result<int64_t> ReadCounter(store::Store& store, const std::string& key,
                                  int64_t* mod_revision) {
  SC_ASSIGN_OR_RETURN(std::optional<store::KeyValue> kv, store.Get(key));
  if (!kv) return base::NotFound("counter " + key + " is missing");
  *mod_revision = kv->mod_revision;
  try {
    return std::stoll(kv->value);
  } catch (const std::exception&) {
    return base::DataLoss("counter " + key + " holds '" + kv->value + "'");
  }
}

base::Result<CasStats> RunCas(const std::function<base::Result<std::unique_ptr<store::Store>>()>&
                                  open,
                              const Settings& settings) {
  const std::string key = "bench/cas/counter";
  std::vector<std::unique_ptr<store::Store>> stores;
  for (int64_t c = 0; c < settings.clients; ++c) {
    SC_ASSIGN_OR_RETURN(auto store, open());
    stores.push_back(std::move(store));
  }
  SC_RETURN_IF_ERROR(stores[0]->Put(key, "0").status());

  struct PerClient {
    int64_t increments = 0;
    int64_t failed = 0;
    int64_t start_ns = 0;
    int64_t end_ns = 0;
    std::vector<int64_t> latencies_ns;
    base::Status status;
  };
  std::vector<PerClient> results(static_cast<size_t>(settings.clients));
  std::latch ready(settings.clients);
  auto duration = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(settings.duration_s));
  auto increment = [&](store::Store& store, PerClient& mine) -> base::Status {
    while (true) {
      int64_t revision = 0;
      SC_ASSIGN_OR_RETURN(int64_t value, ReadCounter(store, key, &revision));
      store::Compare compare;
      compare.kind = store::Compare::Kind::kModRevisionEquals;
      compare.key = key;
      compare.revision = revision;
      store::Operation put;
      put.kind = store::Operation::Kind::kPut;
      put.key = key;
      put.value = std::to_string(value + 1);
      SC_ASSIGN_OR_RETURN(store::TxnResult result, store.Txn({compare}, {put}));
      if (result.succeeded) return base::Status::Ok();
      ++mine.failed;
    }
  };
  std::vector<std::thread> threads;
  for (int64_t c = 0; c < settings.clients; ++c) {
    threads.emplace_back([&, c] {
      PerClient& mine = results[static_cast<size_t>(c)];
      store::Store& store = *stores[static_cast<size_t>(c)];
      ready.arrive_and_wait();
      Clock::time_point deadline = Clock::now() + duration;
      mine.start_ns = NowNs();
      while (settings.ops == 0 || mine.increments < settings.ops) {
        int64_t before = NowNs();
        mine.status = increment(store, mine);
        if (!mine.status.ok()) break;
        mine.latencies_ns.push_back(NowNs() - before);
        ++mine.increments;
        if (Clock::now() >= deadline) break;
      }
      mine.end_ns = NowNs();
    });
  }
  for (std::thread& thread : threads) thread.join();

  CasStats stats;
  int64_t first_start = INT64_MAX;
  int64_t last_end = 0;
  for (PerClient& result : results) {
    if (!result.status.ok()) return result.status;
    stats.increments += result.increments;
    stats.failed_attempts += result.failed;
    first_start = std::min(first_start, result.start_ns);
    last_end = std::max(last_end, result.end_ns);
    stats.latencies_ns.insert(stats.latencies_ns.end(), result.latencies_ns.begin(),
                              result.latencies_ns.end());
  }
  stats.seconds = static_cast<double>(last_end - first_start) / 1e9;
  int64_t revision = 0;
  SC_ASSIGN_OR_RETURN(stats.final_value, ReadCounter(*stores[0], key, &revision));
  if (stats.final_value != stats.increments) {
    return base::Internal("CAS counter is " + std::to_string(stats.final_value) + " after " +
                          std::to_string(stats.increments) + " successful increments");
  }
  return stats;
}

struct WatchStats {
  int64_t written = 0;
  int64_t delivered = 0;
  int64_t duplicates = 0;
  int64_t out_of_order = 0;
  double write_seconds = 0;
  double delivery_seconds = 0;  // first Put issued to the last event seen
  std::vector<int64_t> latencies_ns;
};

// One writer puts "<prefix><index>" as fast as it can; a watch on the prefix (on the
// writer's store, or on `watcher` when given) stamps each index when it arrives.
base::Result<WatchStats> RunWatch(store::Store& writer, store::Store& watcher,
                                  const std::string& prefix, const std::string& value,
                                  const Settings& settings) {
  int64_t capacity = settings.ops > 0 ? settings.ops : kWatchCapacity;
  std::vector<std::atomic<int64_t>> issued_ns(static_cast<size_t>(capacity));
  std::vector<int64_t> seen_ns(static_cast<size_t>(capacity), 0);
  std::vector<uint8_t> seen_count(static_cast<size_t>(capacity), 0);
  std::mutex mutex;
  std::condition_variable changed;
  bool ready = false;
  int64_t delivered = 0;
  int64_t duplicates = 0;
  int64_t out_of_order = 0;
  int64_t last_revision = 0;
  base::Status watch_status;

  // Every key written after this revision is delivered, however late the watch starts.
  SC_ASSIGN_OR_RETURN(int64_t start_revision, writer.Put(prefix + "start", value));
  auto callback = [&](const std::vector<store::WatchEvent>& events, const base::Status& status) {
    int64_t now = NowNs();
    std::lock_guard lock(mutex);
    if (!status.ok()) {
      watch_status = status;
      changed.notify_all();
      return;
    }
    for (const store::WatchEvent& event : events) {
      if (event.kv.mod_revision <= last_revision) ++out_of_order;
      last_revision = event.kv.mod_revision;
      std::string_view name = std::string_view(event.kv.key).substr(prefix.size());
      if (name == "ready") {
        ready = true;
        continue;
      }
      if (name.empty() || name.find_first_not_of("0123456789") != std::string_view::npos) {
        continue;
      }
      int64_t index = std::stoll(std::string(name));
      if (index >= capacity) continue;
      size_t slot = static_cast<size_t>(index);
      if (seen_count[slot]++ > 0) {
        ++duplicates;
        continue;
      }
      seen_ns[slot] = now;
      ++delivered;
    }
    changed.notify_all();
  };
  SC_ASSIGN_OR_RETURN(std::unique_ptr<store::Watch> watch,
                      watcher.WatchPrefix(prefix, start_revision + 1, callback));
  SC_RETURN_IF_ERROR(writer.Put(prefix + "ready", value).status());
  {
    std::unique_lock lock(mutex);
    if (!changed.wait_for(lock, kWatchDrainTimeout, [&] { return ready || !watch_status.ok(); })) {
      return base::DeadlineExceeded("the watch did not deliver its first event within 10 s");
    }
    if (!watch_status.ok()) return watch_status;
  }

  WatchStats stats;
  auto duration = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(settings.duration_s));
  Clock::time_point deadline = Clock::now() + duration;
  int64_t first_issued = NowNs();
  int64_t write_end = first_issued;
  std::string stamped = value;
  for (int64_t i = 0; i < capacity; ++i) {
    Stamp(stamped);
    std::string key = prefix + std::to_string(i);
    issued_ns[static_cast<size_t>(i)].store(NowNs(), std::memory_order_release);
    SC_RETURN_IF_ERROR(writer.Put(key, stamped).status());
    ++stats.written;
    write_end = NowNs();
    if (Clock::now() >= deadline) break;
  }
  stats.write_seconds = static_cast<double>(write_end - first_issued) / 1e9;
  {
    std::unique_lock lock(mutex);
    changed.wait_for(lock, kWatchDrainTimeout,
                     [&] { return delivered >= stats.written || !watch_status.ok(); });
  }
  watch->Cancel();
  std::lock_guard lock(mutex);
  if (!watch_status.ok()) return watch_status;
  stats.delivered = delivered;
  stats.duplicates = duplicates;
  stats.out_of_order = out_of_order;
  int64_t last_seen = first_issued;
  for (int64_t i = 0; i < stats.written; ++i) {
    size_t slot = static_cast<size_t>(i);
    if (seen_count[slot] == 0) continue;
    stats.latencies_ns.push_back(seen_ns[slot] -
                                 issued_ns[slot].load(std::memory_order_acquire));
    last_seen = std::max(last_seen, seen_ns[slot]);
  }
  stats.delivery_seconds = static_cast<double>(last_seen - first_issued) / 1e9;
  return stats;
}

// The floor under every durable write on this disk: a WAL-frame-sized write (4 KiB page +
// 24-byte header) into an already allocated file, then fdatasync, as SQLite does per commit
// once its log is at full size. `count` rounds on a scratch file next to the database. With
// `spin`, one thread per CPU busy-loops meanwhile at SCHED_IDLE priority, so the CPUs do not
// go idle yet the probe's thread runs the moment it wakes: on a virtual machine whose idle
// vCPU notices an I/O completion only at the host's next timer tick, the difference between
// the two probes is that wake-up, not the disk.
base::Result<RunStats> ProbeSync(const std::string& path, int64_t count, bool spin) {
  std::atomic<bool> spinning{spin};
  std::vector<std::thread> spinners;
  struct StopSpinners {
    std::atomic<bool>& flag;
    std::vector<std::thread>& threads;
    ~StopSpinners() {
      flag.store(false);
      for (std::thread& thread : threads) thread.join();
    }
  } stop_spinners{spinning, spinners};
  for (unsigned cpu = 0; spin && cpu < std::max(1u, std::thread::hardware_concurrency()); ++cpu) {
    spinners.emplace_back([&spinning] {
      sched_param lowest{};
      pthread_setschedparam(pthread_self(), SCHED_IDLE, &lowest);
      while (spinning.load(std::memory_order_relaxed)) {
      }
    });
  }

  constexpr size_t kFrameBytes = 4096 + 24;
  constexpr size_t kFileBytes = 256 * kFrameBytes;
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return base::Unavailable("opening " + path + ": " + std::strerror(errno));
  std::string zeros(kFileBytes, '\0');
  std::string frame(kFrameBytes, 'f');
  RunStats stats;
  base::Status status;
  if (::pwrite(fd, zeros.data(), zeros.size(), 0) != static_cast<ssize_t>(zeros.size()) ||
      ::fsync(fd) != 0) {
    status = base::Unavailable("preparing " + path + ": " + std::strerror(errno));
  }
  int64_t start = NowNs();
  for (int64_t i = 0; status.ok() && i < count; ++i) {
    off_t offset = static_cast<off_t>((static_cast<size_t>(i) % 255) * kFrameBytes);
    int64_t before = NowNs();
    if (::pwrite(fd, frame.data(), frame.size(), offset) != static_cast<ssize_t>(frame.size()) ||
        ::fdatasync(fd) != 0) {
      status = base::Unavailable("writing " + path + ": " + std::strerror(errno));
      break;
    }
    stats.latencies_ns.push_back(NowNs() - before);
    ++stats.ops;
  }
  stats.seconds = static_cast<double>(NowNs() - start) / 1e9;
  ::close(fd);
  ::unlink(path.c_str());
  if (!status.ok()) return status;
  return stats;
}

// ---- the run --------------------------------------------------------------------------

void Report(const std::string& line) { std::cerr << "store_bench: " << line << std::endl; }

std::string Fixed(double value, int digits) {
  char text[64];
  std::snprintf(text, sizeof text, "%.*f", digits, value);
  return text;
}

json PairJson(PairStats& pair) {
  json out = {{"store", pair.ours.ToJson()}, {"anchor", pair.anchor.ToJson()}};
  out["ratio"] = pair.anchor.Rate() > 0 ? pair.ours.Rate() / pair.anchor.Rate() : 0.0;
  return out;
}

json WatchJson(WatchStats& stats) {
  return {{"written", stats.written},
          {"delivered", stats.delivered},
          {"missing", stats.written - stats.delivered},
          {"duplicates", stats.duplicates},
          {"out_of_order", stats.out_of_order},
          {"writer_puts_per_second",
           stats.write_seconds > 0 ? static_cast<double>(stats.written) / stats.write_seconds
                                   : 0.0},
          {"delivered_per_second", stats.delivery_seconds > 0
                                       ? static_cast<double>(stats.delivered) /
                                             stats.delivery_seconds
                                       : 0.0},
          {"p50_us", PercentileUs(stats.latencies_ns, 0.50)},
          {"p99_us", PercentileUs(stats.latencies_ns, 0.99)}};
}

base::Status Run(const Settings& settings) {
  std::function<base::Result<std::unique_ptr<store::Store>>()> open_store;
  PutterFactory anchor;
  json description;
  std::string value = MakeValue(settings.value_bytes);
  if (settings.backend == "sqlite") {
    if (settings.path.empty()) return base::InvalidArgument("--backend sqlite needs --path");
    std::string anchor_path = settings.path + ".anchor";
    for (const std::string& file : {settings.path, anchor_path}) {
      for (const char* suffix : {"", "-wal", "-shm"}) ::unlink((file + suffix).c_str());
    }
    open_store = [&]() -> base::Result<std::unique_ptr<store::Store>> {
      store::SqliteStoreOptions options;
      options.path = settings.path;
      SC_ASSIGN_OR_RETURN(auto store, store::SqliteStore::Open(options));
      return std::unique_ptr<store::Store>(std::move(store));
    };
    anchor = [anchor_path] { return RawSqlitePutter::Open(anchor_path); };
    description = {{"target", settings.path},
                   {"store", "SqliteStore, default options (WAL, synchronous=FULL)"},
                   {"anchor", "sqlite3 C API on " + anchor_path +
                                  ": WAL, synchronous=FULL, BEGIN IMMEDIATE + one-row "
                                  "upsert + COMMIT per put"}};
  } else if (settings.backend == "etcd") {
    if (settings.endpoint.empty()) return base::InvalidArgument("--backend etcd needs --endpoint");
    SC_ASSIGN_OR_RETURN(net::Endpoint endpoint, net::ParseEndpoint(settings.endpoint));
    open_store = [&]() -> base::Result<std::unique_ptr<store::Store>> {
      store::EtcdStoreOptions options;
      options.endpoints = {settings.endpoint};
      SC_ASSIGN_OR_RETURN(auto store, store::EtcdStore::Open(options));
      return std::unique_ptr<store::Store>(std::move(store));
    };
    anchor = [endpoint]() -> base::Result<std::unique_ptr<Putter>> {
      return std::unique_ptr<Putter>(new RawEtcdPutter(endpoint));
    };
    description = {{"target", settings.endpoint},
                   {"store", "EtcdStore, default options"},
                   {"anchor", "POST /v3/kv/put with net::HttpClient, keep-alive, one "
                              "connection per client"}};
  } else {
    return base::InvalidArgument("--backend must be sqlite or etcd, not '" + settings.backend +
                                 "'");
  }
  PutterFactory ours = [&]() -> base::Result<std::unique_ptr<Putter>> {
    SC_ASSIGN_OR_RETURN(auto store, open_store());
    return std::unique_ptr<Putter>(new StorePutter(std::move(store)));
  };

  // SQLite: both files open for the whole run, their logs filled to steady state first.
  std::vector<std::unique_ptr<SqliteKeeper>> keepers;
  json fill;
  if (settings.backend == "sqlite") {
    for (auto [name, factory, path] :
         {std::tuple{"store", &ours, settings.path},
          std::tuple{"anchor", &anchor, settings.path + ".anchor"}}) {
      SC_ASSIGN_OR_RETURN(auto putter, (*factory)());
      SC_ASSIGN_OR_RETURN(auto keeper, SqliteKeeper::Open(path));
      SC_ASSIGN_OR_RETURN(int64_t puts, keeper->FillLog(*putter, value));
      Report(std::string(name) + ": " + std::to_string(puts) +
             " puts to fill the write-ahead log before measuring");
      fill[name] = puts;
      keepers.push_back(std::move(keeper));
    }
  }

  json out = {{"backend", settings.backend},
              {"description", description},
              {"sqlite_version", sqlite3_libversion()},
              {"settings",
               {{"duration_s", settings.duration_s},
                {"ops", settings.ops},
                {"clients", settings.clients},
                {"value_bytes", settings.value_bytes},
                {"key_space_per_client", kKeySpace},
                {"warmup_puts_per_client", kWarmupOps}}}};
  if (!fill.is_null()) out["settings"]["log_fill_puts"] = fill;

  if (settings.backend == "sqlite") {
    for (bool spin : {false, true}) {
      SC_ASSIGN_OR_RETURN(RunStats sync, ProbeSync(settings.path + ".sync", 200, spin));
      const char* name = spin ? "sync_probe_busy_cpu" : "sync_probe";
      out[name] = sync.ToJson();
      out[name]["what"] = std::string("pwrite of 4120 bytes in place + fdatasync, next to the "
                                      "database") +
                          (spin ? ", while one SCHED_IDLE thread per CPU spins" : "");
      Report(std::string(name) + ": " + out[name].dump());
    }
  }

  Report(settings.backend + ": (a) sequential puts, store vs anchor");
  SC_ASSIGN_OR_RETURN(PairStats sequential, RunPair(ours, anchor, 1, "seq", value, settings));
  out["put_sequential"] = PairJson(sequential);
  Report("  " + out["put_sequential"].dump());

  Report(settings.backend + ": (b) puts from " + std::to_string(settings.clients) +
         " clients, store vs anchor");
  SC_ASSIGN_OR_RETURN(PairStats concurrent,
                      RunPair(ours, anchor, settings.clients, "conc", value, settings));
  out["put_concurrent"] = PairJson(concurrent);
  Report("  " + out["put_concurrent"].dump());

  Report(settings.backend + ": (c) CAS increments by " + std::to_string(settings.clients) +
         " clients");
  SC_ASSIGN_OR_RETURN(CasStats cas, RunCas(open_store, settings));
  double cas_rate = cas.seconds > 0 ? static_cast<double>(cas.increments) / cas.seconds : 0;
  out["cas"] = {{"increments", cas.increments},
                {"failed_attempts", cas.failed_attempts},
                {"retries_per_increment",
                 cas.increments > 0 ? static_cast<double>(cas.failed_attempts) /
                                          static_cast<double>(cas.increments)
                                    : 0.0},
                {"increments_per_second", cas_rate},
                {"final_counter", cas.final_value},
                {"p50_us", PercentileUs(cas.latencies_ns, 0.50)},
                {"p99_us", PercentileUs(cas.latencies_ns, 0.99)}};
  Report("  " + out["cas"].dump());

  {
    Report(settings.backend + ": (d) watch delivery, watch on the writer's store");
    SC_ASSIGN_OR_RETURN(auto store, open_store());
    SC_ASSIGN_OR_RETURN(WatchStats same,
                        RunWatch(*store, *store, "bench/watch/same/", value, settings));
    out["watch_same_client"] = WatchJson(same);
    Report("  " + out["watch_same_client"].dump());
  }
  {
    Report(settings.backend + ": (d) watch delivery, watch on a second store");
    SC_ASSIGN_OR_RETURN(auto writer, open_store());
    SC_ASSIGN_OR_RETURN(auto watcher, open_store());
    SC_ASSIGN_OR_RETURN(WatchStats other,
                        RunWatch(*writer, *watcher, "bench/watch/other/", value, settings));
    out["watch_separate_client"] = WatchJson(other);
    Report("  " + out["watch_separate_client"].dump());
  }

  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
  };
  out["process_cpu_seconds"] = {{"user", seconds(usage.ru_utime)},
                                {"system", seconds(usage.ru_stime)}};

  // A short table for a person running the binary by hand; run.sh prints the combined one.
  auto row = [](const std::string& name, double rate, double p50, double p99,
                const std::string& extra) {
    std::printf("%-34s %12s %10s %10s  %s\n", name.c_str(), Fixed(rate, 0).c_str(),
                Fixed(p50, 0).c_str(), Fixed(p99, 0).c_str(), extra.c_str());
  };
  std::printf("%-34s %12s %10s %10s\n", (settings.backend + " backend").c_str(), "ops/s",
              "p50 us", "p99 us");
  for (const char* name : {"put_sequential", "put_concurrent"}) {
    const json& pair = out[name];
    row(std::string(name) + " store", pair["store"]["ops_per_second"], pair["store"]["p50_us"],
        pair["store"]["p99_us"], "ratio " + Fixed(pair["ratio"].get<double>(), 2));
    row(std::string(name) + " anchor", pair["anchor"]["ops_per_second"],
        pair["anchor"]["p50_us"], pair["anchor"]["p99_us"], "");
  }
  row("cas increments", out["cas"]["increments_per_second"], out["cas"]["p50_us"],
      out["cas"]["p99_us"],
      "retries/increment " + Fixed(out["cas"]["retries_per_increment"].get<double>(), 2));
  for (const char* name : {"watch_same_client", "watch_separate_client"}) {
    const json& watch = out[name];
    row(name, watch["delivered_per_second"], watch["p50_us"], watch["p99_us"],
        "delivered " + std::to_string(watch["delivered"].get<int64_t>()) + "/" +
            std::to_string(watch["written"].get<int64_t>()));
  }
  std::fflush(stdout);

  if (!settings.json_path.empty()) {
    std::ofstream file(settings.json_path);
    file << out.dump(2) << "\n";
    if (!file) return base::Unavailable("cannot write " + settings.json_path);
  }
  for (const char* name : {"watch_same_client", "watch_separate_client"}) {
    const json& watch = out[name];
    if (watch["missing"].get<int64_t>() != 0 || watch["duplicates"].get<int64_t>() != 0 ||
        watch["out_of_order"].get<int64_t>() != 0) {
      return base::Internal(std::string(name) + ": watch delivery was not exactly once in order: " +
                            watch.dump());
    }
  }
  return base::Status::Ok();
}

}  // namespace
}  // namespace supercluster::bench

int main(int argc, char** argv) {
  using supercluster::bench::Settings;
  Settings settings;
  supercluster::base::FlagSet flags(
      "store_bench --backend sqlite --path FILE | --backend etcd --endpoint URL [flags]");
  flags.AddString("backend", &settings.backend, "sqlite or etcd");
  flags.AddString("path", &settings.path,
                  "sqlite: the database file (recreated; the anchor uses FILE.anchor)");
  flags.AddString("endpoint", &settings.endpoint, "etcd: client URL, e.g. http://127.0.0.1:2379");
  flags.AddDouble("duration", &settings.duration_s,
                  "seconds per measurement (store and anchor get half each, twice)");
  flags.AddInt("ops", &settings.ops,
               "also stop a measurement after this many operations per client (0: no limit)");
  flags.AddInt("clients", &settings.clients, "concurrent clients for (b) and (c)");
  flags.AddInt("value-bytes", &settings.value_bytes, "bytes per value");
  flags.AddString("json", &settings.json_path, "also write the results as JSON to this file");
  std::vector<std::string> args(argv + 1, argv + argc);
  supercluster::base::Status parsed = flags.Parse(args);
  if (flags.help_requested()) {
    std::cout << flags.Help();
    return 0;
  }
  if (parsed.ok() && (settings.duration_s <= 0 || settings.ops < 0 || settings.clients < 1 ||
                      settings.value_bytes < 1)) {
    parsed = supercluster::base::InvalidArgument(
        "--duration, --clients and --value-bytes must be positive, --ops not negative");
  }
  if (!parsed.ok()) {
    std::cerr << "store_bench: " << parsed.message() << "\n" << flags.Help();
    return 2;
  }
  supercluster::base::Status status = supercluster::bench::Run(settings);
  if (!status.ok()) {
    std::cerr << "store_bench: FAIL: " << status.ToString() << "\n";
    return 1;
  }
  return 0;
}
