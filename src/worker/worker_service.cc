#include "worker/worker_service.h"

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <unordered_set>

#include "base/logging.h"
#include "crypto/secret.h"
#include "metrics/endpoints.h"
#include "base/base64.h"
#include "store/records.h"
#include "worker/enclave_link.h"
#include "worker/generation_stream.h"
#include "worker/openai_format.h"
#include "worker/task_queue.h"
#include "worker/worker_metrics.h"

namespace supercluster::worker {

const char* WorkerStateName(WorkerState state) {
  switch (state) {
    case WorkerState::kLoading:
      return "loading";
    case WorkerState::kServing:
      return "serving";
    case WorkerState::kDraining:
      return "draining";
  }
  return "unknown";
}

namespace {

using ResponderPtr = std::shared_ptr<net::Responder>;
using Clock = std::chrono::steady_clock;

// One refusal: the status code, the OpenAI-style error type and the metric outcome.
struct Refusal {
  int status;
  std::string type;
  std::string outcome;
  std::string message;
};

Refusal BadRequest(std::string message) {
  return {400, "invalid_request_error", "bad_request", std::move(message)};
}

// How an enclave refusal to open an envelope is answered: the client's fault (not sealed
// to this enclave, malformed, replayed, stale) is 400; the enclave out of room or out of
// reach is 503, so a router may try another worker.
Refusal EnclaveOpenRefusal(const base::Status& status) {
  switch (status.code()) {
    case base::StatusCode::kResourceExhausted:
    case base::StatusCode::kUnavailable:
    case base::StatusCode::kDeadlineExceeded:
    case base::StatusCode::kFailedPrecondition:
      return {503, "enclave_unavailable", "enclave_unavailable",
              "the enclave cannot take this request now: " + status.message()};
    default:
      return {400, "sealed_request_refused", "enclave_refused",
              "the enclave refused the sealed request: " + status.message()};
  }
}

}  // namespace

struct WorkerService::Impl {
  Impl(WorkerServiceOptions options_in, EnclaveLink* enclave_in,
       const store::PrefixCache* tenants_in, std::shared_ptr<metrics::Registry> registry)
      : options(std::move(options_in)),
        enclave(enclave_in),
        tenants(tenants_in),
        metrics(std::move(registry)),
        served_by(options.region + "/" + options.instance_id),
        created_unix(std::chrono::duration_cast<std::chrono::seconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count()),
        tasks(std::make_unique<TaskQueue>(options.task_threads)) {}

  // ---- state ----
  const WorkerServiceOptions options;
  EnclaveLink* const enclave;
  const store::PrefixCache* const tenants;
  WorkerMetrics metrics;
  const std::string served_by;
  const int64_t created_unix;

  std::atomic<WorkerState> state{WorkerState::kLoading};
  std::unique_ptr<engine::Engine> loaded_engine;  // set once, before state becomes serving

  mutable std::mutex mutex;
  std::condition_variable idle;
  int64_t in_flight = 0;  // admitted and not yet over
  int64_t pending = 0;    // admitted, not yet handed to the engine
  std::unordered_set<engine::Engine::RequestId> running_ids;
  crypto::Bytes attestation;
  std::mt19937_64 id_generator{std::random_device{}()};

  std::unique_ptr<TaskQueue> tasks;  // last: its threads use everything above

  // ---- answers ----
  void SendJson(const ResponderPtr& responder, int status, std::string body) {
    net::HttpResponse response = net::HttpResponse::Json(status, std::move(body));
    response.headers.Set("X-Supercluster-Served-By", served_by);
    responder->Send(std::move(response));
  }

  void Refuse(const ResponderPtr& responder, const Refusal& refusal) {
    metrics.CountRejected(refusal.outcome);
    net::HttpResponse response =
        net::HttpResponse::JsonError(refusal.status, refusal.message, refusal.type);
    response.headers.Set("X-Supercluster-Served-By", served_by);
    if (refusal.status == 503) {
      response.headers.Set("Retry-After", std::to_string(options.retry_after.count()));
    }
    responder->Send(std::move(response));
  }

