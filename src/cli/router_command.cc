// `supercluster router`: the regional router (--tier regional) or the global endpoint
// (--tier global) of docs/data-plane.md. It wires the store's watched records (tenants,
// instances, routers, regions), the attestation policy, the router service and an HTTP
// server, registers the router in the store under a lease, prints
// "router <tier> <region> serving on <endpoint>" once it serves (scripts wait for that
// line), and on SIGTERM/SIGINT revokes its registration first, then drains.
//
// The attestation policy of the regional tier: the root is --attestation-root (never from
// the store); the measurements are the --pcr flags when given, otherwise the store's
// policy record "cluster" (keys::Policy("cluster"), read at start and then again every
// router.attestation_recheck, so that a changed record applies without a restart),
// otherwise the router refuses to start unless --any-measurements says that any code
// signed under the root may serve (development only).
//
// `--static-worker ADDR` is for benchmarks and tests only: fixed workers, no attestation;
// without --store it also turns authentication off.
#include <pthread.h>
#include <unistd.h>

#include <condition_variable>
#include <csignal>
#include <iostream>
#include <mutex>
#include <thread>

#include "base/flags.h"
#include "base/logging.h"
#include "base/service_flags.h"
#include "cli/command.h"
#include "cli/commands.h"
#include "cli/policy_flags.h"
#include "crypto/bytes.h"
#include "metrics/http_metrics.h"
#include "net/http_server.h"
#include "router/registration.h"
#include "router/router_service.h"
#include "router/tenant_gate.h"
#include "router/worker_directory.h"
#include "store/cache_metrics.h"
#include "store/open_store.h"
#include "store/prefix_cache.h"
#include "store/records.h"

namespace supercluster::cli {
namespace {

constexpr char kClusterPolicyId[] = "cluster";

struct RouterFlags {
  base::ServiceFlags service;
  std::string tier;
  std::string region;
  std::string listen;
  std::string advertise;
  std::string id;
  std::string store_url;
  std::vector<std::string> via;
  std::vector<std::string> static_workers;
  std::string attestation_root;
  std::vector<std::string> pcrs;
  bool allow_debug = false;
  bool any_measurements = false;

  void Register(base::FlagSet& flags) {
    service.Register(flags);
    flags.AddString("tier", &tier, "regional or global (required)");
    flags.AddString("region", &region, "this router's region (required for --tier regional)");
    flags.AddString("listen", &listen, "address to serve clients on (overrides router.listen)");
    flags.AddString("advertise", &advertise,
                    "the address registered in the store for others to reach this router "
                    "(default: http:// and the bound address)");
    flags.AddString("id", &id, "this router's id in the store (default: <region>-router-<pid>)");
    flags.AddString("store", &store_url, "the cluster store URL (overrides store.url)");
    flags.AddRepeated("via", &via,
                      "REGION=HOST:PORT: reach REGION's router there instead of its registered "
                      "address (repeatable)");
    flags.AddRepeated("static-worker", &static_workers,
                      "BENCHMARKS AND TESTS ONLY: a fixed worker address, no store and no "
                      "attestation (repeatable); without --store, no authentication either");
    flags.AddString("attestation-root", &attestation_root,
                    "the root certificate workers' attestation must chain to (PEM or DER): "
                    "AWS_NitroEnclaves_Root-G1.pem or DATA_DIR/dev-ca/root.pem");
    flags.AddRepeated("pcr", &pcrs,
                      "N=HEX: require PCR N of workers' enclaves (repeatable; default: the "
                      "store's policy record \"cluster\")");
    flags.AddBool("allow-debug", &allow_debug, "accept debug-mode enclaves (PCR0..2 all zero)");
    flags.AddBool("any-measurements", &any_measurements,
                  "DEVELOPMENT ONLY: accept any enclave code signed under the root when no "
                  "--pcr and no cluster policy record says which");
  }
};

base::Result<attest::AttestationPolicy> BuildPolicy(const RouterFlags& flags, store::Store& store);

bool SamePolicy(const attest::AttestationPolicy& a, const attest::AttestationPolicy& b) {
  return a.allowed_measurements == b.allowed_measurements && a.allow_debug == b.allow_debug &&
         a.max_age == b.max_age;
}

// Re-reads the store's policy record every `interval` and hands a changed policy to the
// worker directory. Off the request path: while the store cannot be read, the last policy
// stays in force.
class PolicyFollower {
 public:
  PolicyFollower(const RouterFlags& flags, store::Store& store, router::WorkerDirectory& workers,
                 attest::AttestationPolicy current, std::chrono::milliseconds interval)
      : flags_(flags), store_(store), workers_(workers), current_(std::move(current)),
        interval_(interval), thread_([this] { Run(); }) {}
  ~PolicyFollower() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    thread_.join();
  }

