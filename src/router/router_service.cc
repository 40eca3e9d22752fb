#include "router/router_service.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdlib>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <set>
#include <span>
#include <string_view>

#include "base/plain_name.h"
#include "metrics/endpoints.h"
#include "router/proxy.h"
#include "router/requested_model.h"

namespace supercluster::router {
namespace {

using nlohmann::json;

constexpr char kTenantHeader[] = "X-Supercluster-Tenant";
constexpr char kRequestIdHeader[] = "X-Supercluster-Request-Id";
constexpr char kSpilledHeader[] = "X-Supercluster-Spilled";
constexpr char kModelHeader[] = "X-Supercluster-Model";
constexpr char kCandidatesHeader[] = "X-Supercluster-Candidates";

std::string NewRequestId() {
  static thread_local std::mt19937_64 engine{std::random_device{}()};
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string id(16, '0');
  uint64_t bits = engine();
  for (int i = 0; i < 16; ++i) id[i] = kDigits[(bits >> (i * 4)) & 0xf];
  return id;
}

// A client-sent request id is kept if it is short and plain; anything else is replaced
// (it ends up in logs).
bool UsableRequestId(std::string_view id) { return base::IsPlainName(id, 64); }

// The longest model name a request may give (model names are short: "llama-2-7b-chat",
// "meta-llama/Llama-2-7b-chat-hf").
constexpr size_t kMaxModelNameBytes = 256;

// The answer to a longer one: cold and out of line, off the request path's instructions.
// The name is not echoed: it would go into errors, logs and lookups.
[[gnu::cold, gnu::noinline]] net::HttpResponse ModelNameTooLong() {
  return ErrorResponse(400,
                       "the model name is longer than " + std::to_string(kMaxModelNameBytes) +
                           " bytes",
                       "invalid_request_error");
}

std::string Trim(std::string_view text) {
  size_t begin = text.find_first_not_of(" \t");
  if (begin == std::string_view::npos) return "";
  size_t end = text.find_last_not_of(" \t");
  return std::string(text.substr(begin, end - begin + 1));
}

// "R/ID,R/ID" -> the ids; kInvalidArgument when an entry is not REGION/ID.
base::Result<std::set<std::string>> ParseCandidates(const std::string& header) {
  std::set<std::string> candidates;
  size_t start = 0;
  while (start <= header.size()) {
    size_t comma = header.find(',', start);
    if (comma == std::string::npos) comma = header.size();
    std::string entry = Trim(std::string_view(header).substr(start, comma - start));
    size_t slash = entry.find('/');
    if (entry.empty() || slash == 0 || slash == std::string::npos || slash + 1 == entry.size()) {
      return base::InvalidArgument(std::string(kCandidatesHeader) +
                                   ": expected REGION/INSTANCE,REGION/INSTANCE");
    }
    candidates.insert(entry);
    start = comma + 1;
  }
  if (candidates.empty() || candidates.size() > 64) {
    return base::InvalidArgument(std::string(kCandidatesHeader) + ": expected 1 to 64 workers");
  }
  return candidates;
}

std::string RegionOf(const std::string& worker_id) { return worker_id.substr(0, worker_id.find('/')); }

std::string JoinRegions(const std::vector<std::string>& regions) {
  std::string text;
  for (const std::string& region : regions) text += (text.empty() ? "" : ", ") + region;
  return text.empty() ? "(any)" : text;
}

}  // namespace

const char* TierName(Tier tier) { return tier == Tier::kRegional ? "regional" : "global"; }

RouterServiceOptions RouterServiceOptions::FromConfig(const base::Config& config) {
  RouterServiceOptions options;
  options.balancer.ewma_decay = config.GetDuration("router.ewma_decay");
  options.balancer.initial_latency = config.GetDuration("router.ewma_initial_latency");
  options.balancer.failures_to_eject = static_cast<int>(config.GetInt("router.ejection_failures"));
  options.balancer.base_ejection_time = config.GetDuration("router.ejection_base_time");
  options.balancer.max_ejection_time = config.GetDuration("router.ejection_max_time");
  options.balancer.health_failures_to_mark_down =
      static_cast<int>(config.GetInt("router.health_failures"));
  options.balancer.retry_budget.ratio = config.GetFloat("router.retry_budget_ratio");
  options.balancer.retry_budget.min_retries_per_second =
      config.GetFloat("router.retry_budget_min_per_second");
  options.balancer.retry_budget.window = config.GetDuration("router.retry_budget_window");
  options.health.interval = config.GetDuration("router.health_interval");
  options.health.timeout = config.GetDuration("router.health_timeout");
  options.upstream.io_threads = static_cast<int>(config.GetInt("router.upstream_io_threads"));
  options.upstream.max_idle_per_endpoint =
      static_cast<size_t>(config.GetInt("router.upstream_max_idle_connections"));
  options.upstream.connect_timeout = config.GetDuration("router.upstream_connect_timeout");
  options.upstream.response_timeout = config.GetDuration("router.upstream_response_timeout");
  options.max_attestation_candidates =
      static_cast<int>(config.GetInt("router.max_attestation_candidates"));
  options.max_collected_response_bytes =
      static_cast<uint64_t>(config.GetInt("router.max_collected_response_bytes"));
  return options;
}

// The request handlers; a class of its own so that router_service.h stays small.
class RouterService::Handlers {
 public:
  explicit Handlers(RouterService& service) : service_(service) {}