  // ---- admission ----
  // Takes a pending slot, or says why not.
  std::optional<Refusal> Admit() {
    WorkerState now = state.load(std::memory_order_acquire);
    if (now == WorkerState::kLoading) {
      return Refusal{503, "unavailable", "loading", "the worker is still loading its model"};
    }
    if (now == WorkerState::kDraining) {
      return Refusal{503, "unavailable", "draining", "the worker is draining"};
    }
    std::lock_guard lock(mutex);
    if (pending >= options.max_pending) {
      return Refusal{503, "overloaded", "queue_full", "the worker's queue is full"};
    }
    ++pending;
    ++in_flight;
    return std::nullopt;
  }

  // The request is over before it reached the engine.
  void EndPending() {
    std::lock_guard lock(mutex);
    --pending;
    --in_flight;
    idle.notify_all();
  }

  std::string NewId(bool chat) {
    std::lock_guard lock(mutex);
    char text[17];
    std::snprintf(text, sizeof(text), "%016llx", static_cast<unsigned long long>(id_generator()));
    return std::string(chat ? "chatcmpl-" : "cmpl-") + text;
  }

  // ---- plaintext policy ----
  std::optional<Refusal> CheckPlaintextAllowed(const net::HttpRequest& request) const {
    std::string tenant_id = request.headers.Get("X-Supercluster-Tenant");
    auto forbidden = [](std::string message) {
      return Refusal{403, "plaintext_forbidden", "forbidden", std::move(message)};
    };
    if (tenant_id.empty()) {
      return forbidden(
          "no tenant: the plaintext API is served only through a router, for "
          "tenants allowed plaintext; use the sealed API (POST /v1/sealed)");
    }
    if (tenants == nullptr) {
      return forbidden("this worker has no tenant records; use the sealed API");
    }
    auto snapshot = tenants->Snapshot();
    auto found = snapshot->entries.find(store::keys::Tenant(tenant_id));
    if (found == snapshot->entries.end()) {
      return forbidden("tenant " + tenant_id + " is not known to this worker");
    }
    auto tenant = store::DecodeTenant(found->second.value, found->first);
    if (!tenant.ok()) return forbidden("tenant " + tenant_id + "'s record cannot be read");
    if (!tenant->allow_plaintext) {
      return forbidden("tenant " + tenant_id +
                       " may not send plaintext; seal requests to the enclave (POST /v1/sealed)");
    }
    return std::nullopt;
  }

  // ---- running a request ----
  // Hands `request` to the engine, answering through a GenerationStream. On refusal the
  // error is sent (and the enclave context closed); either way the pending slot is released.
  void Run(const CompletionRequest& completion, AnswerMode mode, uint64_t enclave_context,
           const ResponderPtr& responder, Clock::time_point arrived) {
    auto refuse = [&](const Refusal& refusal) {
      if (mode == AnswerMode::kSealed) (void)enclave->Close(enclave_context);
      Refuse(responder, refusal);
      EndPending();
    };
    if (completion.model != options.model_name) {
      return refuse({404, "model_not_found", "unknown_model",
                     "model " + completion.model + " is not served here (this worker serves " +
                         options.model_name + ")"});
    }
    auto generation = ToGenerationRequest(completion, loaded_engine->tokenizer(),
                                          loaded_engine->shape().context_length);
    if (!generation.ok()) return refuse(BadRequest(generation.status().message()));

    AnswerIdentity identity{NewId(completion.chat), created_unix_now(), options.model_name,
                            completion.chat, completion.stream && completion.include_usage};
    struct Tracking {
      std::optional<engine::Engine::RequestId> id;
      bool done = false;
    };
    auto tracking = std::make_shared<Tracking>();
    auto on_done = [this, tracking] {
      std::lock_guard lock(mutex);
      tracking->done = true;
      if (tracking->id) running_ids.erase(*tracking->id);
      --in_flight;
      idle.notify_all();
    };
    auto stream = std::make_shared<GenerationStream>(
        mode, responder, std::move(identity), enclave_context, arrived,
        StreamEnvironment{tasks.get(), enclave, &metrics, served_by, options.retry_after},
        std::move(on_done));
    auto submitted = loaded_engine->Submit(std::move(*generation), stream->Callback());
    if (!submitted.ok()) {
      if (submitted.status().code() == base::StatusCode::kResourceExhausted) {
        return refuse({503, "overloaded", "queue_full",
                       "the worker's queue is full: " + submitted.status().message()});
      }
      return refuse(BadRequest(submitted.status().message()));
    }
    engine::Engine::RequestId id = *submitted;
    {
      std::lock_guard lock(mutex);
      --pending;
      if (!tracking->done) {
        tracking->id = id;
        running_ids.insert(id);
      }
    }
    engine::Engine* running_engine = loaded_engine.get();
    stream->Begin([running_engine, id] { running_engine->Cancel(id); });
  }

