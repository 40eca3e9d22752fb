#include "router/balancer.h"

#include <algorithm>
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

Balancer::Entry& Balancer::EntryFor(std::string_view id) {
  auto it = entries_.find(id);
  if (it == entries_.end()) {
    it = entries_.emplace(std::string(id), Entry{}).first;
    it->second.ewma_ms = Milliseconds(options_.initial_latency);
  }
  return it->second;
}

bool Balancer::AvailableLocked(const Entry& entry, TimePoint now) const {
  return entry.healthy && now >= entry.ejected_until;
}

double Balancer::RoundTripOrder(const Entry& entry) {
  return entry.rtt_ms < 0 ? std::numeric_limits<double>::infinity() : entry.rtt_ms;
}

double Balancer::Cost(const Entry& entry) const {
  return static_cast<double>(entry.outstanding + 1) * std::max(entry.ewma_ms, 1e-3);
}

void Balancer::Retain(const std::vector<std::string>& ids) {
  std::lock_guard<base::AdaptiveMutex> lock(mutex_);
  for (auto it = entries_.begin(); it != entries_.end();) {
    if (std::find(ids.begin(), ids.end(), it->first) == ids.end()) {
      it = entries_.erase(it);
    } else {
      ++it;
    }
  }
}

bool Balancer::Available(const std::string& id) {
  std::lock_guard<base::AdaptiveMutex> lock(mutex_);
  return AvailableLocked(EntryFor(id), clock_());
}