  // ---- admission ----

  // The tenant is shared, not copied, by everything the request's routing keeps.
  struct Admitted {
    std::shared_ptr<const store::Tenant> tenant;
    std::shared_ptr<void> hold;
    std::string request_id;  // as the request now carries it
  };

  // Authenticates and admits; on refusal answers the client and returns nullopt. Also
  // removes a client-sent tenant header and sets the request id.
  std::optional<Admitted> Admit(net::HttpRequest& request, net::Responder& responder) {
    request.headers.Remove(kTenantHeader);
    Admitted admitted;
    const std::optional<std::string_view> sent_id = request.headers.Find(kRequestIdHeader);
    admitted.request_id =
        sent_id && UsableRequestId(*sent_id) ? std::string(*sent_id) : NewRequestId();
    // A client's id field is set again, which also drops any second one (whose bytes were
    // never checked); that takes a pass over the fields. Adding one where there was none
    // (the usual case) does not.
    if (sent_id) {
      request.headers.SetKnown(kRequestIdHeader, admitted.request_id);
    } else {
      request.headers.AddKnown(kRequestIdHeader, admitted.request_id);
    }
    TenantGate* gate = service_.dependencies_.gate;
    if (gate == nullptr) {
      // Static mode (benchmarks, tests): no tenant records, so no tenant policy here; a
      // worker still applies its own.
      admitted.tenant = Anonymous();
      return admitted;
    }
    base::Result<std::shared_ptr<const store::Tenant>> tenant =
        gate->Authenticate(request.headers.Find("Authorization").value_or(std::string_view()));
    if (!tenant.ok()) {
      net::HttpResponse response =
          ErrorResponse(401, tenant.status().message(), "unauthenticated");
      response.headers.Set("WWW-Authenticate", "Bearer");
      return Refuse(request, responder, std::move(response), RequestOutcome::kUnauthenticated);
    }
    std::chrono::seconds retry_after{1};
    base::Result<std::shared_ptr<AdmissionTicket>> admission =
        gate->Admit(**tenant, request.body.size(), &retry_after);
    if (!admission.ok()) {
      if (admission.status().code() == base::StatusCode::kOutOfRange) {
        return Refuse(request, responder,
                      ErrorResponse(413, admission.status().message(), "request_too_large"),
                      RequestOutcome::kTooLarge);
      }
      net::HttpResponse response = ErrorResponse(429, admission.status().message(), "rate_limited");
      response.headers.Set("Retry-After", std::to_string(std::max<int64_t>(1, retry_after.count())));
      return Refuse(request, responder, std::move(response), RequestOutcome::kRateLimited);
    }
    admitted.tenant = std::move(*tenant);
    admitted.hold = std::move(*admission);
    return admitted;
  }

  std::optional<Admitted> Refuse(const net::HttpRequest& request, net::Responder& responder,
                                 net::HttpResponse response, RequestOutcome outcome) {
    response.headers.Set(kRequestIdHeader, request.headers.Get(kRequestIdHeader));
    responder.Send(std::move(response));
    service_.metrics_->RequestDone(outcome);
    return std::nullopt;
  }

  void Answer(const net::HttpRequest& request, net::Responder& responder,
              net::HttpResponse response, RequestOutcome outcome) {
    Refuse(request, responder, std::move(response), outcome);
  }

  // ---- where requests go ----

  // Other regions' routers in the order a spill tries them: the region record's peers
  // first, then the rest by measured round trip.
  std::vector<PeerRouter> OrderedPeers() {
    std::vector<PeerRouter> peers = service_.peers_->RegionalRouters();
    std::vector<std::string> preference = service_.peers_->SpillPreference();
    auto rank = [&](const PeerRouter& peer) -> std::pair<double, double> {
      auto it = std::find(preference.begin(), preference.end(), peer.region);
      double preferred = it == preference.end() ? 1e9 : static_cast<double>(it - preference.begin());
      double rtt = service_.region_balancer_.RoundTripMs(peer.region);
      return {preferred, rtt < 0 ? 1e9 : rtt};
    };
    std::stable_sort(peers.begin(), peers.end(), [&](const PeerRouter& a, const PeerRouter& b) {
      return rank(a) < rank(b);
    });
    return peers;
  }

  // Where one request may go, as Forward worked it out; read by the route's calls.
  struct RouteFacts {
    std::shared_ptr<const store::Tenant> tenant;
    std::string model;
    std::optional<std::set<std::string>> candidates;  // of a sealed request
    bool try_local = false;  // regional: this region's workers may serve it
    bool may_spill = false;  // regional: other regions' routers may take it
    bool tenant_served_here = false;  // regional: the tenant may be served in this region
  };

  // The ProxyRoute of one request: one object, allocated once per request.
  class Route final : public ProxyRoute {
   public:
    Route(Handlers& handlers, RouteFacts facts) : handlers_(handlers), facts_(std::move(facts)) {}
    std::optional<ProxyTarget> Next(std::span<const std::string_view> tried) override {
      return handlers_.service_.options_.tier == Tier::kRegional
                 ? handlers_.RegionalNext(facts_, tried)
                 : handlers_.GlobalNext(facts_, tried);
    }
    net::HttpResponse NoTargetResponse() override { return handlers_.NoTargetResponse(facts_); }

