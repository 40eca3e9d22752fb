#include "router/balancer.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <memory>
#include <mutex>
#include <random>

#include "base/coarse_clock.h"

namespace supercluster::router {
namespace {

double Milliseconds(std::chrono::nanoseconds duration) {
  return std::chrono::duration<double, std::milli>(duration).count();
}

int64_t Nanoseconds(Balancer::TimePoint time) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(time.time_since_epoch()).count();
}

constexpr auto kRelaxed = std::memory_order_relaxed;

}  // namespace

Balancer::Balancer(BalancerOptions options, Clock clock, Random random)
    : options_(options),
      clock_(std::move(clock)),
      random_(std::move(random)),
      retry_budget_(options.retry_budget) {
  if (!clock_) clock_ = [] { return base::CoarseNow(); };
  if (!random_) {
    random_ = [] {
      thread_local std::mt19937_64 engine{std::random_device{}()};
      return engine();
    };
  }
}

// --- Entries: the shared list and each thread's copy of it ---

Balancer::Entry& Balancer::EntryFor(std::string_view id) {
  auto it = entries_.find(id);
  if (it == entries_.end()) {
    auto entry = std::make_shared<Entry>();
    entry->ewma_ms.store(Milliseconds(options_.initial_latency), kRelaxed);
    it = entries_.emplace(std::string(id), std::move(entry)).first;
    generation_.fetch_add(1, std::memory_order_release);
  }
  return *it->second;
}

Balancer::ThreadEntries& Balancer::ThreadEntriesNow() {
  // A router's io thread uses two balancers (workers', regions'); a few slots spare a copy
  // each time it switches. A fresh slot's generation 0 is never generation_'s.
  ThreadEntries& copy = base::ThreadSlotOf<ThreadEntries, 4>(thread_slot_owner_);
  if (copy.generation != generation_.load(std::memory_order_acquire)) {
    std::lock_guard<base::AdaptiveMutex> lock(mutex_);
    copy.entries = entries_;
    copy.generation = generation_.load(kRelaxed);
  }
  return copy;
}

Balancer::Entry& Balancer::EntryOnThisThread(ThreadEntries& copy, std::string_view id) {
  auto found = copy.entries.find(id);
  if (found != copy.entries.end()) return *found->second;
  // New to this balancer (or dropped by Retain and mentioned again). Added to the copy
  // without copying the rest again, so that entries this call found before stay valid;
  // the copy's generation is now behind, and the next call copies the list anew.
  std::lock_guard<base::AdaptiveMutex> lock(mutex_);
  EntryFor(id);
  const std::shared_ptr<Entry>& entry = entries_.find(id)->second;
  return *copy.entries.insert_or_assign(std::string(id), entry).first->second;
}

void Balancer::Retain(const std::vector<std::string>& ids) {
  std::lock_guard<base::AdaptiveMutex> lock(mutex_);
  bool dropped = false;
  for (auto it = entries_.begin(); it != entries_.end();) {
    if (std::find(ids.begin(), ids.end(), it->first) == ids.end()) {
      it = entries_.erase(it);
      dropped = true;
    } else {
      ++it;
    }
  }
  if (dropped) generation_.fetch_add(1, std::memory_order_release);
}

// --- The per-request path: no lock ---

bool Balancer::Available(const Entry& entry, TimePoint now) {
  return entry.healthy.load(kRelaxed) && Nanoseconds(now) >= entry.ejected_until_ns.load(kRelaxed);
}

double Balancer::Cost(const Entry& entry) {
  return static_cast<double>(entry.outstanding.load(kRelaxed) + 1) *
         std::max(entry.ewma_ms.load(kRelaxed), 1e-3);
}

std::optional<std::pair<std::string_view, Balancer::Entry*>> Balancer::PickOnThisThread(
    const std::vector<std::string_view>& candidates, TimePoint now) {
  ThreadEntries& copy = ThreadEntriesNow();
  // The list's room is kept from pick to pick on each thread, so that a pick allocates
  // nothing; its entries are stale outside the call.
  thread_local std::vector<std::pair<std::string_view, Entry*>> available;
  available.clear();
  for (std::string_view id : candidates) {
    Entry& entry = EntryOnThisThread(copy, id);
    if (Available(entry, now)) available.emplace_back(id, &entry);
  }
  if (available.empty()) return std::nullopt;
  if (available.size() == 1) return available[0];
  size_t first = static_cast<size_t>(random_() % available.size());
  size_t second = static_cast<size_t>(random_() % (available.size() - 1));
  if (second >= first) ++second;  // two distinct choices
  const auto& a = available[first];
  const auto& b = available[second];
  return Cost(*a.second) <= Cost(*b.second) ? a : b;
}