  static int64_t created_unix_now() {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }

  // POST /v1/completions and /v1/chat/completions.
  void HandlePlaintext(net::HttpRequest request, ResponderPtr responder, CompletionApi api) {
    if (auto refusal = CheckPlaintextAllowed(request)) return Refuse(responder, *refusal);
    if (auto refusal = Admit()) return Refuse(responder, *refusal);
    Clock::time_point arrived = Clock::now();
    tasks->Post([this, request = std::move(request), responder, api, arrived] {
      auto completion = ParseCompletionRequest(request.body, api, options.limits);
      if (!completion.ok()) {
        Refuse(responder, BadRequest(completion.status().message()));
        return EndPending();
      }
      AnswerMode mode = completion->stream ? AnswerMode::kOpenAiStream : AnswerMode::kOpenAiWhole;
      Run(*completion, mode, 0, responder, arrived);
    });
  }

  // POST /v1/sealed.
  void HandleSealed(net::HttpRequest request, ResponderPtr responder) {
    std::string named_model = request.headers.Get("X-Supercluster-Model");
    if (!named_model.empty() && named_model != options.model_name) {
      return Refuse(responder, {404, "model_not_found", "unknown_model",
                                "model " + named_model +
                                    " is not served here (this worker "
                                    "serves " +
                                    options.model_name + ")"});
    }
    if (request.body.empty())
      return Refuse(responder, BadRequest("the body must be a sealed envelope"));
    if (auto refusal = Admit()) return Refuse(responder, *refusal);
    Clock::time_point arrived = Clock::now();
    tasks->Post([this, request = std::move(request), responder, arrived] {
      auto opened = enclave->Open(crypto::AsBytes(request.body));
      if (!opened.ok()) {
        Refuse(responder, EnclaveOpenRefusal(opened.status()));
        return EndPending();
      }
      auto completion = ParseCompletionRequest(crypto::AsText(opened->payload),
                                               CompletionApi::kEither, options.limits);
      crypto::Zeroize(opened->payload.data(), opened->payload.size());
      if (!completion.ok()) {
        (void)enclave->Close(opened->context_id);
        Refuse(responder, BadRequest("the opened request: " + completion.status().message()));
        return EndPending();
      }
      Run(*completion, AnswerMode::kSealed, opened->context_id, responder, arrived);
    });
  }

  // ---- the small GET endpoints ----
  std::string StatusJson() const {
    engine::EngineStats stats = engine_stats();
    nlohmann::json body = {{"instance", options.instance_id},
                           {"region", options.region},
                           {"model", options.model_name},
                           {"state", WorkerStateName(state.load())},
                           {"queued", stats.queued},
                           {"running", stats.running},
                           {"tokens_per_second", stats.tokens_per_second},
                           {"capacity", capacity()},
                           {"in_flight", in_flight_now()}};
    return body.dump();
  }

