#include "store/election.h"

#include <cstdio>

#include "base/logging.h"

namespace supercluster::store {
namespace {

// How often a candidate re-reads the candidates while waiting for its turn. Polling
// (rather than watching) keeps the scheme identical on every backend and costs one small
// range read per interval per waiting candidate.
constexpr std::chrono::milliseconds kPollInterval{100};

int64_t SteadyNowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string LeaseHex(LeaseId lease) {
  char text[17];
  std::snprintf(text, sizeof(text), "%016llx", static_cast<unsigned long long>(lease));
  return text;
}

}  // namespace

Election::Election(Store& store, std::string prefix, std::chrono::seconds ttl)
    : store_(store), prefix_(std::move(prefix)), ttl_(ttl) {}

Election::~Election() {
  if (lease_ != 0) (void)Resign();
  StopKeepAlive();
}

base::Result<std::optional<KeyValue>> Election::Leader(Store& store, const std::string& prefix) {
  SC_ASSIGN_OR_RETURN(RangeResult candidates, store.Range(prefix + "/"));
  std::optional<KeyValue> leader;
  for (KeyValue& candidate : candidates.kvs) {
    if (!leader || candidate.create_revision < leader->create_revision) {
      leader = std::move(candidate);
    }
  }
  return leader;
}

base::Status Election::Campaign(const std::string& value, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  if (lease_ == 0) {
    int64_t granting_at = SteadyNowMs();
    SC_ASSIGN_OR_RETURN(lease_, store_.GrantLease(ttl_));
    renewed_at_ms_.store(granting_at);
    key_ = prefix_ + "/" + LeaseHex(lease_);
    Operation put{Operation::Kind::kPut, key_, value, lease_};
    SC_ASSIGN_OR_RETURN(TxnResult created,
                        store_.Txn({{Compare::Kind::kMissing, key_, "", 0}}, {put}));
    if (!created.succeeded) return base::Internal("election key " + key_ + " already exists");
    StopKeepAlive();
    stopping_ = false;
    keep_alive_thread_ = std::thread([this] { KeepAliveLoop(); });
  }
  while (true) {
    SC_ASSIGN_OR_RETURN(std::optional<KeyValue> leader, Leader(store_, prefix_));
    if (!leader) return base::Unavailable("election " + prefix_ + ": our candidate key vanished");
    if (leader->key == key_) {
      leader_.store(true);
      return base::Status::Ok();
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return base::DeadlineExceeded("election " + prefix_ + ": not elected within " +
                                    std::to_string(timeout.count()) + " ms; leader is " +
                                    leader->key);
    }
    std::this_thread::sleep_for(kPollInterval);
  }
}

bool Election::IsLeader() const {
  auto ttl_ms = std::chrono::duration_cast<std::chrono::milliseconds>(ttl_).count();
  return leader_.load() && SteadyNowMs() - renewed_at_ms_.load() < ttl_ms;
}

base::Status Election::Resign() {
  leader_.store(false);
  StopKeepAlive();
  if (lease_ == 0) return base::Status::Ok();
  base::Status revoked = store_.RevokeLease(lease_);
  lease_ = 0;
  key_.clear();
  if (revoked.code() == base::StatusCode::kNotFound) return base::Status::Ok();
  return revoked;
}

void Election::KeepAliveLoop() {
  // Renew at a third of the TTL so two renewals may fail before the lease is lost.
  const auto interval = std::chrono::duration_cast<std::chrono::milliseconds>(ttl_) / 3;
  std::unique_lock lock(mutex_);
  while (!wake_.wait_for(lock, interval, [this] { return stopping_; })) {
    LeaseId lease = lease_;
    lock.unlock();
    int64_t renewing_at = SteadyNowMs();
    base::Status renewed = store_.KeepAlive(lease);
    if (renewed.ok()) renewed_at_ms_.store(renewing_at);
    lock.lock();
    if (renewed.code() == base::StatusCode::kNotFound) {
      spdlog::warn("election {}: lease lost; no longer a candidate", prefix_);
      leader_.store(false);
      return;
    }
    if (!renewed.ok()) spdlog::warn("election {}: lease renewal failed: {}", prefix_, renewed.message());
  }
}

void Election::StopKeepAlive() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (keep_alive_thread_.joinable()) keep_alive_thread_.join();
}

}  // namespace supercluster::store
