// The regional router's view of its region's workers: which of them may get traffic now.
// It follows a store::PrefixCache of keys::InstancePrefix(region) and keeps an Instance
// only when its state is `serving`, its address parses, and its attestation document
// verifies under the cluster's attestation policy. Verdicts are cached per document (the
// verifier's signature and chain checks are too slow to run per request) and re-checked
// every `reverify_interval`, so that a document that expires, or grows older than the
// policy allows, stops traffic to its worker even if the worker never rewrites its record.
//
// Static mode (`--static-worker ADDR`) is FOR BENCHMARKS AND TESTS ONLY: fixed upstreams,
// no store and no attestation at all; each serves whatever model is asked for.
//
// Callers: RouterService (per request: EligibleOnThisThread(); per /v1/status:
// Rejections()). Threading: every method is thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "attest/verifier.h"
#include "base/status.h"
#include "base/thread_slot.h"
#include "net/endpoint.h"
#include "store/prefix_cache.h"
#include "store/records.h"

namespace supercluster::router {

struct WorkerInfo {
  std::string id;  // "region/instance", the name clients use in X-Supercluster-Candidates
  std::string instance;
  std::string region;
  std::string model;  // "" in static mode: any model
  net::Endpoint endpoint;
  std::string attestation_b64;
  int64_t capacity = 0;
};

struct WorkerDirectoryOptions {
  // How long a verdict on one document is trusted before it is verified again.
  std::chrono::milliseconds reverify_interval{30000};
  // Steady time, for tests; empty: std::chrono::steady_clock.
  std::function<std::chrono::steady_clock::time_point()> clock;
};

class WorkerDirectory {
 public:
  // Store mode. Preconditions: `instances` follows keys::InstancePrefix(region) and
  // outlives the directory.
  WorkerDirectory(const store::PrefixCache& instances, std::string region,
                  attest::AttestationPolicy policy, WorkerDirectoryOptions options = {});
  // Static mode (benchmarks and tests only): `addresses` as --static-worker gives them.
  static base::Result<std::unique_ptr<WorkerDirectory>> Static(
      std::string region, const std::vector<std::string>& addresses);
  ~WorkerDirectory();

  // The workers that may get traffic now. Cheap when nothing changed (a cached list).
  std::shared_ptr<const std::vector<WorkerInfo>> Eligible();

  // The same list for the request path: when nothing changed since this thread last
  // asked, it reads four atomics and the clock, and writes nothing another thread
  // shares (no lock, no reference count: each thread keeps a reference of its own).
  // The list is valid until this thread calls EligibleOnThisThread or
  // KnowsModelOnThisThread again, on any directory.
  const std::vector<WorkerInfo>& EligibleOnThisThread();

  // The models of every instance record (any state, verified or not): to tell an unknown
  // model (404) from a known one with no capacity (503).
  std::vector<std::string> KnownModels();
  // Whether `model` is among them, for the request path: read as EligibleOnThisThread
  // reads the list (and invalidating the list it returned).
  bool KnowsModelOnThisThread(const std::string& model);

  // Replaces the attestation policy (the cluster's policy record changed): every document
  // is verified again under the new one before its worker gets more traffic.
  void SetPolicy(attest::AttestationPolicy policy);

  // Instance id -> why it gets no traffic ("state draining", "attestation rejected (...)").
  std::map<std::string, std::string> Rejections();

  bool static_mode() const { return cache_ == nullptr; }

 private:
  struct Verdict {
    base::Status status;
    std::chrono::steady_clock::time_point checked_at;
  };

  // What a thread keeps of the directory (see EligibleOnThisThread).
  struct ThreadView {
    uint64_t generation = 0;
    std::shared_ptr<const std::vector<WorkerInfo>> workers;  // null: not filled yet
    std::shared_ptr<const std::vector<std::string>> known_models;
  };

  WorkerDirectory(std::string region, std::vector<WorkerInfo> static_workers);
  // The calling thread's view, made current first when something changed.
  const ThreadView& ViewOnThisThread();
  std::chrono::steady_clock::time_point Now() const;
  void RefreshLocked();  // requires mutex_
  // Whether the list must be evaluated again: the records changed, or the verdicts are due
  // for a check. Reads no lock.
  bool RefreshDue() const;
  base::Status VerdictLocked(const std::string& attestation_b64,
                             std::chrono::steady_clock::time_point now);

  const store::PrefixCache* cache_ = nullptr;
  const std::string region_;
  attest::AttestationPolicy policy_;
  WorkerDirectoryOptions options_;

  // This directory's slot in each thread (base::ThreadSlotOf): its ThreadView.
  const uint64_t thread_slot_owner_ = base::NewThreadSlotOwnerId();

  // Read without mutex_ by RefreshDue and ViewOnThisThread; written under it. On a cache
  // line of their own: every request reads them, and the lock's line is written by
  // whoever takes it.
  static constexpr uint64_t kNotEvaluated = ~uint64_t{0};
  alignas(64) std::atomic<uint64_t> evaluated_version_{kNotEvaluated};  // the cache's
  std::atomic<int64_t> reverify_due_ns_{0};  // steady clock: when verdicts are next due
  // Incremented each time eligible_ or known_models_ changes.
  std::atomic<uint64_t> generation_{0};

  alignas(64) std::mutex mutex_;
  std::shared_ptr<const std::vector<WorkerInfo>> eligible_;
  std::shared_ptr<const std::vector<std::string>> known_models_ =
      std::make_shared<const std::vector<std::string>>();
  std::map<std::string, std::string> rejections_;
  std::map<std::string, Verdict> verdicts_;  // by document (base64)
};

}  // namespace supercluster::router
