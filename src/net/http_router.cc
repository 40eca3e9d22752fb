#include <algorithm>

#include "net/http_server.h"

namespace supercluster::net {

void HttpRouter::Handle(const std::string& method, const std::string& path, Handler handler) {
  routes_.push_back({method, path, std::move(handler)});
}

std::string HttpRouter::RouteOf(const HttpRequest& request) const {
  std::string_view path = request.path();
  for (const Route& route : routes_) {
    if (route.path == path) return route.path;
  }
  return "other";
}

void HttpRouter::Dispatch(HttpRequest&& request, std::shared_ptr<Responder> responder) const {
  std::string_view path = request.path();
  std::string allowed;
  for (const Route& route : routes_) {
    if (route.path != path) continue;
    if (route.method == request.method ||
        (request.method == "HEAD" && route.method == "GET")) {
      route.handler(std::move(request), std::move(responder));
      return;
    }
    if (!allowed.empty()) allowed += ", ";
    allowed += route.method;
  }
  if (allowed.empty()) {
    responder->Send(
        HttpResponse::JsonError(404, "not found: " + std::string(path), "not_found"));
    return;
  }
  HttpResponse response =
      HttpResponse::JsonError(405, "method not allowed; use " + allowed, "method_not_allowed");
  response.headers.Set("Allow", allowed);
  responder->Send(std::move(response));
}

}  // namespace supercluster::net
