// `supercluster worker --model FILE --enclave ADDRESS`: the worker service (src/worker). It
// listens at once (/readyz says 503 while the model loads), loads the model, attests its
// enclave, registers in the store under a lease, and prints
//   worker <id> serving on <advertised address>
// on stdout once it serves (scripts and `supercluster up` wait for that line). On SIGTERM or
// SIGINT it drains: refuses new requests, lets running ones finish (worker.drain_timeout),
// deregisters and exits 0.
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <iostream>

#include "base/flags.h"
#include "base/logging.h"
#include "base/service_flags.h"
#include "cli/command.h"
#include "cli/commands.h"
#include "crypto/random.h"
#include "engine/load_engine.h"
#include "metrics/http_metrics.h"
#include "net/endpoint.h"
#include "net/http_server.h"
#include "store/cache_metrics.h"
#include "store/open_store.h"
#include "store/prefix_cache.h"
#include "worker/enclave_link.h"
#include "worker/registration.h"
#include "worker/worker_service.h"

namespace supercluster::cli {
namespace {

int Fail(const std::string& why) {
  std::cerr << "supercluster worker: " << why << "\n";
  return kExitFailure;
}

int Usage(const std::string& why) {
  std::cerr << "supercluster worker: " << why << "\n";
  return kExitUsage;
}

std::string HostName() {
  char name[256] = {};
  if (::gethostname(name, sizeof(name) - 1) != 0 || name[0] == '\0') return "localhost";
  return name;
}

// Where routers should connect: the bound address, with a wildcard host replaced by this
// machine's name.
std::string AdvertisedAddress(const net::Endpoint& bound) {
  if (bound.kind == net::Endpoint::Kind::kUnix) return "unix://" + bound.path;
  std::string host = bound.host;
  if (host == "0.0.0.0" || host == "::") host = HostName();
  if (host.find(':') != std::string::npos) host = "[" + host + "]";
  return "http://" + host + ":" + std::to_string(bound.port);
}

worker::CompletionLimits LimitsFrom(const base::Config& config) {
  worker::CompletionLimits limits;
  limits.max_prompt_bytes = static_cast<size_t>(config.GetInt("worker.max_prompt_bytes"));
  limits.max_tokens = static_cast<int32_t>(config.GetInt("worker.max_tokens"));
  limits.default_max_tokens = static_cast<int32_t>(
      std::min(config.GetInt("worker.default_max_tokens"), config.GetInt("worker.max_tokens")));
  limits.max_stop_strings = static_cast<size_t>(config.GetInt("worker.max_stop_strings"));
  limits.max_stop_bytes = static_cast<size_t>(config.GetInt("worker.max_stop_bytes"));
  return limits;
}

// Blocks until SIGTERM or SIGINT (blocked in every thread since the start of RunWorker).
int WaitForSignal() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  int received = 0;
  while (sigwait(&signals, &received) != 0) {
  }
  return received;
}

}  // namespace

