// The worker's HTTP API (docs/data-plane.md, "Worker"): the sealed API, the attestation
// document, the OpenAI-compatible plaintext API, health, readiness, metrics and status.
// `supercluster worker` (src/cli/worker_command.cc) builds one, adds its routes to the
// HttpServer's router, then hands it the loaded engine.
//
// Threading: handlers run on the server's io threads and never block: everything that may
// (enclave calls, tokenizing, formatting) runs on the service's task threads
// (worker.seal_threads), and the engine's callbacks only queue events (generation_stream.h).
//
// Admission is bounded everywhere: the engine (engine.max_running + engine.max_queued
// running or waiting; full -> 503 with Retry-After), and requests accepted but not yet
// handed to the engine (max_pending, as many; beyond it -> 503). A draining or
// still-loading worker answers 503.
//
// Plaintext policy: the OpenAI-compatible endpoints serve only the tenant named by the
// router's X-Supercluster-Tenant header, and only if that tenant's record has
// allow_plaintext; anyone else gets 403 plaintext_forbidden. The worker trusts that header:
// its port must be reachable by routers only. The sealed API needs no such permission.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "crypto/bytes.h"
#include "engine/engine.h"
#include "metrics/registry.h"
#include "net/http_server.h"
#include "store/prefix_cache.h"
#include "worker/completion_request.h"

namespace supercluster::worker {

class EnclaveLink;

struct WorkerServiceOptions {
  std::string instance_id;
  std::string region;
  std::string model_name;  // what requests must name in "model"
  CompletionLimits limits;
  int task_threads = 4;                 // worker.seal_threads
  std::chrono::seconds retry_after{1};  // worker.retry_after
  int64_t max_pending = 64;             // accepted, not yet in the engine
  int64_t capacity = 0;                 // sequences the engine runs at once (status)
};

enum class WorkerState { kLoading, kServing, kDraining };
const char* WorkerStateName(WorkerState state);

class WorkerService {
 public:
  // `enclave` must outlive the service. `tenants` follows keys::Tenant("") and may be null
  // (then no tenant may use plaintext). `registry` gets the worker's metrics.
  WorkerService(WorkerServiceOptions options, EnclaveLink* enclave,
                const store::PrefixCache* tenants, std::shared_ptr<metrics::Registry> registry);
  // Cancels what still runs and waits for the task threads. Precondition: the HttpServer
  // the routes were added to has stopped.
  ~WorkerService();
  WorkerService(const WorkerService&) = delete;
  WorkerService& operator=(const WorkerService&) = delete;

  // Adds every route of the worker API, /healthz, /readyz and /metrics included.
  void AddRoutes(net::HttpRouter& router);

  // Loading -> serving. `load_time` is recorded as gpu_cluster_model_load_time_seconds.
  void SetEngine(std::unique_ptr<engine::Engine> engine, std::chrono::duration<double> load_time);
  // The current attestation document of the enclave (GET /v1/attestation).
  void SetAttestation(crypto::Bytes document);

  // Refuses new requests from now on (503, /readyz 503); running ones go on.
  void BeginDrain();
  // Blocks until no request is in flight or `timeout` passed; true when none is.
  bool WaitIdle(std::chrono::milliseconds timeout);
  // Cancels every request the engine holds: one with nothing of its answer sent yet gets
  // 503 unavailable (a router retries it elsewhere), a stream under way ends with an error.
  void CancelAll();

  WorkerState state() const;
  int64_t in_flight() const;
  // Engine statistics (zeros while loading).
  engine::EngineStats EngineStats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace supercluster::worker
