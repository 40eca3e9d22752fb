// The router's choice of upstream (a worker, or another region's router) and what it
// remembers about each one:
//
// - Load: power of two choices over (outstanding + 1) x peak-EWMA latency. Peak EWMA: a
//   sample above the current estimate replaces it at once (a slowdown is believed at once),
//   a sample below it pulls it down with time constant `ewma_decay` (a recovery is believed
//   slowly). Latency samples are time to the response head, which is what queueing shows in.
// - Outlier ejection (passive): `failures_to_eject` consecutive failures (a 5xx from the
//   upstream, a connect error, a timeout) eject it for base_ejection_time x times ejected,
//   capped at max_ejection_time. When that time is over it is let back on probation: one
//   more failure ejects it again (for longer), a success ends probation.
// - Health (active checks, health_checker.h): `health_failures_to_mark_down` failed checks
//   in a row, or one connect error, mark it down; one passing check marks it up again.
//   The checks also measure the round-trip time, by which the global tier orders regions.
// - The retry budget (retry_budget.h).
//
// An upstream is known by an id string (the router uses "region/instance" for workers and
// "region" for peer routers). Callers: RouterService (proxy.cc, health_checker.cc).
// Threading: every method is thread-safe. What every proxied request calls (Pick,
// PickAndStart, OnStart, OnFirstStart, and OnFinish with a success) takes no lock: it finds
// the entries through a copy of the list that each thread keeps (made again when an id is
// added or dropped) and reads and writes their numbers as relaxed atomics, so the only
// memory it shares with the other io threads is the entry it picks (its requests in flight
// and latency) and none of it waits. The rest (failures, ejection, probation's end,
// health checks, NearestAndStart, the retry budget's retries) takes one lock, held
// briefly, that spins a little before it sleeps (base::AdaptiveMutex). Two threads may
// update one entry's latency estimate at once and one of the updates is then lost: an
// estimate can afford it.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/adaptive_mutex.h"
#include "base/thread_slot.h"
#include "router/retry_budget.h"

namespace supercluster::router {

struct BalancerOptions {
  std::chrono::milliseconds ewma_decay{10000};
  // The latency assumed for an upstream that has not answered yet.
  std::chrono::milliseconds initial_latency{20};
  int failures_to_eject = 5;
  std::chrono::milliseconds base_ejection_time{5000};
  std::chrono::milliseconds max_ejection_time{60000};
  int health_failures_to_mark_down = 2;
  RetryBudgetOptions retry_budget;
};

// How one exchange with an upstream ended, as far as the balancer cares.
enum class Outcome {
  kSuccess,    // the upstream answered (any status below 500)
  kFailure,    // 5xx other than a saturated 503, connect error, timeout, broken stream
  kSaturated,  // 503 from a worker: busy, not broken; neither success nor failure
  kAbandoned,  // the client went away or we cancelled; says nothing about the upstream
};

// What a health check saw.
enum class HealthCheckResult { kPassed, kFailed, kConnectFailed };

struct UpstreamState {
  std::string id;
  int64_t outstanding = 0;
  double ewma_ms = 0;
  bool ejected = false;
  int64_t ejection_remaining_ms = 0;
  int64_t times_ejected = 0;
  int consecutive_failures = 0;
  bool healthy = true;
  double rtt_ms = -1;  // from health checks; -1 until one passed
};

class Balancer {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;
  using Clock = std::function<TimePoint()>;
  using Random = std::function<uint64_t()>;

  // Empty `clock`: base::CoarseNow, the steady clock up to a scheduler tick behind, read at
  // a fifth of the cost (two reads per proxied request). Its times only set ejections,
  // retry budget windows and the EWMA's decay, all of seconds; a decay measured in whole
  // ticks adds up to the same. Latency samples come from the caller. Empty `random`: a
  // seeded std::mt19937_64 per thread (one shared engine would be one more cache line that
  // every io thread writes per request). Both are called without a lock, from any thread
  // that calls the balancer: a `random` shared between threads must be thread-safe.
  explicit Balancer(BalancerOptions options, Clock clock = {}, Random random = {});

  // Forgets every upstream not in `ids` (upstreams are otherwise added on first mention).
  void Retain(const std::vector<std::string>& ids);

  // Whether `id` may get traffic now: not ejected and not marked down.
  bool Available(const std::string& id);