 private:
  void Run() {
    std::unique_lock lock(mutex_);
    while (!wake_.wait_for(lock, interval_, [this] { return stopping_; })) {
      auto policy = BuildPolicy(flags_, store_);
      if (!policy.ok()) {
        spdlog::warn("attestation policy not re-read (keeping the last one): {}",
                     policy.status().message());
        continue;
      }
      if (SamePolicy(*policy, current_)) continue;
      spdlog::info("attestation policy changed: {} measurement set(s)",
                   policy->allowed_measurements.size());
      current_ = *policy;
      workers_.SetPolicy(std::move(*policy));
    }
  }

  const RouterFlags& flags_;
  store::Store& store_;
  router::WorkerDirectory& workers_;
  attest::AttestationPolicy current_;
  const std::chrono::milliseconds interval_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;  // last: starts once the members above exist
};

// The regional tier's attestation policy; see the file comment.
base::Result<attest::AttestationPolicy> BuildPolicy(const RouterFlags& flags, store::Store& store) {
  if (flags.attestation_root.empty()) {
    return base::InvalidArgument("--attestation-root is required for a regional router");
  }
  PolicyFlags policy_flags;
  policy_flags.root_path = flags.attestation_root;
  policy_flags.pcrs = flags.pcrs;
  policy_flags.allow_debug = flags.allow_debug;
  SC_ASSIGN_OR_RETURN(attest::AttestationPolicy policy, policy_flags.Build());
  if (!flags.pcrs.empty()) return policy;
  SC_ASSIGN_OR_RETURN(std::optional<store::KeyValue> record,
                      store.Get(store::keys::Policy(kClusterPolicyId)));
  if (record) {
    SC_ASSIGN_OR_RETURN(store::Policy cluster,
                        store::DecodePolicy(record->value, record->key));
    for (const auto& set : cluster.measurements) {
      attest::MeasurementSet measurements;
      for (const auto& [index, hex] : set) {
        crypto::Bytes value;
        if (index < 0 || !crypto::FromHex(hex, &value)) {
          return base::DataLoss(record->key + ": PCR " + std::to_string(index) + " is not hex");
        }
        measurements[static_cast<uint32_t>(index)] = std::move(value);
      }
      policy.allowed_measurements.push_back(std::move(measurements));
    }
    policy.allow_debug = policy.allow_debug || cluster.allow_debug;
    policy.max_age = std::chrono::seconds(cluster.max_document_age_seconds);
    spdlog::info("attestation policy: {} measurement set(s) from {}",
                 policy.allowed_measurements.size(), record->key);
  }
  if (policy.allowed_measurements.empty() && !flags.any_measurements) {
    return base::FailedPrecondition(
        "no measurements to check workers against: give --pcr N=HEX, write the policy record "
        "\"cluster\" in the store, or (development only) --any-measurements");
  }
  if (policy.allowed_measurements.empty()) {
    spdlog::warn("--any-measurements: any enclave code signed under the root may serve");
  }
  return policy;
}

int Fail(const std::string& message, int code = kExitFailure) {
  std::cerr << "supercluster router: " << message << "\n";
  return code;
}

}  // namespace

