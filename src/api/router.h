// Top-level request routing of `till serve`: health, the control plane (/api/v1) and the data
// plane (/proxy/…, /v1/…). The one function the HTTP server calls for every request.
//
// Thread-safety: handle() may be called concurrently from every I/O thread.
#pragma once

#include "api/control_plane.h"
#include "proxy/proxy_handler.h"
#include "till/forward.h"
#include "till/http.h"

namespace till {

class Router {
 public:
  Router(ControlPlane& control_plane, ProxyHandler& proxy)
      : control_plane_(control_plane), proxy_(proxy) {}

  HandlerResult handle(HttpRequest& request);

 private:
  ControlPlane& control_plane_;
  ProxyHandler& proxy_;
};

}  // namespace till
