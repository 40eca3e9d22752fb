// `supercluster relay`: TCP relays that add inter-region round-trip times on one machine
// (net::DelayRelay), with an HTTP control API through which scripts and tests inject
// faults. `supercluster up` runs one relay process carrying every inter-region link as a
// named route.
//
// Routes: `--listen ADDR --target ADDR --delay RTT` is one route; `--route
// [NAME=]LISTEN=TARGET@RTT` (repeatable) adds more. --delay and @RTT are round-trip times:
// each direction is delayed by half. --jitter applies to every route.
//
// Control API (--control ADDR), each POST answered with the new status JSON; `?route=NAME`
// limits a POST to one route (default: all):
//   POST /cut                 reset open connections, refuse new ones
//   POST /blackhole           accept and read, never forward or answer
//   POST /restore             forward again (also sets the drop probability to 0)
//   POST /delay?rtt=65ms[&jitter=1ms]
//   POST /drop?p=0.1          reset that share of new connections at accept
//   GET  /status              {"routes":[{name, listen, target, mode, rtt, ...}]}
//   GET  /healthz /readyz /metrics
#include <pthread.h>
#include <signal.h>

#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "base/config.h"
#include "base/flags.h"
#include "base/logging.h"
#include "base/service_flags.h"
#include "cli/command.h"
#include "cli/commands.h"
#include "metrics/endpoints.h"
#include "net/delay_relay.h"
#include "net/http_server.h"
#include "net/relay_route.h"

namespace supercluster::cli {
namespace {

struct NamedRelay {
  std::string name;
  std::unique_ptr<net::DelayRelay> relay;
};

nlohmann::json RouteJson(const NamedRelay& route) {
  net::RelayStats stats = route.relay->Stats();
  return {{"name", route.name},
          {"listen", route.relay->listen_endpoint().ToString()},
          {"target", route.relay->target().ToString()},
          {"mode", net::RelayModeName(stats.mode)},
          {"rtt", net::FormatRelayDuration(2 * stats.one_way_delay)},
          {"rtt_ms", 2 * static_cast<double>(stats.one_way_delay.count()) / 1000.0},
          {"jitter", net::FormatRelayDuration(stats.jitter)},
          {"drop_probability", stats.drop_probability},
          {"connections",
           {{"accepted", stats.connections_accepted},
            {"open", stats.connections_open},
            {"refused", stats.connections_refused},
            {"dropped", stats.connections_dropped},
            {"reset", stats.connections_reset},
            {"target_connect_failures", stats.target_connect_failures}}},
          {"bytes",
           {{"to_target", stats.bytes_to_target},
            {"to_client", stats.bytes_to_client},
            {"buffered", stats.buffered_bytes}}}};
}

net::HttpResponse ErrorResponse(int status, const std::string& type, const std::string& message) {
  return net::HttpResponse::JsonError(status, message, type);
}

// The control API's handlers. The routes vector is fixed once the server starts; each
// DelayRelay method is thread-safe, so handlers need no lock.
class RelayControl {
 public:
  explicit RelayControl(const std::vector<NamedRelay>& routes) : routes_(routes) {}

  void AddRoutes(net::HttpRouter& router) {
    router.Handle("GET", "/status", [this](net::HttpRequest, std::shared_ptr<net::Responder> r) {
      r->Send(StatusResponse());
    });
    auto post = [&](const std::string& path,
                    std::function<std::optional<net::HttpResponse>(const net::HttpRequest&,
                                                                   net::DelayRelay&)> action) {
      router.Handle("POST", path, [this, action](net::HttpRequest request,
                                                  std::shared_ptr<net::Responder> responder) {
        responder->Send(Apply(request, action));
      });
    };
    post("/cut", [](const net::HttpRequest&, net::DelayRelay& relay) {
      relay.Cut();
      return std::nullopt;
    });
    post("/blackhole", [](const net::HttpRequest&, net::DelayRelay& relay) {
      relay.Blackhole();
      return std::nullopt;
    });
    post("/restore", [](const net::HttpRequest&, net::DelayRelay& relay) {
      relay.Restore();
      return std::nullopt;
    });
    post("/delay", [](const net::HttpRequest& request,
                      net::DelayRelay& relay) -> std::optional<net::HttpResponse> {
      auto rtt = net::ParseRelayDuration(request.QueryParam("rtt"));
      if (!rtt.ok()) return ErrorResponse(400, "bad_request", "rtt: " + rtt.status().message());
      std::chrono::microseconds jitter = relay.Stats().jitter;
      if (std::string text = request.QueryParam("jitter"); !text.empty()) {
        auto parsed = net::ParseRelayDuration(text);
        if (!parsed.ok()) {
          return ErrorResponse(400, "bad_request", "jitter: " + parsed.status().message());
        }
        jitter = *parsed;
      }
      relay.SetDelay(*rtt / 2, jitter);
      return std::nullopt;
    });
    post("/drop", [](const net::HttpRequest& request,
                     net::DelayRelay& relay) -> std::optional<net::HttpResponse> {
      auto probability = ParseProbability(request.QueryParam("p"));
      if (!probability) {
        return ErrorResponse(400, "bad_request",
                             "p: expected a probability from 0 to 1, such as 0.1");
      }
      relay.SetDropProbability(*probability);
      return std::nullopt;
    });
  }