int RunRouter(const std::vector<std::string>& args) {
  // Block the stop signals in every thread (the ones started below inherit the mask); the
  // main thread waits for them with sigwait, so it can revoke the registration first.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  RouterFlags router_flags;
  base::FlagSet flags("supercluster router --tier regional|global [flags]");
  router_flags.Register(flags);
  if (base::Status parsed = flags.Parse(args); !parsed.ok()) return Fail(parsed.message(), kExitUsage);
  if (flags.help_requested()) {
    std::cout << flags.Help();
    return kExitOk;
  }
  router::Tier tier;
  if (router_flags.tier == "regional") {
    tier = router::Tier::kRegional;
  } else if (router_flags.tier == "global") {
    tier = router::Tier::kGlobal;
  } else {
    return Fail("--tier must be regional or global", kExitUsage);
  }
  if (tier == router::Tier::kRegional && router_flags.region.empty()) {
    return Fail("--region is required for --tier regional", kExitUsage);
  }
  if (tier == router::Tier::kGlobal && !router_flags.static_workers.empty()) {
    return Fail("--static-worker is for --tier regional", kExitUsage);
  }
  std::string region = router_flags.region.empty() ? "global" : router_flags.region;
  base::Result<base::Config> config = router_flags.service.LoadConfig("router");
  if (!config.ok()) return Fail(config.status().message());

  std::string listen = router_flags.listen.empty() ? config->GetString("router.listen")
                                                   : router_flags.listen;
  base::Result<net::Endpoint> listen_endpoint = net::ParseEndpoint(listen);
  if (!listen_endpoint.ok()) return Fail("--listen: " + listen_endpoint.status().message(), kExitUsage);

  // The store, unless this is a static benchmark router without one.
  bool static_mode = !router_flags.static_workers.empty();
  bool use_store = !static_mode || !router_flags.store_url.empty();
  std::unique_ptr<store::Store> store;
  std::unique_ptr<store::PrefixCache> tenants, routers, regions, instances;
  if (use_store) {
    std::string url = router_flags.store_url.empty() ? config->GetString("store.url")
                                                     : router_flags.store_url;
    auto opened = store::OpenStore(url, *config);
    if (!opened.ok()) return Fail(opened.status().message());
    store = std::move(*opened);
    auto follow = [&](const std::string& prefix, std::unique_ptr<store::PrefixCache>* cache) {
      auto started = store::PrefixCache::Start(*store, prefix);
      if (!started.ok()) return started.status();
      *cache = std::move(*started);
      return base::Status::Ok();
    };
    for (auto [prefix, cache] : {std::pair{store::keys::Tenant(""), &tenants},
                                 std::pair{store::keys::RouterPrefix(""), &routers},
                                 std::pair{store::keys::Region(""), &regions}}) {
      if (base::Status status = follow(prefix, cache); !status.ok()) return Fail(status.message());
    }
    if (tier == router::Tier::kRegional && !static_mode) {
      if (base::Status status = follow(store::keys::InstancePrefix(region), &instances);
          !status.ok()) {
        return Fail(status.message());
      }
    }
  }

  std::unique_ptr<router::WorkerDirectory> workers;
  std::unique_ptr<PolicyFollower> policy_follower;  // stops before `workers` goes
  if (static_mode) {
    auto directory = router::WorkerDirectory::Static(region, router_flags.static_workers);
    if (!directory.ok()) return Fail(directory.status().message(), kExitUsage);
    workers = std::move(*directory);
    spdlog::warn("static workers: FOR BENCHMARKS AND TESTS ONLY (no attestation{})",
                 use_store ? "" : ", no authentication");
  } else if (tier == router::Tier::kRegional) {
    auto policy = BuildPolicy(router_flags, *store);
    if (!policy.ok()) {
      bool usage = policy.status().code() == base::StatusCode::kInvalidArgument;
      return Fail(policy.status().message(), usage ? kExitUsage : kExitFailure);
    }
    router::WorkerDirectoryOptions directory_options;
    directory_options.reverify_interval = config->GetDuration("router.attestation_recheck");
    workers = std::make_unique<router::WorkerDirectory>(*instances, region, *policy,
                                                        directory_options);
    if (router_flags.pcrs.empty()) {
      policy_follower = std::make_unique<PolicyFollower>(
          router_flags, *store, *workers, std::move(*policy), directory_options.reverify_interval);
    }
  }

  std::unique_ptr<router::TenantGate> gate;
  if (tenants) {
    router::TenantGateOptions gate_options;
    gate_options.default_requests_per_second = config->GetFloat("router.default_requests_per_second");
    gate_options.default_max_concurrent_requests =
        config->GetInt("router.default_max_concurrent_requests");
    gate_options.max_request_bytes = static_cast<uint64_t>(config->GetInt("router.max_request_bytes"));
    gate = std::make_unique<router::TenantGate>(*tenants, gate_options);
  }

  auto registry = std::make_shared<metrics::Registry>();
  // The caches outlive the server below, which serves /metrics.
  for (const auto* cache : {&tenants, &routers, &regions, &instances}) {
    if (*cache) store::ExportCacheStaleness(**cache, *registry);
  }
  router::RouterServiceOptions options = router::RouterServiceOptions::FromConfig(*config);
  options.tier = tier;
  options.region = region;
  options.router_id = router_flags.id.empty() ? region + "-router-" + std::to_string(::getpid())
                                              : router_flags.id;
  options.via = router_flags.via;
  router::RouterServiceDependencies dependencies;
  dependencies.gate = gate.get();
  dependencies.workers = workers.get();
  dependencies.routers = routers.get();
  dependencies.regions = regions.get();
  dependencies.registry = registry;
  auto service = router::RouterService::Create(options, dependencies);
  if (!service.ok()) return Fail(service.status().message(), kExitUsage);

  metrics::HttpMetrics http_metrics(registry);
  auto http_router = std::make_shared<net::HttpRouter>();
  (*service)->AddRoutes(*http_router);
  net::ServerOptions server_options = net::ServerOptions::FromConfig(*config);
  server_options.observer = &http_metrics;
  server_options.busy_poll = std::chrono::microseconds(config->GetInt("router.busy_poll_us"));
  server_options.context_per_thread = true;  // its handlers never block
  net::HttpServer server(server_options, http_router);
  if (base::Status status = server.Listen(*listen_endpoint); !status.ok()) return Fail(status.message());
  if (base::Status status = server.Start(); !status.ok()) return Fail(status.message());
  (*service)->Start();
  net::Endpoint bound = server.BoundEndpoints().front();

  std::unique_ptr<router::RouterRegistration> registration;
  if (store) {
    store::RouterEndpoint record;
    record.id = options.router_id;
    record.region = region;
    record.tier = router::TierName(tier);
    record.address = router_flags.advertise.empty()
                         ? "http://" + bound.host + ":" + std::to_string(bound.port)
                         : router_flags.advertise;
    auto ttl = std::chrono::duration_cast<std::chrono::seconds>(config->GetDuration("router.lease_ttl"));
    auto registered = router::RouterRegistration::Start(*store, record, ttl);
    if (!registered.ok()) return Fail(registered.status().message());
    registration = std::move(*registered);
  }

  std::cout << "router " << router::TierName(tier) << " " << region << " serving on "
            << bound.ToString() << std::endl;
  spdlog::info("router {} {} serving on {}", router::TierName(tier), region, bound.ToString());

  int signal = 0;
  sigwait(&stop_signals, &signal);
  spdlog::info("received {}, leaving the store and draining", signal == SIGTERM ? "SIGTERM" : "SIGINT");
  if (registration) registration->Revoke();
  (*service)->Stop();
  server.Drain();
  spdlog::info("stopped");
  return kExitOk;
}

}  // namespace supercluster::cli