void Balancer::Start(Entry& entry, bool first_try, TimePoint now) {
  entry.outstanding.fetch_add(1, kRelaxed);
  if (first_try) retry_budget_.RecordRequest(now);
}

std::optional<std::string_view> Balancer::Pick(const std::vector<std::string_view>& candidates) {
  auto picked = PickOnThisThread(candidates, clock_());
  if (!picked) return std::nullopt;
  return picked->first;
}

std::optional<std::string_view> Balancer::PickAndStart(
    const std::vector<std::string_view>& candidates, bool first_try) {
  const TimePoint now = clock_();  // one clock read for the pick and the budget
  auto picked = PickOnThisThread(candidates, now);
  if (!picked) return std::nullopt;
  Start(*picked->second, first_try, now);
  return picked->first;
}

void Balancer::OnStart(const std::string& id) {
  Start(EntryOnThisThread(ThreadEntriesNow(), id), /*first_try=*/false, TimePoint{});
}

void Balancer::OnFirstStart(const std::string& id) {
  Start(EntryOnThisThread(ThreadEntriesNow(), id), /*first_try=*/true, clock_());
}

void Balancer::RecordSuccess(Entry& entry, TimePoint now, std::chrono::nanoseconds time_to_head) {
  const double sample = Milliseconds(time_to_head);
  const int64_t last_sample_ns = entry.last_sample_ns.load(kRelaxed);
  double ewma = entry.ewma_ms.load(kRelaxed);
  if (last_sample_ns == Entry::kNoSample || sample >= ewma) {
    ewma = sample;
  } else {
    double elapsed_ms = static_cast<double>(Nanoseconds(now) - last_sample_ns) / 1e6;
    double tau_ms = std::max(1.0, static_cast<double>(options_.ewma_decay.count()));
    double keep = std::exp(-std::max(0.0, elapsed_ms) / tau_ms);
    ewma = ewma * keep + sample * (1 - keep);
  }
  entry.ewma_ms.store(ewma, kRelaxed);
  entry.last_sample_ns.store(Nanoseconds(now), kRelaxed);
  // Read before written: the usual success writes nothing more.
  if (entry.consecutive_failures.load(kRelaxed) != 0) entry.consecutive_failures.store(0, kRelaxed);
  if (entry.on_probation.load(kRelaxed) && Nanoseconds(now) >= entry.ejected_until_ns.load(kRelaxed)) {
    std::lock_guard<base::AdaptiveMutex> lock(mutex_);
    const int64_t ejected_until_ns = entry.ejected_until_ns.load(kRelaxed);
    if (entry.on_probation.load(kRelaxed) && Nanoseconds(now) >= ejected_until_ns) {
      entry.on_probation.store(false, kRelaxed);
      // Long good behaviour since the last ejection forgets the earlier ones.
      const auto since = std::chrono::nanoseconds(Nanoseconds(now) - ejected_until_ns);
      if (since > options_.max_ejection_time) entry.times_ejected = 0;
    }
  }
}

// --- Failures, health checks and the rest: under the lock ---

bool Balancer::RecordFailureLocked(Entry& entry, TimePoint now) {
  const int failures = entry.consecutive_failures.fetch_add(1, kRelaxed) + 1;
  if (Nanoseconds(now) < entry.ejected_until_ns.load(kRelaxed)) return false;  // already out
  if (!entry.on_probation.load(kRelaxed) && failures < options_.failures_to_eject) return false;
  ++entry.times_ejected;
  auto ejection = options_.base_ejection_time * entry.times_ejected;
  const TimePoint until =
      now + std::min<std::chrono::milliseconds>(
                std::chrono::duration_cast<std::chrono::milliseconds>(ejection),
                options_.max_ejection_time);
  entry.ejected_until_ns.store(Nanoseconds(until), kRelaxed);
  entry.on_probation.store(true, kRelaxed);  // when it comes back
  entry.consecutive_failures.store(0, kRelaxed);
  return true;
}

void Balancer::OnFinish(const std::string& id, Outcome outcome,
                        std::chrono::nanoseconds time_to_head) {
  const TimePoint now = clock_();
  Entry& entry = EntryOnThisThread(ThreadEntriesNow(), id);
  // One fewer in flight, never below none (an entry made anew by Retain and a mention
  // since then finishes requests it never started).
  int64_t outstanding = entry.outstanding.load(kRelaxed);
  while (outstanding > 0 &&
         !entry.outstanding.compare_exchange_weak(outstanding, outstanding - 1, kRelaxed)) {
  }
  switch (outcome) {
    case Outcome::kSuccess:
      RecordSuccess(entry, now, time_to_head);
      break;
    case Outcome::kFailure: {
      std::function<void(const std::string&)> observer;  // copied only when it will be called
      {
        std::lock_guard<base::AdaptiveMutex> lock(mutex_);
        if (RecordFailureLocked(entry, now)) observer = ejection_observer_;
      }
      if (observer) observer(id);  // outside the lock
      break;
    }
    case Outcome::kSaturated:
    case Outcome::kAbandoned:
      break;
  }
}