 private:
  static std::optional<double> ParseProbability(const std::string& text) {
    if (text.empty() || text.size() > 20) return std::nullopt;
    for (char c : text) {
      if (!(c == '.' || (c >= '0' && c <= '9'))) return std::nullopt;
    }
    char* end = nullptr;
    double value = std::strtod(text.c_str(), &end);
    if (end != text.c_str() + text.size() || !(value >= 0.0 && value <= 1.0)) return std::nullopt;
    return value;
  }

  net::HttpResponse StatusResponse() const {
    nlohmann::json routes = nlohmann::json::array();
    for (const NamedRelay& route : routes_) routes.push_back(RouteJson(route));
    return net::HttpResponse::Json(200, nlohmann::json{{"routes", routes}}.dump() + "\n");
  }

  // Runs `action` on the route named by ?route= (or on all), then answers the status; the
  // first route whose action returns a response (a bad parameter) answers with it instead.
  // Parameters are the same for every route, so a bad one fails before any route changes.
  net::HttpResponse Apply(
      const net::HttpRequest& request,
      const std::function<std::optional<net::HttpResponse>(const net::HttpRequest&,
                                                           net::DelayRelay&)>& action) {
    // No ?route= means every route; `?route=` with no name is a mistake (an unset variable
    // in a script), not a request to act on all of them.
    std::optional<std::string> named = request.FindQueryParam("route");
    std::string wanted = named.value_or("");
    if (named && wanted.empty()) {
      return ErrorResponse(400, "bad_request", "route= names no route; leave it out for all");
    }
    bool found = false;
    for (const NamedRelay& route : routes_) {
      if (named && route.name != wanted) continue;
      found = true;
      if (auto error = action(request, *route.relay)) return std::move(*error);
    }
    if (!found) {
      return ErrorResponse(404, "unknown_route", "no route named '" + wanted +
                                                     "'; GET /status lists the routes");
    }
    spdlog::info("relay control: {} {}", request.method, request.target);
    return StatusResponse();
  }

