#include "router/retry_budget.h"

#include <algorithm>

#include "metrics/thread_shard.h"

namespace supercluster::router {
namespace {

constexpr size_t kBucketsPerLine = 64 / sizeof(uint64_t);
// No request is counted yet: every bucket says "second 2^32 - 1", which no window reaches.
constexpr uint64_t kEmptyBucket = ~uint64_t{0} << 32;

uint64_t SecondPart(uint64_t bucket) { return bucket >> 32; }
uint64_t CountPart(uint64_t bucket) { return bucket & 0xffffffffu; }

int64_t SecondOf(RetryBudget::TimePoint time) {
  return std::chrono::duration_cast<std::chrono::seconds>(time.time_since_epoch()).count();
}

}  // namespace

RetryBudget::RetryBudget(RetryBudgetOptions options)
    : options_(options),
      window_seconds_(static_cast<size_t>(std::max<int64_t>(
          1, std::chrono::duration_cast<std::chrono::seconds>(options_.window).count()))),
      lines_per_shard_((window_seconds_ + kBucketsPerLine - 1) / kBucketsPerLine),
      request_lines_(new RequestLine[metrics::kMetricShards * lines_per_shard_]),
      retry_buckets_(window_seconds_) {
  static_assert(sizeof(RequestLine) == 64);
  for (size_t i = 0; i < metrics::kMetricShards * lines_per_shard_; ++i) {
    for (std::atomic<uint64_t>& bucket : request_lines_[i].buckets) bucket.store(kEmptyBucket);
  }
}

std::atomic<uint64_t>& RetryBudget::RequestBucketOf(size_t shard, size_t index) const {
  return request_lines_[shard * lines_per_shard_ + index / kBucketsPerLine]
      .buckets[index % kBucketsPerLine];
}

void RetryBudget::RecordRequest(TimePoint now) {
  const int64_t second = SecondOf(now);
  std::atomic<uint64_t>& bucket = RequestBucketOf(
      metrics::ThreadShard(), static_cast<size_t>(second % static_cast<int64_t>(window_seconds_)));
  const uint64_t this_second = static_cast<uint64_t>(second) << 32;
  uint64_t seen = bucket.load(std::memory_order_relaxed);
  uint64_t next;
  do {
    // The bucket's first request of this second starts it at 1 (it held an older second).
    next = SecondPart(seen) == static_cast<uint64_t>(second) ? seen + 1 : this_second | 1;
  } while (!bucket.compare_exchange_weak(seen, next, std::memory_order_relaxed));
}

int64_t RetryBudget::Requests(int64_t oldest, int64_t current) const {
  int64_t requests = 0;
  for (size_t shard = 0; shard < metrics::kMetricShards; ++shard) {
    for (size_t i = 0; i < window_seconds_; ++i) {
      const uint64_t bucket = RequestBucketOf(shard, i).load(std::memory_order_relaxed);
      const auto second = static_cast<int64_t>(SecondPart(bucket));
      if (second < oldest || second > current) continue;
      requests += static_cast<int64_t>(CountPart(bucket));
    }
  }
  return requests;
}

int64_t RetryBudget::Retries(int64_t oldest, int64_t current) const {
  int64_t retries = 0;
  for (const RetryBucket& bucket : retry_buckets_) {
    if (bucket.second < oldest || bucket.second > current) continue;
    retries += bucket.retries;
  }
  return retries;
}

bool RetryBudget::TryRetry(TimePoint now) {
  const int64_t current = SecondOf(now);
  const int64_t oldest = current - static_cast<int64_t>(window_seconds_) + 1;
  const double requests = static_cast<double>(Requests(oldest, current));
  const double retries = static_cast<double>(Retries(oldest, current));
  double allowed = std::max(options_.ratio * requests,
                            options_.min_retries_per_second * static_cast<double>(window_seconds_));
  if (retries + 1 > allowed) return false;
  RetryBucket& bucket =
      retry_buckets_[static_cast<size_t>(current % static_cast<int64_t>(window_seconds_))];
  if (bucket.second != current) bucket = RetryBucket{current, 0};
  ++bucket.retries;
  return true;
}

int64_t RetryBudget::RequestsInWindow(TimePoint now) {
  const int64_t current = SecondOf(now);
  return Requests(current - static_cast<int64_t>(window_seconds_) + 1, current);
}

int64_t RetryBudget::RetriesInWindow(TimePoint now) {
  const int64_t current = SecondOf(now);
  return Retries(current - static_cast<int64_t>(window_seconds_) + 1, current);
}

}  // namespace supercluster::router