   private:
    Handlers& handlers_;
    const RouteFacts facts_;
  };

  // What the regional tier tries for one request: local workers (by two choices), then the
  // peers' routers (unless the request was spilled here already).
  std::optional<ProxyTarget> RegionalNext(const RouteFacts& route,
                                          std::span<const std::string_view> tried) {
    auto already = [&tried](const std::string& id) {
      return std::find(tried.begin(), tried.end(), id) != tried.end();
    };
    const std::optional<std::set<std::string>>& candidates = route.candidates;
    if (route.try_local) {
      const std::vector<WorkerInfo>& workers =
          service_.dependencies_.workers->EligibleOnThisThread();
      // Views into `workers`, which stays alive here; the list's room is kept from request
      // to request on this thread (one allocation fewer per request). Not reentered: the
      // balancer calls nothing back.
      static thread_local std::vector<std::string_view> ids;
      ids.clear();
      for (const WorkerInfo& worker : workers) {
        if (!worker.model.empty() && worker.model != route.model) continue;
        if (candidates && !candidates->count(worker.id)) continue;
        if (already(worker.id)) continue;
        ids.push_back(worker.id);
      }
      // A first try is counted as started by the pick (the proxy tries it at once); a
      // retry is not, since the proxy may yet refuse it for the retry budget.
      const bool first_try = tried.empty();
      std::optional<std::string_view> pick =
          first_try ? service_.worker_balancer_.PickAndStart(ids, /*first_try=*/true)
                    : service_.worker_balancer_.Pick(ids);
      if (pick) {
        for (const WorkerInfo& worker : workers) {
          if (worker.id == *pick) {
            return ProxyTarget{worker.id, worker.endpoint, false, false,
                               &service_.worker_balancer_, /*started=*/first_try};
          }
        }
      }
    }
    if (!route.may_spill) return std::nullopt;
    for (const PeerRouter& peer : OrderedPeers()) {
      if (!TenantGate::RegionAllowed(*route.tenant, peer.region) || already(peer.region)) continue;
      if (candidates && std::none_of(candidates->begin(), candidates->end(),
                                     [&](const std::string& id) {
                                       return RegionOf(id) == peer.region;
                                     })) {
        continue;
      }
      if (!service_.region_balancer_.Available(peer.region)) continue;
      return ProxyTarget{peer.region, peer.endpoint, true, true, &service_.region_balancer_};
    }
    return std::nullopt;
  }

  // The healthy regional routers the tenant may use, nearest first.
  std::vector<PeerRouter> NearestRegions(const store::Tenant& tenant) {
    std::vector<PeerRouter> regions;
    for (const PeerRouter& peer : service_.peers_->RegionalRouters()) {
      if (!TenantGate::RegionAllowed(tenant, peer.region)) continue;
      if (!service_.region_balancer_.Available(peer.region)) continue;
      regions.push_back(peer);
    }
    auto rtt = [this](const PeerRouter& peer) {
      double value = service_.region_balancer_.RoundTripMs(peer.region);
      return value < 0 ? 1e9 : value;
    };
    std::stable_sort(regions.begin(), regions.end(),
                     [&](const PeerRouter& a, const PeerRouter& b) { return rtt(a) < rtt(b); });
    return regions;
  }

  // What the global tier tries: the healthy regions the tenant may use, nearest first
  // (NearestRegions' order), skipping those tried and, for a sealed request, those that
  // hold none of its candidates. Per request, so the nearest is found in one pass over
  // the regions, without copying or sorting them, and under one balancer lock, which also
  // counts a first try as started (the proxy tries it at once).
  std::optional<ProxyTarget> GlobalNext(const RouteFacts& route,
                                        std::span<const std::string_view> tried) {
    const std::optional<std::set<std::string>>& candidates = route.candidates;
    const std::vector<PeerRouter>& regions = service_.peers_->RegionalRouters();
    // Views into `regions`, in its (name) order, so that a tie goes to the region first by
    // name, as NearestRegions' stable sort has it. The list's room is kept per thread.
    static thread_local std::vector<std::string_view> allowed;
    allowed.clear();
    for (const PeerRouter& region : regions) {
      if (!TenantGate::RegionAllowed(*route.tenant, region.region)) continue;
      if (std::find(tried.begin(), tried.end(), region.region) != tried.end()) continue;
      if (candidates && std::none_of(candidates->begin(), candidates->end(),
                                     [&](const std::string& id) {
                                       return RegionOf(id) == region.region;
                                     })) {
        continue;
      }
      allowed.push_back(region.region);
    }
    const bool first_try = tried.empty();
    std::optional<std::string_view> nearest = service_.region_balancer_.NearestAndStart(
        allowed, /*start=*/first_try, /*first_try=*/first_try);
    if (!nearest) return std::nullopt;
    for (const PeerRouter& region : regions) {
      if (region.region == *nearest) {
        return ProxyTarget{region.region, region.endpoint, true, false,
                           &service_.region_balancer_, /*started=*/first_try};
      }
    }
    return std::nullopt;  // not reached: the nearest is one of `regions`
  }