bool Balancer::Available(const std::string& id) {
  std::lock_guard<base::AdaptiveMutex> lock(mutex_);
  return Available(EntryFor(id), clock_());
}

double Balancer::RoundTripOrder(const Entry& entry) {
  return entry.rtt_ms < 0 ? std::numeric_limits<double>::infinity() : entry.rtt_ms;
}

std::optional<std::string_view> Balancer::NearestAndStart(
    const std::vector<std::string_view>& candidates, bool start, bool first_try) {
  const TimePoint now = clock_();
  std::optional<std::pair<std::string_view, Entry*>> nearest;
  {
    std::lock_guard<base::AdaptiveMutex> lock(mutex_);
    for (std::string_view id : candidates) {
      Entry& entry = EntryFor(id);
      if (!Available(entry, now)) continue;
      // Strictly nearer replaces: a tie stays with the earlier candidate.
      if (!nearest || RoundTripOrder(entry) < RoundTripOrder(*nearest->second)) {
        nearest.emplace(id, &entry);
      }
    }
    if (!nearest) return std::nullopt;
    if (start) Start(*nearest->second, first_try, now);
  }
  return nearest->first;
}

bool Balancer::OnHealthCheck(const std::string& id, HealthCheckResult result,
                             std::chrono::nanoseconds round_trip) {
  std::lock_guard<base::AdaptiveMutex> lock(mutex_);
  Entry& entry = EntryFor(id);
  const bool was_healthy = entry.healthy.load(kRelaxed);
  switch (result) {
    case HealthCheckResult::kPassed: {
      entry.consecutive_health_failures = 0;
      entry.healthy.store(true, kRelaxed);
      double sample = Milliseconds(round_trip);
      // Smoothed a little so that one slow probe does not reorder regions.
      entry.rtt_ms = entry.rtt_ms < 0 ? sample : entry.rtt_ms * 0.7 + sample * 0.3;
      break;
    }
    case HealthCheckResult::kFailed:
      if (++entry.consecutive_health_failures >= options_.health_failures_to_mark_down) {
        entry.healthy.store(false, kRelaxed);
      }
      break;
    case HealthCheckResult::kConnectFailed:
      ++entry.consecutive_health_failures;
      entry.healthy.store(false, kRelaxed);
      break;
  }
  return was_healthy && !entry.healthy.load(kRelaxed);
}

bool Balancer::TryRetry() {
  std::lock_guard<base::AdaptiveMutex> lock(mutex_);
  return retry_budget_.TryRetry(clock_());
}

double Balancer::RoundTripMs(const std::string& id) {
  std::lock_guard<base::AdaptiveMutex> lock(mutex_);
  return EntryFor(id).rtt_ms;
}

int64_t Balancer::Outstanding(const std::string& id) {
  std::lock_guard<base::AdaptiveMutex> lock(mutex_);
  return EntryFor(id).outstanding.load(kRelaxed);
}

std::vector<UpstreamState> Balancer::States() {
  std::lock_guard<base::AdaptiveMutex> lock(mutex_);
  const int64_t now_ns = Nanoseconds(clock_());
  std::vector<UpstreamState> states;
  for (const auto& [id, entry] : entries_) {
    UpstreamState state;
    state.id = id;
    state.outstanding = entry->outstanding.load(kRelaxed);
    state.ewma_ms = entry->ewma_ms.load(kRelaxed);
    const int64_t ejected_until_ns = entry->ejected_until_ns.load(kRelaxed);
    state.ejected = now_ns < ejected_until_ns;
    if (state.ejected) state.ejection_remaining_ms = (ejected_until_ns - now_ns) / 1000000;
    state.times_ejected = entry->times_ejected;
    state.consecutive_failures = entry->consecutive_failures.load(kRelaxed);
    state.healthy = entry->healthy.load(kRelaxed);
    state.rtt_ms = entry->rtt_ms;
    states.push_back(std::move(state));
  }
  return states;
}

void Balancer::SetEjectionObserver(std::function<void(const std::string& id)> observer) {
  std::lock_guard<base::AdaptiveMutex> lock(mutex_);
  ejection_observer_ = std::move(observer);
}

}  // namespace supercluster::router
