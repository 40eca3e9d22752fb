#include "router/retry_budget.h"

#include <algorithm>

namespace supercluster::router {
namespace {

int64_t SecondOf(RetryBudget::TimePoint time) {
  return std::chrono::duration_cast<std::chrono::seconds>(time.time_since_epoch()).count();
}

}  // namespace

RetryBudget::RetryBudget(RetryBudgetOptions options) : options_(options) {
  int64_t seconds = std::max<int64_t>(
      1, std::chrono::duration_cast<std::chrono::seconds>(options_.window).count());
  buckets_.resize(static_cast<size_t>(seconds));
}

RetryBudget::Bucket& RetryBudget::BucketAt(TimePoint now) {
  int64_t second = SecondOf(now);
  Bucket& bucket = buckets_[static_cast<size_t>(second % static_cast<int64_t>(buckets_.size()))];
  if (bucket.second != second) bucket = Bucket{second, 0, 0};
  return bucket;
}

void RetryBudget::Sum(TimePoint now, int64_t* requests, int64_t* retries) {
  int64_t current = SecondOf(now);
  int64_t oldest = current - static_cast<int64_t>(buckets_.size()) + 1;
  *requests = 0;
  *retries = 0;
  for (const Bucket& bucket : buckets_) {
    if (bucket.second < oldest || bucket.second > current) continue;
    *requests += bucket.requests;
    *retries += bucket.retries;
  }
}

void RetryBudget::RecordRequest(TimePoint now) { ++BucketAt(now).requests; }

bool RetryBudget::TryRetry(TimePoint now) {
  int64_t requests = 0;
  int64_t retries = 0;
  Sum(now, &requests, &retries);
  double allowed = std::max(options_.ratio * static_cast<double>(requests),
                            options_.min_retries_per_second * static_cast<double>(buckets_.size()));
  if (static_cast<double>(retries) + 1 > allowed) return false;
  ++BucketAt(now).retries;
  return true;
}

int64_t RetryBudget::RequestsInWindow(TimePoint now) {
  int64_t requests = 0;
  int64_t retries = 0;
  Sum(now, &requests, &retries);
  return requests;
}

int64_t RetryBudget::RetriesInWindow(TimePoint now) {
  int64_t requests = 0;
  int64_t retries = 0;
  Sum(now, &requests, &retries);
  return retries;
}

}  // namespace supercluster::router
