// Active health checks: every `interval`, GET /readyz on each target (workers, and the
// regional routers of other regions) with a `timeout`, and tell the Balancer what was seen:
// 200 passes (and the time it took is the target's round-trip sample), anything else fails,
// and a refused or lost connection counts at once (Balancer::OnHealthCheck). A target whose
// previous check is still running is skipped in that round, so a hung target never piles up
// checks.
//
// Callers: RouterService owns one per tier. Threading: one thread of its own plus the
// UpstreamClient's; Start/Stop from one thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "net/endpoint.h"
#include "net/upstream_client.h"
#include "router/balancer.h"

namespace supercluster::router {

struct HealthTarget {
  std::string id;
  net::Endpoint endpoint;
  Balancer* balancer = nullptr;  // where the verdict goes; not owned
};

struct HealthCheckOptions {
  std::chrono::milliseconds interval{250};
  std::chrono::milliseconds timeout{500};
};

class HealthChecker {
 public:
  // `targets` is called at each round, on the checker's thread. `on_unreachable` (may be
  // empty) is called when a check that got no answer at all (a timeout, a refused or lost
  // connection) marks a healthy target down, on one of the checker's client's threads. A
  // target that answers "not ready" (a worker draining) is marked down without it: it still
  // finishes what it has.
  HealthChecker(HealthCheckOptions options, std::function<std::vector<HealthTarget>()> targets,
                std::function<void(const HealthTarget&)> on_unreachable = {});
  ~HealthChecker();  // Stop()

  void Start();
  void Stop();

  // Runs one round now and waits for its answers (tests).
  void CheckNow();

 private:
  void Run();
  // Starts the checks of one round; returns how many were started.
  size_t StartRound();

  const HealthCheckOptions options_;
  std::function<std::vector<HealthTarget>()> targets_;
  std::function<void(const HealthTarget&)> on_unreachable_;
  std::unique_ptr<net::UpstreamClient> client_;

  std::mutex mutex_;
  std::condition_variable changed_;
  std::set<std::string> in_flight_;  // ids being checked
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace supercluster::router