int RunWorker(const std::vector<std::string>& args) {
  // Before any thread starts, so that every thread inherits the mask and only
  // WaitForSignal() receives them (a signal during loading is kept until then).
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  base::ServiceFlags service_flags;
  std::string model_path, model_name, region = "local", instance_id, listen, enclave_text,
                                      store_url, advertise;
  base::FlagSet flags("supercluster worker --model FILE --enclave ADDRESS [flags]");
  service_flags.Register(flags);
  flags.AddString("model", &model_path, "the model file (GGUF or safetensors) to serve");
  flags.AddString("model-name", &model_name,
                  "the name requests use (default: the file's base name without extension)");
  flags.AddString("region", &region, "the region this worker registers in");
  flags.AddString("instance-id", &instance_id, "this worker's id (default: HOSTNAME-PID)");
  flags.AddString("listen", &listen, "address to serve the worker API on (default: worker.listen)");
  flags.AddString("enclave", &enclave_text, "the enclave: unix:///path or vsock://CID:PORT");
  flags.AddString("store", &store_url, "the cluster state store URL (default: store.url)");
  flags.AddString("advertise", &advertise,
                  "the address put in the registration (default: http://<bound address>)");
  if (base::Status parsed = flags.Parse(args); !parsed.ok()) return Usage(parsed.message());
  if (flags.help_requested()) {
    std::cout << flags.Help();
    return kExitOk;
  }
  if (model_path.empty() || enclave_text.empty()) return Usage("need --model and --enclave");
  auto enclave_address = enclave::EnclaveAddress::Parse(enclave_text);
  if (!enclave_address.ok()) return Usage("--enclave: " + enclave_address.status().message());
  auto config = service_flags.LoadConfig("worker");
  if (!config.ok()) return Fail(config.status().message());
  if (listen.empty()) listen = config->GetString("worker.listen");
  auto endpoint = net::ParseEndpoint(listen);
  if (!endpoint.ok()) return Usage("--listen: " + endpoint.status().message());
  if (store_url.empty()) store_url = config->GetString("store.url");
  if (model_name.empty()) model_name = std::filesystem::path(model_path).stem().string();
  if (instance_id.empty()) instance_id = HostName() + "-" + std::to_string(::getpid());

  auto link = worker::EnclaveLink::Connect(
      *enclave_address, static_cast<int>(config->GetInt("worker.enclave_connections")),
      config->GetDuration("worker.enclave_timeout"));
  if (!link.ok()) return Fail(link.status().message());
  auto store = store::OpenStore(store_url, *config);
  if (!store.ok()) return Fail("--store: " + store.status().message());
  auto tenants = store::PrefixCache::Start(**store, store::keys::Tenant(""));
  if (!tenants.ok()) return Fail("reading tenants: " + tenants.status().message());

  engine::EngineLoadOptions load = engine::EngineLoadOptions::FromConfig(*config, model_path);
  worker::WorkerServiceOptions options;
  options.instance_id = instance_id;
  options.region = region;
  options.model_name = model_name;
  options.limits = LimitsFrom(*config);
  options.task_threads = static_cast<int>(config->GetInt("worker.seal_threads"));
  options.retry_after =
      std::chrono::duration_cast<std::chrono::seconds>(config->GetDuration("worker.retry_after"));
  // As many as the engine may hold, so that a burst it could take is not refused while its
  // requests are still being read and tokenized.
  options.max_pending = int64_t{load.engine.max_running} + load.engine.max_queued;
  options.capacity = load.engine.max_running;

  auto registry = std::make_shared<metrics::Registry>();
  store::ExportCacheStaleness(**tenants, *registry);  // the cache outlives the server below
  metrics::HttpMetrics http_metrics(registry);
  worker::WorkerService service(options, link->get(), tenants->get(), registry);
  auto router = std::make_shared<net::HttpRouter>();
  service.AddRoutes(*router);
  net::ServerOptions server_options = net::ServerOptions::FromConfig(*config);
  server_options.observer = &http_metrics;
  net::HttpServer server(server_options, router);
  if (base::Status status = server.Listen(*endpoint); !status.ok()) return Fail(status.message());
  if (base::Status status = server.Start(); !status.ok()) return Fail(status.message());
  net::Endpoint bound = server.BoundEndpoints().front();
  if (advertise.empty()) advertise = AdvertisedAddress(bound);
  spdlog::info("worker {} listening on {}; loading {}", instance_id, bound.ToString(), model_path);

  auto started = std::chrono::steady_clock::now();
  auto engine = engine::LoadEngine(load);
  if (!engine.ok()) {
    server.Stop();
    return Fail(engine.status().message());
  }
  std::chrono::duration<double> load_time = std::chrono::steady_clock::now() - started;
  spdlog::info("model {} loaded in {:.3f} s", model_name, load_time.count());
  service.SetEngine(std::move(*engine), load_time);

  store::Instance record;
  record.id = instance_id;
  record.region = region;
  record.address = advertise;
  record.model = model_name;
  record.capacity = options.capacity;
  record.capacity_type = config->GetString("worker.capacity_type");
  worker::EnclaveLink* enclave = link->get();
  std::string binding = region + "/" + instance_id;
  auto registration = worker::Registration::Start(
      **store, record,
      [enclave, binding]() -> base::Result<crypto::Bytes> {
        SC_ASSIGN_OR_RETURN(crypto::Bytes nonce, crypto::RandomBytes(16));
        return enclave->Attest(nonce, crypto::AsBytes(binding));
      },
      [&service](const crypto::Bytes& document) { service.SetAttestation(document); },
      {.lease_ttl =
           std::max(std::chrono::seconds(1), std::chrono::duration_cast<std::chrono::seconds>(
                                                 config->GetDuration("worker.lease_ttl"))),
       .attestation_refresh = config->GetDuration("worker.attestation_refresh")});
  if (!registration.ok()) {
    server.Stop();
    return Fail("registering: " + registration.status().message());
  }
  std::cout << "worker " << instance_id << " serving on " << advertise << std::endl;
  spdlog::info("worker {} serving {} on {} (region {})", instance_id, model_name, advertise,
               region);

  int received = WaitForSignal();
  auto drain_timeout = config->GetDuration("worker.drain_timeout");
  spdlog::info("received {}, draining (up to {} ms)", received == SIGTERM ? "SIGTERM" : "SIGINT",
               drain_timeout.count());
  service.BeginDrain();
  if (base::Status marked = (*registration)->MarkDraining(); !marked.ok()) {
    spdlog::warn("marking the registration draining: {}", marked.message());
  }
  if (!service.WaitIdle(drain_timeout)) {
    spdlog::warn("{} requests still running after {} ms; cancelling them", service.in_flight(),
                 drain_timeout.count());
    service.CancelAll();
    service.WaitIdle(std::chrono::seconds(5));
  }
  (*registration)->Stop();
  server.Drain();
  spdlog::info("worker {} stopped", instance_id);
  return kExitOk;
}

}  // namespace supercluster::cli