std::optional<std::pair<std::string_view, Balancer::Entry*>> Balancer::PickLocked(
    const std::vector<std::string_view>& candidates) {
  TimePoint now = clock_();
  // Each candidate's entry is looked up once (a map search with string compares). The
  // list's room is kept from pick to pick on each thread, so that a pick allocates nothing
  // and writes no memory another thread wrote last; its entries are stale outside the call.
  thread_local std::vector<std::pair<std::string_view, Entry*>> available;
  available.clear();
  for (std::string_view id : candidates) {
    Entry& entry = EntryFor(id);
    if (AvailableLocked(entry, now)) available.emplace_back(id, &entry);
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

std::optional<std::string_view> Balancer::Pick(const std::vector<std::string_view>& candidates) {
  std::lock_guard<base::AdaptiveMutex> lock(mutex_);
  auto picked = PickLocked(candidates);
  if (!picked) return std::nullopt;
  return picked->first;
}

std::optional<std::string_view> Balancer::PickAndStart(
    const std::vector<std::string_view>& candidates, bool first_try) {
  std::lock_guard<base::AdaptiveMutex> lock(mutex_);
  auto picked = PickLocked(candidates);
  if (!picked) return std::nullopt;
  ++picked->second->outstanding;
  if (first_try) retry_budget_.RecordRequest(clock_());
  return picked->first;
}

std::optional<std::string_view> Balancer::NearestAndStart(
    const std::vector<std::string_view>& candidates, bool start, bool first_try) {
  std::lock_guard<base::AdaptiveMutex> lock(mutex_);
  const TimePoint now = clock_();
  std::optional<std::pair<std::string_view, Entry*>> nearest;
  for (std::string_view id : candidates) {
    Entry& entry = EntryFor(id);
    if (!AvailableLocked(entry, now)) continue;
    // Strictly nearer replaces: a tie stays with the earlier candidate.
    if (!nearest || RoundTripOrder(entry) < RoundTripOrder(*nearest->second)) {
      nearest.emplace(id, &entry);
    }
  }
  if (!nearest) return std::nullopt;
  if (start) {
    ++nearest->second->outstanding;
    if (first_try) retry_budget_.RecordRequest(now);
  }
  return nearest->first;
}

void Balancer::OnStart(const std::string& id) {
  std::lock_guard<base::AdaptiveMutex> lock(mutex_);
  ++EntryFor(id).outstanding;
}

void Balancer::OnFirstStart(const std::string& id) {
  std::lock_guard<base::AdaptiveMutex> lock(mutex_);
  ++EntryFor(id).outstanding;
  retry_budget_.RecordRequest(clock_());
}

bool Balancer::RecordFailureLocked(Entry& entry, TimePoint now) {
  ++entry.consecutive_failures;
  if (now < entry.ejected_until) return false;  // already out
  if (!entry.on_probation && entry.consecutive_failures < options_.failures_to_eject) {
    return false;
  }
  ++entry.times_ejected;
  auto ejection = options_.base_ejection_time * entry.times_ejected;
  entry.ejected_until = now + std::min<std::chrono::milliseconds>(
                                  std::chrono::duration_cast<std::chrono::milliseconds>(ejection),
                                  options_.max_ejection_time);
  entry.on_probation = true;  // when it comes back
  entry.consecutive_failures = 0;
  return true;
}

void Balancer::OnFinish(const std::string& id, Outcome outcome,
                        std::chrono::nanoseconds time_to_head) {
  bool ejected = false;
  std::function<void(const std::string&)> observer;  // copied only when it will be called
  {
    std::lock_guard<base::AdaptiveMutex> lock(mutex_);
    TimePoint now = clock_();
    Entry& entry = EntryFor(id);
    if (entry.outstanding > 0) --entry.outstanding;
    switch (outcome) {
      case Outcome::kSuccess: {
        double sample = Milliseconds(time_to_head);
        if (!entry.has_sample || sample >= entry.ewma_ms) {
          entry.ewma_ms = sample;
        } else {
          double elapsed_ms = Milliseconds(now - entry.last_sample);
          double tau_ms = std::max(1.0, static_cast<double>(options_.ewma_decay.count()));
          double keep = std::exp(-std::max(0.0, elapsed_ms) / tau_ms);
          entry.ewma_ms = entry.ewma_ms * keep + sample * (1 - keep);
        }
        entry.has_sample = true;
        entry.last_sample = now;
        entry.consecutive_failures = 0;
        if (entry.on_probation && now >= entry.ejected_until) {
          entry.on_probation = false;
          // Long good behaviour since the last ejection forgets the earlier ones.
          if (now - entry.ejected_until > options_.max_ejection_time) entry.times_ejected = 0;
        }
        break;
      }
      case Outcome::kFailure:
        ejected = RecordFailureLocked(entry, now);
        if (ejected) observer = ejection_observer_;
        break;
      case Outcome::kSaturated:
      case Outcome::kAbandoned:
        break;
    }
  }
  if (ejected && observer) observer(id);
}

void Balancer::OnHealthCheck(const std::string& id, HealthCheckResult result,
                             std::chrono::nanoseconds round_trip) {
  std::lock_guard<base::AdaptiveMutex> lock(mutex_);
  Entry& entry = EntryFor(id);
  switch (result) {
    case HealthCheckResult::kPassed: {
      entry.consecutive_health_failures = 0;
      entry.healthy = true;
      double sample = Milliseconds(round_trip);
      // Smoothed a little so that one slow probe does not reorder regions.
      entry.rtt_ms = entry.rtt_ms < 0 ? sample : entry.rtt_ms * 0.7 + sample * 0.3;
      break;
    }
    case HealthCheckResult::kFailed:
      if (++entry.consecutive_health_failures >= options_.health_failures_to_mark_down) {
        entry.healthy = false;
      }
      break;
    case HealthCheckResult::kConnectFailed:
      ++entry.consecutive_health_failures;
      entry.healthy = false;
      break;
  }
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
  return EntryFor(id).outstanding;
}

std::vector<UpstreamState> Balancer::States() {
  std::lock_guard<base::AdaptiveMutex> lock(mutex_);
  TimePoint now = clock_();
  std::vector<UpstreamState> states;
  for (const auto& [id, entry] : entries_) {
    UpstreamState state;
    state.id = id;
    state.outstanding = entry.outstanding;
    state.ewma_ms = entry.ewma_ms;
    state.ejected = now < entry.ejected_until;
    if (state.ejected) {
      state.ejection_remaining_ms =
          std::chrono::duration_cast<std::chrono::milliseconds>(entry.ejected_until - now).count();
    }
    state.times_ejected = entry.times_ejected;
    state.consecutive_failures = entry.consecutive_failures;
    state.healthy = entry.healthy;
    state.rtt_ms = entry.rtt_ms;
    states.push_back(std::move(state));
  }
  return states;
}

void Balancer::SetEjectionObserver(std::function<void(const std::string& id)> observer) {
  std::lock_guard<base::AdaptiveMutex> lock(mutex_);
  ejection_observer_ = std::move(observer);
}

}  // namespace supercluster::router
