#include "metrics/endpoints.h"

#include <string>
#include <utility>

#include "net/http_message.h"

namespace supercluster::metrics {

void AddObservabilityRoutes(net::HttpRouter& router, std::shared_ptr<Registry> registry,
                            std::function<bool()> ready) {
  router.Handle("GET", "/metrics",
                [registry = std::move(registry)](net::HttpRequest,
                                                 std::shared_ptr<net::Responder> responder) {
                  net::HttpResponse response = net::HttpResponse::Text(200, registry->Serialize());
                  response.headers.Set("Content-Type", kExpositionContentType);
                  responder->Send(std::move(response));
                });

  // Liveness only says the process still answers requests; it deliberately checks nothing
  // else, so that a slow dependency makes a service unready, never restarted.
  router.Handle("GET", "/healthz", [](net::HttpRequest, std::shared_ptr<net::Responder> responder) {
    responder->Send(net::HttpResponse::Text(200, "ok\n"));
  });

  router.Handle(
      "GET", "/readyz",
      [ready = std::move(ready)](net::HttpRequest, std::shared_ptr<net::Responder> responder) {
        if (!ready || ready()) {
          responder->Send(net::HttpResponse::Text(200, "ready\n"));
        } else {
          responder->Send(net::HttpResponse::Text(503, "not ready\n"));
        }
      });
}

}  // namespace supercluster::metrics