  const std::vector<NamedRelay>& routes_;
};

int UsageError(const std::string& message) {
  std::cerr << "supercluster relay: " << message << "\n";
  return kExitUsage;
}

}  // namespace

int RunRelay(const std::vector<std::string>& args) {
  base::ServiceFlags service_flags;
  std::string listen, target, delay = "0", jitter = "0", control;
  std::vector<std::string> route_texts;
  base::FlagSet flags("supercluster relay [--listen ADDR --target ADDR --delay RTT] "
                      "[--route [NAME=]LISTEN=TARGET@RTT ...] [--control ADDR] [flags]");
  service_flags.Register(flags);
  flags.AddString("listen", &listen, "address clients connect to (one route, with --target)");
  flags.AddString("target", &target, "address every connection is forwarded to");
  flags.AddString("delay", &delay,
                  "round-trip time the relay adds (each direction gets half): 12ms, 1.5ms, 0");
  flags.AddString("jitter", &jitter,
                  "extra one-way delay per piece of data, uniform in [0, JITTER], every route");
  flags.AddRepeated("route", &route_texts,
                    "another route, [NAME=]LISTEN=TARGET@RTT (repeatable); NAME defaults to "
                    "LISTEN and selects the route in the control API");
  flags.AddString("control", &control,
                  "serve the HTTP control API here (POST /cut /blackhole /restore "
                  "/delay?rtt=D /drop?p=P, GET /status)");
  if (base::Status parsed = flags.Parse(args); !parsed.ok()) return UsageError(parsed.message());
  if (flags.help_requested()) {
    std::cout << flags.Help();
    return kExitOk;
  }

  std::vector<net::RelayRoute> routes;
  if (!listen.empty() || !target.empty()) {
    if (listen.empty() || target.empty()) return UsageError("--listen and --target go together");
    auto rtt = net::ParseRelayDuration(delay);
    if (!rtt.ok()) return UsageError("--delay: " + rtt.status().message());
    auto route = net::ParseRelayRoute(listen + "=" + target + "@" + net::FormatRelayDuration(*rtt));
    if (!route.ok()) return UsageError(route.status().message());
    routes.push_back(std::move(*route));
  } else if (delay != "0") {
    return UsageError("--delay needs --listen and --target (a --route carries its own @RTT)");
  }
  for (const std::string& text : route_texts) {
    auto route = net::ParseRelayRoute(text);
    if (!route.ok()) return UsageError("--route: " + route.status().message());
    routes.push_back(std::move(*route));
  }
  if (routes.empty()) return UsageError("no route: give --listen/--target/--delay or --route");
  std::set<std::string> names;
  for (const net::RelayRoute& route : routes) {
    if (!names.insert(route.name).second) {
      return UsageError("two routes named '" + route.name + "'; name them NAME=LISTEN=TARGET@RTT");
    }
  }
  auto jitter_value = net::ParseRelayDuration(jitter);
  if (!jitter_value.ok()) return UsageError("--jitter: " + jitter_value.status().message());
  std::optional<net::Endpoint> control_endpoint;
  if (!control.empty()) {
    auto parsed = net::ParseEndpoint(control);
    if (!parsed.ok()) return UsageError("--control: " + parsed.status().message());
    control_endpoint = *parsed;
  }

  base::Result<base::Config> config = service_flags.LoadConfig("relay");
  if (!config.ok()) {
    std::cerr << "supercluster relay: " << config.status().message() << "\n";
    return kExitFailure;
  }

  // Signals are taken with sigwait below, so block them before any thread starts (threads
  // inherit the mask) and no thread dies of SIGTERM before the relays stop.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  std::vector<NamedRelay> relays;
  for (const net::RelayRoute& route : routes) {
    net::RelayOptions options = net::RelayOptions::FromConfig(*config);
    options.listen = route.listen;
    options.target = route.target;
    options.one_way_delay = route.rtt / 2;
    options.jitter = *jitter_value;
    auto relay = std::make_unique<net::DelayRelay>(options);
    if (base::Status status = relay->Start(); !status.ok()) {
      std::cerr << "supercluster relay: route " << route.name << ": " << status.message() << "\n";
      return kExitFailure;
    }
    relays.push_back({route.name, std::move(relay)});
  }

  std::unique_ptr<net::HttpServer> control_server;
  auto registry = std::make_shared<metrics::Registry>();
  RelayControl control_api(relays);
  if (control_endpoint) {
    auto router = std::make_shared<net::HttpRouter>();
    metrics::AddObservabilityRoutes(*router, registry, [] { return true; });
    control_api.AddRoutes(*router);
    net::ServerOptions options = net::ServerOptions::FromConfig(*config);
    options.io_threads = 1;
    control_server = std::make_unique<net::HttpServer>(options, router);
    base::Status status = control_server->Listen(*control_endpoint);
    if (status.ok()) status = control_server->Start();
    if (!status.ok()) {
      std::cerr << "supercluster relay: --control: " << status.message() << "\n";
      return kExitFailure;
    }
  }

  for (const NamedRelay& route : relays) {
    net::RelayStats stats = route.relay->Stats();
    spdlog::info("relay serving on {} -> {} (route {}, rtt {}, jitter {})",
                 route.relay->listen_endpoint().ToString(), route.relay->target().ToString(),
                 route.name, net::FormatRelayDuration(2 * stats.one_way_delay),
                 net::FormatRelayDuration(stats.jitter));
  }
  if (control_server) {
    for (const net::Endpoint& bound : control_server->BoundEndpoints()) {
      spdlog::info("relay control on {} (POST /cut /blackhole /restore /delay /drop, GET /status)",
                   bound.ToString());
    }
  }

  int received = 0;
  sigwait(&stop_signals, &received);
  spdlog::info("received {}, stopping", received == SIGTERM ? "SIGTERM" : "SIGINT");
  if (control_server) control_server->Stop();
  for (NamedRelay& route : relays) route.relay->Stop();
  spdlog::info("stopped");
  return kExitOk;
}

}  // namespace supercluster::cli