  // Whether some region the tenant may use exists at all (healthy or not) besides, for a
  // regional router, its own.
  // Whether some peer region may serve the tenant (and, for a sealed request, holds one of
  // its candidates: it can go nowhere else).
  bool AnyAllowedPeer(const store::Tenant& tenant,
                      const std::optional<std::set<std::string>>& candidates = std::nullopt) {
    for (const PeerRouter& peer : service_.peers_->RegionalRouters()) {
      if (!TenantGate::RegionAllowed(tenant, peer.region)) continue;
      if (!candidates || std::any_of(candidates->begin(), candidates->end(),
                                     [&peer](const std::string& id) {
                                       return RegionOf(id) == peer.region;
                                     })) {
        return true;
      }
    }
    return false;
  }

  // Worked out only when it is needed (nothing could be tried), from the peers known then.
  net::HttpResponse NoTargetResponse(const RouteFacts& route) {
    const std::string& region = service_.options_.region;
    const bool global = service_.options_.tier == Tier::kGlobal;
    const bool local_allowed = !global && route.tenant_served_here;
    std::string allowed = JoinRegions(route.tenant->allowed_regions);
    bool any_allowed = local_allowed || AnyAllowedPeer(*route.tenant);
    if (!any_allowed) {
      return ErrorResponse(503,
                           "no allowed region can serve this request: tenant " + route.tenant->id +
                               " may only be served in " + allowed +
                               (global ? std::string() : ", and this is " + region),
                           "no_allowed_region");
    }
    if (global) {
      return ErrorResponse(503,
                           "no allowed region can serve this request now (allowed: " + allowed +
                               "; none of their routers passes its health checks)",
                           "no_healthy_region");
    }
    return ErrorResponse(503,
                         "no worker can take model " + route.model + " now in " + region +
                             (local_allowed ? "" : " (the tenant may not be served here)") +
                             ", and no allowed peer region could take it",
                         "no_capacity");
  }

  // ---- the proxied endpoints ----

  // The request is taken by `&&` here and in the handlers that call this: moving it costs.
  void Forward(net::HttpRequest&& request, std::shared_ptr<net::Responder> responder,
               Admitted admitted, std::string model,
               std::optional<std::set<std::string>> candidates) {
    if (model.size() > kMaxModelNameBytes) {
      return Answer(request, *responder, ModelNameTooLong(), RequestOutcome::kBadRequest);
    }
    const store::Tenant& tenant = *admitted.tenant;
    RouteFacts route;
    if (service_.options_.tier == Tier::kRegional) {
      route.tenant_served_here = TenantGate::RegionAllowed(tenant, service_.options_.region);
      WorkerDirectory* workers = service_.dependencies_.workers;
      bool known = workers->static_mode();
      if (!known) known = workers->KnowsModelOnThisThread(model);
      const bool spilled_in = request.headers.Has(kSpilledHeader);
      route.may_spill = !spilled_in && AnyAllowedPeer(tenant, candidates);
      if (!known && !route.may_spill) {
        return Answer(request, *responder,
                      ErrorResponse(404, "model " + model + " is not served in " +
                                             service_.options_.region,
                                    "model_not_found"),
                      RequestOutcome::kNotFound);
      }
      route.try_local = route.tenant_served_here && known;
    }
    ProxyRequest proxy;
    proxy.tenant_id = tenant.id;
    proxy.own_region = service_.options_.region;
    proxy.max_collected_response_bytes = service_.options_.max_collected_response_bytes;
    proxy.collect_timeout = service_.options_.upstream.response_timeout;
    proxy.keeps_spill_mark = service_.options_.tier == Tier::kRegional;
    proxy.hold = std::move(admitted.hold);
    proxy.request_id = std::move(admitted.request_id);
    route.tenant = std::move(admitted.tenant);
    route.model = std::move(model);
    route.candidates = std::move(candidates);
    proxy.route = std::make_unique<Route>(*this, std::move(route));
    StartProxy(std::move(request), std::move(proxy), std::move(responder), *service_.client_,
               *service_.metrics_);
  }

  // POST /v1/completions and /v1/chat/completions: the model comes from the JSON body.
  void Completion(net::HttpRequest&& request, std::shared_ptr<net::Responder> responder) {
    std::optional<Admitted> admitted = Admit(request, *responder);
    if (!admitted) return;
    // The worker refuses it too; refusing here keeps a confidential tenant's plaintext
    // prompt from travelling any further than the first router.
    if (!admitted->tenant->allow_plaintext) {
      return Answer(request, *responder,
                    ErrorResponse(403,
                                  "tenant " + admitted->tenant->id +
                                      " may not send plaintext; seal requests to the enclave "
                                      "(POST /v1/sealed)",
                                  "plaintext_forbidden"),
                    RequestOutcome::kPlaintextForbidden);
    }
    RequestedModel requested = ReadRequestedModel(request.body);
    switch (requested.problem) {
      case RequestedModel::Problem::kNotAnObject:
        return Answer(request, *responder,
                      ErrorResponse(400, "the request body is not a JSON object",
                                    "invalid_request_error"),
                      RequestOutcome::kBadRequest);
      case RequestedModel::Problem::kNoModel:
        return Answer(request, *responder,
                      ErrorResponse(400, "the request has no \"model\" string",
                                    "invalid_request_error"),
                      RequestOutcome::kBadRequest);
      case RequestedModel::Problem::kNone:
        break;
    }
    Forward(std::move(request), std::move(responder), std::move(*admitted),
            std::move(requested.model), std::nullopt);
  }

