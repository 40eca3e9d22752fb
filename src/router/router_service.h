// The routers' HTTP service (docs/data-plane.md): the regional router (`--tier regional`)
// and the global endpoint (`--tier global`) share it. It authenticates and admits each
// request (TenantGate), chooses where it goes (workers of this region through the
// WorkerDirectory and the Balancer; other regions' routers through the PeerDirectory),
// proxies it (proxy.h), runs the health checks, and answers /v1/models, /v1/attestation,
// /v1/status and /readyz.
//
// Callers: `supercluster router` (cli/router_command.cc) and the tests. Threading: handlers
// run on the HttpServer's io threads and never block; Start/Stop from one thread.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "base/config.h"
#include "base/status.h"
#include "metrics/registry.h"
#include "net/http_server.h"
#include "net/upstream_client.h"
#include "router/balancer.h"
#include "router/health_checker.h"
#include "router/peer_directory.h"
#include "router/router_metrics.h"
#include "router/tenant_gate.h"
#include "router/worker_directory.h"

namespace supercluster::router {

enum class Tier { kRegional, kGlobal };
const char* TierName(Tier tier);

struct RouterServiceOptions {
  Tier tier = Tier::kRegional;
  std::string region;     // this router's region (the global tier's own is informational)
  std::string router_id;  // for /v1/status
  BalancerOptions balancer;
  HealthCheckOptions health;
  net::UpstreamOptions upstream;
  std::vector<std::string> via;  // "REGION=HOST:PORT", as --via gives them
  int max_attestation_candidates = 16;  // the most `k` a client may ask for
  // Answers with a Content-Length up to this are passed on whole (ProxyRequest).
  uint64_t max_collected_response_bytes = 64 * 1024;

  // Reads the router.* keys (docs/configuration.md).
  static RouterServiceOptions FromConfig(const base::Config& config);
};

struct RouterServiceDependencies {
  // Null: NO AUTHENTICATION, every request is tenant "anonymous" with no limits. Only for
  // static benchmark mode (`--static-worker` without `--store`).
  TenantGate* gate = nullptr;
  // The regional tier's workers; must be set for it, unused by the global tier.
  WorkerDirectory* workers = nullptr;
  const store::PrefixCache* routers = nullptr;  // keys::RouterPrefix(""), may be null
  const store::PrefixCache* regions = nullptr;  // keys::Region(""), may be null
  std::shared_ptr<metrics::Registry> registry;
};

class RouterService {
 public:
  // kInvalidArgument for a bad --via entry or a regional tier without workers.
  // Preconditions: everything in `dependencies` outlives the service.
  static base::Result<std::unique_ptr<RouterService>> Create(
      RouterServiceOptions options, RouterServiceDependencies dependencies);
  ~RouterService();  // Stop(), then ends every exchange in flight

  // The client-facing routes plus /metrics, /healthz and /readyz.
  void AddRoutes(net::HttpRouter& router);

  // Starts / stops the health checks.
  void Start();
  void Stop();

  // Regional: some local worker is eligible. Global: some region's router passes its checks.
  bool Ready();
  // The body of GET /v1/status.
  std::string StatusJson();

  // One round of health checks, waited for (tests).
  void CheckHealthNow();

  Balancer& worker_balancer() { return worker_balancer_; }
  Balancer& region_balancer() { return region_balancer_; }

 private:
  class Handlers;
  RouterService(RouterServiceOptions options, RouterServiceDependencies dependencies);
  std::vector<HealthTarget> HealthTargets();

  const RouterServiceOptions options_;
  RouterServiceDependencies dependencies_;
  std::unique_ptr<RouterMetrics> metrics_;
  std::unique_ptr<PeerDirectory> peers_;
  Balancer worker_balancer_;  // ids "region/instance"
  Balancer region_balancer_;  // ids: region names (their routers)
  std::unique_ptr<Handlers> handlers_;
  std::unique_ptr<net::UpstreamClient> client_;
  std::unique_ptr<HealthChecker> health_checker_;
};

}  // namespace supercluster::router
