// The router's retry budget: retries are allowed only while they stay a small share of the
// requests seen over a sliding window (plus a floor of a few per second, so a quiet router
// can still retry). It keeps a failing upstream from being hit by a storm of retries that
// multiplies the load exactly when the cluster is least able to take it.
//
// Callers: the Balancer owns one; the proxy asks CanRetry() before a second attempt.
// Threading: not thread-safe; the Balancer calls it under its own lock.
#pragma once

#include <chrono>
#include <cstdint>
#include <vector>

namespace supercluster::router {

struct RetryBudgetOptions {
  double ratio = 0.2;                           // retries per request allowed over the window
  double min_retries_per_second = 3;            // allowed whatever the ratio
  std::chrono::milliseconds window{10000};      // how far back requests and retries count
};

class RetryBudget {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;

  explicit RetryBudget(RetryBudgetOptions options);

  // Counts one first attempt of a request.
  void RecordRequest(TimePoint now);
  // True, and counts the retry, when one more retry stays within the budget.
  bool TryRetry(TimePoint now);

  int64_t RequestsInWindow(TimePoint now);
  int64_t RetriesInWindow(TimePoint now);

 private:
  // The window is kept as one-second buckets in a ring; a bucket is cleared when reused.
  struct Bucket {
    int64_t second = -1;  // which second since the epoch of the steady clock it counts
    int64_t requests = 0;
    int64_t retries = 0;
  };
  Bucket& BucketAt(TimePoint now);
  void Sum(TimePoint now, int64_t* requests, int64_t* retries);

  RetryBudgetOptions options_;
  std::vector<Bucket> buckets_;
};

}  // namespace supercluster::router