  // POST /v1/sealed: the model and the workers it was sealed to come from headers.
  void Sealed(net::HttpRequest&& request, std::shared_ptr<net::Responder> responder) {
    std::optional<Admitted> admitted = Admit(request, *responder);
    if (!admitted) return;
    std::string model = request.headers.Get(kModelHeader);
    if (model.empty()) {
      return Answer(request, *responder,
                    ErrorResponse(400, std::string("a sealed request needs ") + kModelHeader,
                                  "invalid_request_error"),
                    RequestOutcome::kBadRequest);
    }
    base::Result<std::set<std::string>> candidates =
        ParseCandidates(request.headers.Get(kCandidatesHeader));
    if (!candidates.ok()) {
      return Answer(request, *responder,
                    ErrorResponse(400, candidates.status().message(), "invalid_request_error"),
                    RequestOutcome::kBadRequest);
    }
    // Sealed to workers in no region of this cluster, the request can never be served: a
    // client error, not a 503 that says to wait and retry.
    if (std::none_of(candidates->begin(), candidates->end(), [this](const std::string& id) {
          return service_.peers_->KnowsRegion(RegionOf(id));
        })) {
      return Answer(request, *responder,
                    ErrorResponse(400,
                                  std::string(kCandidatesHeader) +
                                      " names no region of this cluster; get candidates from "
                                      "GET /v1/attestation",
                                  "invalid_request_error"),
                    RequestOutcome::kBadRequest);
    }
    // Sealed only to workers in regions the tenant may not use: it can never be served
    // (GET /v1/attestation gives a tenant candidates in its own regions only).
    const store::Tenant& tenant = *admitted->tenant;
    if (std::none_of(candidates->begin(), candidates->end(), [&tenant](const std::string& id) {
          return TenantGate::RegionAllowed(tenant, RegionOf(id));
        })) {
      return Answer(request, *responder,
                    ErrorResponse(400,
                                  std::string(kCandidatesHeader) +
                                      " names no region tenant " + tenant.id +
                                      " may be served in (" +
                                      JoinRegions(tenant.allowed_regions) +
                                      "); get candidates from GET /v1/attestation",
                                  "invalid_request_error"),
                    RequestOutcome::kBadRequest);
    }
    Forward(std::move(request), std::move(responder), std::move(*admitted), std::move(model),
            std::move(*candidates));
  }

  // ---- gathered answers (the global tier asks each region) ----

  // One region's answer to a gathered GET: its status (0 when none came) and, for a 200,
  // its body.
  struct GatheredAnswer {
    int status = 0;
    std::string body;
  };

  // GETs `target` from each of `regions` with the client's Authorization, then calls
  // `done` with the answers, in the order of `regions`.
  void Gather(const std::vector<PeerRouter>& regions, const std::string& target,
              const net::HttpRequest& client_request,
              std::function<void(std::vector<GatheredAnswer>)> done) {
    struct State {
      std::mutex mutex;
      std::vector<GatheredAnswer> answers;
      size_t remaining = 0;
      std::function<void(std::vector<GatheredAnswer>)> done;
    };
    auto state = std::make_shared<State>();
    state->answers.resize(regions.size());
    state->remaining = regions.size();
    state->done = std::move(done);
    if (regions.empty()) return state->done({});
    for (size_t i = 0; i < regions.size(); ++i) {
      net::HttpRequest request;
      request.method = "GET";
      request.target = target;
      request.headers.Set("Authorization", client_request.headers.Get("Authorization"));
      request.headers.Set(kRequestIdHeader, client_request.headers.Get(kRequestIdHeader));
      auto status = std::make_shared<int>(0);
      auto body = std::make_shared<std::string>();
      net::UpstreamCallbacks callbacks;
      callbacks.on_head = [status](const net::ResponseHead& head) { *status = head.status; };
      callbacks.on_data = [body](std::string_view data, std::function<void()> resume) {
        if (body->size() < (8u << 20)) body->append(data);
        resume();
      };
      callbacks.on_done = [state, status, body, i](const net::UpstreamResult& result) {
        std::vector<GatheredAnswer> answers;
        std::function<void(std::vector<GatheredAnswer>)> done;
        {
          std::lock_guard<std::mutex> lock(state->mutex);
          if (result.status.ok()) {
            state->answers[i].status = *status;
            if (*status == 200) state->answers[i].body = std::move(*body);
          }
          if (--state->remaining > 0) return;
          answers = std::move(state->answers);
          done = std::move(state->done);
        }
        done(std::move(answers));
      };
      service_.client_->Send(regions[i].endpoint, std::move(request), std::move(callbacks));
    }
  }

