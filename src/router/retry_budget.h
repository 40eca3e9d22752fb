// The router's retry budget: retries are allowed only while they stay a small share of the
// requests seen over a sliding window (plus a floor of a few per second, so a quiet router
// can still retry). It keeps a failing upstream from being hit by a storm of retries that
// multiplies the load exactly when the cluster is least able to take it.
//
// Callers: the Balancer owns one; the proxy asks Balancer::TryRetry before a second attempt.
// Threading: RecordRequest may be called from any number of threads at once, without a
// lock: every proxied request calls it, so it adds to a count of the calling thread's own
// (metrics::ThreadShard), on cache lines no other thread writes. Everything else one call
// at a time (the Balancer calls it under its lock); a sum read while requests are being
// recorded may miss the newest, which a budget can afford.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
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
  // Requests: one ring per thread shard, each bucket one atomic word holding the second it
  // counts (since the steady clock's epoch; high 32 bits) and its count (low 32 bits), so
  // that moving it to a new second and counting are one compare-and-swap and no count is
  // lost between them. Retries: one ring.
  struct alignas(64) RequestLine {  // a shard's buckets start on a line of their own
    std::atomic<uint64_t> buckets[64 / sizeof(uint64_t)];
  };
  struct RetryBucket {
    int64_t second = -1;
    int64_t retries = 0;
  };

  std::atomic<uint64_t>& RequestBucketOf(size_t shard, size_t index) const;
  int64_t Requests(int64_t oldest, int64_t current) const;
  int64_t Retries(int64_t oldest, int64_t current) const;

  RetryBudgetOptions options_;
  size_t window_seconds_;   // buckets per ring
  size_t lines_per_shard_;  // enough lines for window_seconds_ request buckets
  std::unique_ptr<RequestLine[]> request_lines_;  // metrics::kMetricShards rings
  std::vector<RetryBucket> retry_buckets_;
};

}  // namespace supercluster::router
