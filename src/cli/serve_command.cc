// `supercluster serve`: a plain HTTP service with /healthz, /readyz, /metrics and an echo
// endpoint. It is the smallest complete service built from net and metrics: the demo runs
// it, bench/http measures it against nginx, and later services start the same way.
#include <iostream>

#include "base/config.h"
#include "base/flags.h"
#include "base/logging.h"
#include "cli/command.h"
#include "cli/commands.h"
#include "base/service_flags.h"
#include "metrics/endpoints.h"
#include "metrics/http_metrics.h"
#include "net/http_server.h"

namespace supercluster::cli {
namespace {

void AddEchoRoutes(net::HttpRouter& router) {
  // GET answers a fixed short body (the benchmark's "small keep-alive request");
  // POST answers the request body back.
  router.Handle("GET", "/v1/echo", [](net::HttpRequest, std::shared_ptr<net::Responder> responder) {
    responder->Send(net::HttpResponse::Text(200, "hello from supercluster\n"));
  });
  router.Handle("POST", "/v1/echo",
                [](net::HttpRequest request, std::shared_ptr<net::Responder> responder) {
                  net::HttpResponse response;
                  response.headers.Set("Content-Type", request.headers.Has("Content-Type")
                                                           ? request.headers.Get("Content-Type")
                                                           : "application/octet-stream");
                  response.body = std::move(request.body);
                  responder->Send(std::move(response));
                });
}

}  // namespace

int RunServe(const std::vector<std::string>& args) {
  base::ServiceFlags service_flags;
  std::string listen;
  base::FlagSet flags("supercluster serve [flags]");
  service_flags.Register(flags);
  flags.AddString("listen", &listen, "address to listen on (overrides serve.listen)");
  if (base::Status parsed = flags.Parse(args); !parsed.ok()) {
    std::cerr << "supercluster serve: " << parsed.message() << "\n";
    return kExitUsage;
  }
  if (flags.help_requested()) {
    std::cout << flags.Help();
    return kExitOk;
  }
  base::Result<base::Config> config = service_flags.LoadConfig("serve");
  if (!config.ok()) {
    std::cerr << "supercluster serve: " << config.status().message() << "\n";
    return kExitFailure;
  }
  if (listen.empty()) listen = config->GetString("serve.listen");
  base::Result<net::Endpoint> endpoint = net::ParseEndpoint(listen);
  if (!endpoint.ok()) {
    std::cerr << "supercluster serve: --listen: " << endpoint.status().message() << "\n";
    return kExitUsage;
  }

  auto registry = std::make_shared<metrics::Registry>();
  metrics::HttpMetrics http_metrics(registry);
  auto router = std::make_shared<net::HttpRouter>();
  metrics::AddObservabilityRoutes(*router, registry, [] { return true; });
  AddEchoRoutes(*router);

  net::ServerOptions options = net::ServerOptions::FromConfig(*config);
  options.observer = &http_metrics;
  net::HttpServer server(options, router);
  if (base::Status status = server.Listen(*endpoint); !status.ok()) {
    std::cerr << "supercluster serve: " << status.message() << "\n";
    return kExitFailure;
  }
  if (base::Status status = server.Start(); !status.ok()) {
    std::cerr << "supercluster serve: " << status.message() << "\n";
    return kExitFailure;
  }
  for (const net::Endpoint& bound : server.BoundEndpoints()) {
    spdlog::info("serving on {} (GET /healthz /readyz /metrics /v1/echo)", bound.ToString());
  }
  server.RunUntilSignal();
  spdlog::info("stopped");
  return kExitOk;
}

}  // namespace supercluster::cli