  // GET /v1/models: the models of the eligible workers (regional), or of every healthy
  // allowed region (global).
  void Models(net::HttpRequest request, std::shared_ptr<net::Responder> responder) {
    std::optional<Admitted> admitted = Admit(request, *responder);
    if (!admitted) return;
    auto answer = [this, responder, request_id = request.headers.Get(kRequestIdHeader)](
                      const std::set<std::string>& models) {
      json data = json::array();
      for (const std::string& model : models) {
        data.push_back({{"id", model}, {"object", "model"}, {"owned_by", "supercluster"}});
      }
      net::HttpResponse response =
          net::HttpResponse::Json(200, json{{"object", "list"}, {"data", data}}.dump());
      response.headers.Set(kRequestIdHeader, request_id);
      responder->Send(std::move(response));
      service_.metrics_->RequestDone(RequestOutcome::kOk);
    };
    if (service_.options_.tier == Tier::kRegional) {
      std::set<std::string> models;
      if (TenantGate::RegionAllowed(*admitted->tenant, service_.options_.region)) {
        // Held here: a range-for over `*Eligible()` would free the list under the loop
        // when another thread replaced it (the temporary pointer dies first).
        auto eligible = service_.dependencies_.workers->Eligible();
        for (const WorkerInfo& worker : *eligible) {
          if (!worker.model.empty()) models.insert(worker.model);
        }
      }
      return answer(models);
    }
    Gather(NearestRegions(*admitted->tenant), "/v1/models", request,
           [answer](std::vector<GatheredAnswer> answers) {
             std::set<std::string> models;
             for (const GatheredAnswer& gathered : answers) {
               json parsed = json::parse(gathered.body, nullptr, false);
               if (parsed.is_discarded() || !parsed.contains("data") || !parsed["data"].is_array()) {
                 continue;
               }
               for (const json& entry : parsed["data"]) {
                 if (entry.is_object() && entry.contains("id") && entry["id"].is_string()) {
                   models.insert(entry["id"].get<std::string>());
                 }
               }
             }
             answer(models);
           });
  }

  // GET /v1/attestation?model=M&k=N.
  void Attestation(net::HttpRequest request, std::shared_ptr<net::Responder> responder) {
    std::optional<Admitted> admitted = Admit(request, *responder);
    if (!admitted) return;
    std::string model = request.QueryParam("model");
    std::string k_text = request.QueryParam("k");
    int k = 3;
    if (!k_text.empty()) {
      char* end = nullptr;
      long parsed = std::strtol(k_text.c_str(), &end, 10);
      if (*end != '\0' || parsed < 1 || parsed > service_.options_.max_attestation_candidates) {
        return Answer(request, *responder,
                      ErrorResponse(400,
                                    "k must be a whole number from 1 to " +
                                        std::to_string(service_.options_.max_attestation_candidates),
                                    "invalid_request_error"),
                      RequestOutcome::kBadRequest);
      }
      k = static_cast<int>(parsed);
    }
    if (model.empty()) {
      return Answer(request, *responder,
                    ErrorResponse(400, "the model query parameter is required",
                                  "invalid_request_error"),
                    RequestOutcome::kBadRequest);
    }
    // No candidate at all is an error the client can act on, not an empty list: say whether
    // the tenant's residency is what leaves nothing.
    std::string nothing_message = "no worker serving model '" + model + "' is available";
    if (!admitted->tenant->allowed_regions.empty()) {
      std::string regions;
      for (const std::string& region : admitted->tenant->allowed_regions) {
        regions += (regions.empty() ? "" : ", ") + region;
      }
      nothing_message += " in the regions tenant '" + admitted->tenant->id + "' may use (" +
                         regions + ")";
    }
    // `unknown_model`: no region asked serves the model at all (404), rather than none of
    // its workers being available now (503, worth a retry).
    auto answer = [this, responder, request_id = request.headers.Get(kRequestIdHeader),
                   nothing_message, model](json candidates, bool unknown_model) {
      if (unknown_model) {
        net::HttpResponse response = ErrorResponse(
            404, "model " + model + " is not served in any region this request may use",
            "model_not_found");
        response.headers.Set(kRequestIdHeader, request_id);
        responder->Send(std::move(response));
        service_.metrics_->RequestDone(RequestOutcome::kNotFound);
        return;
      }
      if (candidates.empty()) {
        net::HttpResponse response = ErrorResponse(503, nothing_message, "no_capacity");
        response.headers.Set("Retry-After", "1");
        response.headers.Set(kRequestIdHeader, request_id);
        responder->Send(std::move(response));
        service_.metrics_->RequestDone(RequestOutcome::kNoUpstream);
        return;
      }
      net::HttpResponse response =
          net::HttpResponse::Json(200, json{{"candidates", std::move(candidates)}}.dump());
      response.headers.Set(kRequestIdHeader, request_id);
      responder->Send(std::move(response));
      service_.metrics_->RequestDone(RequestOutcome::kOk);
    };
    if (service_.options_.tier == Tier::kRegional) {
      WorkerDirectory* directory = service_.dependencies_.workers;
      if (!directory->static_mode() && !directory->KnowsModelOnThisThread(model)) {
        return answer(json::array(), /*unknown_model=*/true);
      }
      json candidates = json::array();
      if (TenantGate::RegionAllowed(*admitted->tenant, service_.options_.region)) {
        std::vector<WorkerInfo> workers;
        auto eligible = service_.dependencies_.workers->Eligible();  // held: see Models
        for (const WorkerInfo& worker : *eligible) {
          if (worker.model == model && !worker.attestation_b64.empty() &&
              service_.worker_balancer_.Available(worker.id)) {
            workers.push_back(worker);
          }
        }
        std::stable_sort(workers.begin(), workers.end(), [this](const WorkerInfo& a, const WorkerInfo& b) {
          return service_.worker_balancer_.Outstanding(a.id) <
                 service_.worker_balancer_.Outstanding(b.id);
        });
        for (size_t i = 0; i < workers.size() && i < static_cast<size_t>(k); ++i) {
          candidates.push_back({{"instance", workers[i].instance},
                                {"region", workers[i].region},
                                {"document", workers[i].attestation_b64}});
        }
      }
      return answer(std::move(candidates), /*unknown_model=*/false);
    }
    std::string target = "/v1/attestation?model=" + request.QueryParam("model") + "&k=" +
                         std::to_string(k);
    // The model goes back into a query string: only names that need no escaping.
    if (!base::IsPlainName(model, kMaxModelNameBytes)) {  // not empty: checked above
      return Answer(request, *responder,
                    ErrorResponse(400,
                                  "the model name has characters a model name cannot have, or "
                                  "is longer than " + std::to_string(kMaxModelNameBytes) +
                                      " bytes",
                                  "invalid_request_error"),
                    RequestOutcome::kBadRequest);
    }
    Gather(NearestRegions(*admitted->tenant), target, request,
           [answer, k](std::vector<GatheredAnswer> answers) {
             // Unknown when every region answered and each said it does not serve it.
             const bool unknown_model =
                 !answers.empty() &&
                 std::all_of(answers.begin(), answers.end(),
                             [](const GatheredAnswer& gathered) { return gathered.status == 404; });
             // Round robin across regions in RTT order, so that a client sealing to the
             // result has workers in more than one region to fall back on.
             std::vector<json> lists;
             for (const GatheredAnswer& gathered : answers) {
               json parsed = json::parse(gathered.body, nullptr, false);
               if (!parsed.is_discarded() && parsed.contains("candidates") &&
                   parsed["candidates"].is_array()) {
                 lists.push_back(parsed["candidates"]);
               }
             }
             json merged = json::array();
             for (size_t round = 0; static_cast<int>(merged.size()) < k; ++round) {
               bool any = false;
               for (const json& list : lists) {
                 if (round < list.size() && static_cast<int>(merged.size()) < k) {
                   merged.push_back(list[round]);
                   any = true;
                 }
               }
               if (!any) break;
             }
             answer(std::move(merged), unknown_model);
           });
  }