  engine::EngineStats engine_stats() const {
    if (state.load(std::memory_order_acquire) == WorkerState::kLoading) return {};
    return loaded_engine->Stats();
  }
  int64_t capacity() const {
    return state.load(std::memory_order_acquire) == WorkerState::kLoading ? 0 : options.capacity;
  }
  int64_t in_flight_now() const {
    std::lock_guard lock(mutex);
    return in_flight;
  }
};

WorkerService::WorkerService(WorkerServiceOptions options, EnclaveLink* enclave,
                             const store::PrefixCache* tenants,
                             std::shared_ptr<metrics::Registry> registry)
    : impl_(std::make_unique<Impl>(std::move(options), enclave, tenants, std::move(registry))) {
  // The engine's gauges are read at each scrape. The hook holds the service's state
  // without owning it: the server serving /metrics stops before the service goes (the
  // destructor's precondition).
  Impl* impl = impl_.get();
  impl->metrics.registry()->AddScrapeHook([impl] { impl->metrics.Refresh(impl->engine_stats()); });
}

WorkerService::~WorkerService() {
  // The engine's destructor cancels what runs; the cancelled events go through the task
  // threads, which the task queue's destructor lets finish.
  impl_->loaded_engine.reset();
  impl_->tasks.reset();
}

void WorkerService::AddRoutes(net::HttpRouter& router) {
  Impl* impl = impl_.get();
  router.Handle("GET", "/healthz", [](net::HttpRequest, ResponderPtr responder) {
    responder->Send(net::HttpResponse::Text(200, "ok\n"));
  });
  router.Handle("GET", "/readyz", [impl](net::HttpRequest, ResponderPtr responder) {
    WorkerState state = impl->state.load();
    if (state == WorkerState::kServing) {
      responder->Send(net::HttpResponse::Text(200, "ready\n"));
    } else {
      responder->Send(
          net::HttpResponse::Text(503, std::string("not ready: ") + WorkerStateName(state) + "\n"));
    }
  });
  router.Handle("GET", "/metrics", [impl](net::HttpRequest, ResponderPtr responder) {
    net::HttpResponse response;
    response.headers.Set("Content-Type", metrics::kExpositionContentType);
    response.body = impl->metrics.registry()->Serialize();
    responder->Send(std::move(response));
  });
  router.Handle("GET", "/v1/status", [impl](net::HttpRequest, ResponderPtr responder) {
    responder->Send(net::HttpResponse::Json(200, impl->StatusJson()));
  });
  router.Handle("GET", "/v1/attestation", [impl](net::HttpRequest, ResponderPtr responder) {
    crypto::Bytes document;
    {
      std::lock_guard lock(impl->mutex);
      document = impl->attestation;
    }
    if (document.empty()) {
      return impl->Refuse(
          responder, {503, "unavailable", "enclave_unavailable", "no attestation document yet"});
    }
    nlohmann::json body = {{"instance", impl->options.instance_id},
                           {"region", impl->options.region},
                           {"model", impl->options.model_name},
                           {"document", base::Base64Encode(crypto::AsText(document))}};
    impl->SendJson(responder, 200, body.dump());
  });
  router.Handle("GET", "/v1/models", [impl](net::HttpRequest request, ResponderPtr responder) {
    if (auto refusal = impl->CheckPlaintextAllowed(request))
      return impl->Refuse(responder, *refusal);
    impl->SendJson(responder, 200, ModelListJson(impl->options.model_name, impl->created_unix));
  });
  router.Handle("POST", "/v1/completions",
                [impl](net::HttpRequest request, ResponderPtr responder) {
                  impl->HandlePlaintext(std::move(request), std::move(responder),
                                        CompletionApi::kCompletions);
                });
  router.Handle(
      "POST", "/v1/chat/completions", [impl](net::HttpRequest request, ResponderPtr responder) {
        impl->HandlePlaintext(std::move(request), std::move(responder), CompletionApi::kChat);
      });
  router.Handle("POST", "/v1/sealed", [impl](net::HttpRequest request, ResponderPtr responder) {
    impl->HandleSealed(std::move(request), std::move(responder));
  });
}

void WorkerService::SetEngine(std::unique_ptr<engine::Engine> engine,
                              std::chrono::duration<double> load_time) {
  impl_->metrics.ObserveModelLoad(load_time);
  impl_->loaded_engine = std::move(engine);
  impl_->state.store(WorkerState::kServing, std::memory_order_release);
}

void WorkerService::SetAttestation(crypto::Bytes document) {
  std::lock_guard lock(impl_->mutex);
  impl_->attestation = std::move(document);
}

void WorkerService::BeginDrain() { impl_->state.store(WorkerState::kDraining); }

bool WorkerService::WaitIdle(std::chrono::milliseconds timeout) {
  std::unique_lock lock(impl_->mutex);
  return impl_->idle.wait_for(lock, timeout, [this] { return impl_->in_flight == 0; });
}

void WorkerService::CancelAll() {
  std::vector<engine::Engine::RequestId> ids;
  {
    std::lock_guard lock(impl_->mutex);
    ids.assign(impl_->running_ids.begin(), impl_->running_ids.end());
  }
  if (impl_->state.load(std::memory_order_acquire) == WorkerState::kLoading) return;
  impl_->loaded_engine->Cancel(ids);  // all at once: see Engine::Cancel
}

WorkerState WorkerService::state() const { return impl_->state.load(); }

int64_t WorkerService::in_flight() const { return impl_->in_flight_now(); }

engine::EngineStats WorkerService::EngineStats() const { return impl_->engine_stats(); }

}  // namespace supercluster::worker