  // Power of two choices among the available `candidates`: one of them (the view itself), or
  // nullopt when none is available.
  std::optional<std::string_view> Pick(const std::vector<std::string_view>& candidates);
  // Pick, then OnFirstStart (`first_try`) or OnStart of the one picked.
  std::optional<std::string_view> PickAndStart(const std::vector<std::string_view>& candidates,
                                               bool first_try);
  // The global tier's choice: the available candidate with the shortest measured round
  // trip (one not measured yet after all measured ones; a tie to the earlier in
  // `candidates`), counted as started like PickAndStart's when `start`; nullopt when none
  // is available. One lock for what took a lock per candidate and one more to start.
  std::optional<std::string_view> NearestAndStart(const std::vector<std::string_view>& candidates,
                                                  bool start, bool first_try);

  // An exchange with `id` starts / ends. `time_to_head` is the latency sample (used only
  // for kSuccess). OnFirstStart is OnStart for a client request's first try: it also counts
  // the request for the retry budget.
  void OnStart(const std::string& id);
  void OnFirstStart(const std::string& id);
  void OnFinish(const std::string& id, Outcome outcome, std::chrono::nanoseconds time_to_head);

  // Returns true when this check marked a healthy upstream down.
  bool OnHealthCheck(const std::string& id, HealthCheckResult result,
                     std::chrono::nanoseconds round_trip);

  // Retry budget: ask for a retry (OnFirstStart counts the requests).
  bool TryRetry();

  // The measured round-trip time of `id` in ms, or -1 if none yet.
  double RoundTripMs(const std::string& id);
  int64_t Outstanding(const std::string& id);

  std::vector<UpstreamState> States();

  // Called (outside the lock) each time an upstream is ejected; for metrics and logs.
  void SetEjectionObserver(std::function<void(const std::string& id)> observer);

 private:
  // An upstream's numbers. The per-request ones are atomics written without the lock;
  // the rest is written under mutex_ (those read per request are atomics too).
  struct Entry {
    static constexpr int64_t kNoSample = INT64_MIN;
    // Written per request, without the lock:
    std::atomic<int64_t> outstanding{0};
    std::atomic<double> ewma_ms{0};
    std::atomic<int64_t> last_sample_ns{kNoSample};  // steady-clock ns of the last sample
    std::atomic<int> consecutive_failures{0};
    // Written under mutex_, read per request:
    std::atomic<bool> on_probation{false};
    std::atomic<int64_t> ejected_until_ns{0};  // steady-clock ns
    std::atomic<bool> healthy{true};
    // Under mutex_ only:
    int64_t times_ejected = 0;
    int consecutive_health_failures = 0;
    double rtt_ms = -1;
  };
  using EntryMap = std::map<std::string, std::shared_ptr<Entry>, std::less<>>;

  // A thread's copy of entries_ (see ThreadEntries). Holding the entries' shared_ptrs keeps
  // an entry that Retain dropped alive until the thread next looks.
  struct ThreadEntries {
    uint64_t generation = 0;  // of entries_ when copied; 0 for none
    EntryMap entries;
  };

  // The calling thread's copy of entries_, copied again under the lock when generation_
  // moved since. Each thread keeps copies for the last few balancers it used.
  ThreadEntries& ThreadEntriesNow();
  // `id`'s entry from `copy`, or added (to entries_ and to `copy`) under the lock. Entries
  // found through one copy stay valid until the thread's next ThreadEntriesNow.
  Entry& EntryOnThisThread(ThreadEntries& copy, std::string_view id);
  // Power of two choices among the candidates available at `now`, without the lock.
  std::optional<std::pair<std::string_view, Entry*>> PickOnThisThread(
      const std::vector<std::string_view>& candidates, TimePoint now);
  void Start(Entry& entry, bool first_try, TimePoint now);
  void RecordSuccess(Entry& entry, TimePoint now, std::chrono::nanoseconds time_to_head);

  Entry& EntryFor(std::string_view id);  // requires mutex_
  static bool Available(const Entry& entry, TimePoint now);
  static double Cost(const Entry& entry);
  // rtt_ms, with "not measured yet" after every measured time. Requires mutex_.
  static double RoundTripOrder(const Entry& entry);
  // Returns true when this failure ejected the upstream. Requires mutex_.
  bool RecordFailureLocked(Entry& entry, TimePoint now);

  const BalancerOptions options_;
  Clock clock_;
  Random random_;
  const uint64_t thread_slot_owner_ = base::NewThreadSlotOwnerId();  // of ThreadEntries
  base::AdaptiveMutex mutex_;
  EntryMap entries_;                       // guarded by mutex_
  std::atomic<uint64_t> generation_{1};    // moves (under mutex_) when entries_ gains or loses an id
  RetryBudget retry_budget_;               // RecordRequest anywhere; the rest under mutex_
  std::function<void(const std::string&)> ejection_observer_;  // guarded by mutex_
};

}  // namespace supercluster::router