  void Status(net::HttpRequest, std::shared_ptr<net::Responder> responder) {
    responder->Send(net::HttpResponse::Json(200, service_.StatusJson()));
  }

 private:
  // Static mode's tenant (see Admit), shared by every request of the calling thread: one
  // shared by all threads would have every io thread write its reference count.
  static const std::shared_ptr<const store::Tenant>& Anonymous() {
    thread_local const std::shared_ptr<const store::Tenant> tenant = [] {
      auto made = std::make_shared<store::Tenant>();
      made->id = "anonymous";
      made->allow_plaintext = true;
      return made;
    }();
    return tenant;
  }

  RouterService& service_;
};

RouterService::RouterService(RouterServiceOptions options, RouterServiceDependencies dependencies)
    : options_(std::move(options)),
      dependencies_(std::move(dependencies)),
      worker_balancer_(options_.balancer),
      region_balancer_(options_.balancer) {}

base::Result<std::unique_ptr<RouterService>> RouterService::Create(
    RouterServiceOptions options, RouterServiceDependencies dependencies) {
  if (options.tier == Tier::kRegional && dependencies.workers == nullptr) {
    return base::InvalidArgument("a regional router needs its workers (--store or --static-worker)");
  }
  if (options.tier == Tier::kRegional && options.region.empty()) {
    return base::InvalidArgument("a regional router needs --region");
  }
  if (!dependencies.registry) dependencies.registry = std::make_shared<metrics::Registry>();
  std::unique_ptr<RouterService> service(new RouterService(std::move(options), std::move(dependencies)));
  SC_ASSIGN_OR_RETURN(service->peers_,
                      PeerDirectory::Create(service->dependencies_.routers,
                                            service->dependencies_.regions, service->options_.via,
                                            service->options_.tier == Tier::kRegional
                                                ? service->options_.region
                                                : std::string()));
  service->metrics_ = std::make_unique<RouterMetrics>(service->dependencies_.registry,
                                                      TierName(service->options_.tier));
  RouterMetrics* metrics = service->metrics_.get();
  auto on_ejected = [metrics](const std::string& id) {
    metrics->Ejected();
    spdlog::warn("upstream {} ejected after consecutive failures", id);
  };
  service->worker_balancer_.SetEjectionObserver(on_ejected);
  service->region_balancer_.SetEjectionObserver(on_ejected);
  service->handlers_ = std::make_unique<Handlers>(*service);
  service->client_ = std::make_unique<net::UpstreamClient>(service->options_.upstream);
  RouterService* raw = service.get();
  // A target the checks find unreachable may have requests waiting on it for their answer:
  // a region or worker that went silent (a partition, a stopped process) would hold them
  // for router.upstream_response_timeout. They fail now, and the proxy tries elsewhere while
  // nothing has reached the client (and the retry budget allows).
  auto on_unreachable = [raw](const HealthTarget& target) {
    raw->client_->AbandonWaiting(
        target.endpoint, base::Unavailable("upstream " + target.id +
                                           " stopped answering its health checks while this "
                                           "request waited for its answer"));
  };
  service->health_checker_ = std::make_unique<HealthChecker>(
      service->options_.health, [raw] { return raw->HealthTargets(); }, on_unreachable);
  return service;
}

RouterService::~RouterService() {
  Stop();
  health_checker_.reset();
  client_.reset();
}

void RouterService::Start() { health_checker_->Start(); }
void RouterService::Stop() {
  if (health_checker_) health_checker_->Stop();
}
void RouterService::CheckHealthNow() { health_checker_->CheckNow(); }

std::vector<HealthTarget> RouterService::HealthTargets() {
  std::vector<HealthTarget> targets;
  int64_t available = 0;
  if (options_.tier == Tier::kRegional) {
    std::vector<std::string> ids;
    auto eligible = dependencies_.workers->Eligible();  // held while the loop reads it
    for (const WorkerInfo& worker : *eligible) {
      targets.push_back(HealthTarget{worker.id, worker.endpoint, &worker_balancer_});
      ids.push_back(worker.id);
      if (worker_balancer_.Available(worker.id)) ++available;
    }
    worker_balancer_.Retain(ids);
  }
  std::vector<std::string> regions;
  for (const PeerRouter& peer : peers_->RegionalRouters()) {
    targets.push_back(HealthTarget{peer.region, peer.endpoint, &region_balancer_});
    regions.push_back(peer.region);
    if (options_.tier == Tier::kGlobal && region_balancer_.Available(peer.region)) ++available;
  }
  region_balancer_.Retain(regions);
  metrics_->SetUpstreamsAvailable(available);
  return targets;
}

bool RouterService::Ready() {
  if (options_.tier == Tier::kRegional) {
    auto eligible = dependencies_.workers->Eligible();  // held while the loop reads it
    for (const WorkerInfo& worker : *eligible) {
      if (worker_balancer_.Available(worker.id)) return true;
    }
    return false;
  }
  for (const PeerRouter& peer : peers_->RegionalRouters()) {
    if (region_balancer_.Available(peer.region)) return true;
  }
  return false;
}

std::string RouterService::StatusJson() {
  json upstreams = json::array();
  auto add = [&upstreams](Balancer& balancer, const char* kind) {
    for (const UpstreamState& state : balancer.States()) {
      upstreams.push_back({{"id", state.id},
                           {"kind", kind},
                           {"state", state.ejected ? "ejected" : state.healthy ? "available" : "down"},
                           {"outstanding", state.outstanding},
                           {"ewma_ms", state.ewma_ms},
                           {"ejected", state.ejected},
                           {"ejection_remaining_ms", state.ejection_remaining_ms},
                           {"times_ejected", state.times_ejected},
                           {"consecutive_failures", state.consecutive_failures},
                           {"healthy", state.healthy},
                           {"rtt_ms", state.rtt_ms}});
    }
  };
  add(worker_balancer_, "worker");
  add(region_balancer_, "region");
  json status = {{"tier", TierName(options_.tier)},
                 {"region", options_.region},
                 {"router_id", options_.router_id},
                 {"ready", Ready()},
                 {"upstreams", upstreams}};
  if (dependencies_.workers != nullptr) {
    status["static_workers"] = dependencies_.workers->static_mode();
    json rejected = json::object();
    for (const auto& [id, reason] : dependencies_.workers->Rejections()) rejected[id] = reason;
    status["ineligible_instances"] = rejected;
  }
  return status.dump(-1, ' ', false, json::error_handler_t::replace);
}

void RouterService::AddRoutes(net::HttpRouter& router) {
  Handlers* handlers = handlers_.get();
  metrics::AddObservabilityRoutes(router, dependencies_.registry, [this] { return Ready(); });
  router.Handle("POST", "/v1/completions", [handlers](net::HttpRequest&& request, auto responder) {
    handlers->Completion(std::move(request), std::move(responder));
  });
  router.Handle("POST", "/v1/chat/completions",
                [handlers](net::HttpRequest&& request, auto responder) {
                  handlers->Completion(std::move(request), std::move(responder));
                });
  router.Handle("POST", "/v1/sealed", [handlers](net::HttpRequest&& request, auto responder) {
    handlers->Sealed(std::move(request), std::move(responder));
  });
  router.Handle("GET", "/v1/models", [handlers](net::HttpRequest request, auto responder) {
    handlers->Models(std::move(request), std::move(responder));
  });
  router.Handle("GET", "/v1/attestation", [handlers](net::HttpRequest request, auto responder) {
    handlers->Attestation(std::move(request), std::move(responder));
  });
  router.Handle("GET", "/v1/status", [handlers](net::HttpRequest request, auto responder) {
    handlers->Status(std::move(request), std::move(responder));
  });
}

}  // namespace supercluster::router
