#include "api/router.h"

#include "api/route_helpers.h"
#include "core/url.h"
#include "proxy/error_response.h"
#include "proxy/proxy_route.h"

namespace till {

HandlerResult Router::handle(HttpRequest& request) {
  const RequestTarget target = split_target(request.target);
  if (target.path == "/healthz") {
    if (request.method != "GET" && request.method != "HEAD") {
      return error_response(Error::client(ErrorCode::kMethodNotAllowed, "use GET /healthz"));
    }
    return json_response(200, R"({"status":"ok"})");
  }
  if (is_proxy_path(target.path)) return proxy_.handle(request);
  if (MonitoringApi::owns(target.path)) {
    if (monitoring_) return monitoring_->handle(request);
    return error_response(Error::client(
        ErrorCode::kNotFound, "monitoring is off on this server (till serve --monitoring off)"));
  }
  if (ControlPlane::owns(target.path)) return control_plane_.handle(request);
  if (Dashboard::owns(target.path)) return dashboard_.handle(request);
  return error_response(no_such_endpoint(target.path));
}

}  // namespace till
