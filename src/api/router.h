// Top-level request routing of `till serve`: health, metrics, the control plane (/api/v1) with
// its monitoring routes, the data plane (/proxy/…, /v1/…) and the dashboard (/, /assets/…). The one
// function the HTTP server calls for every request.
//
// Thread-safety: handle() may be called concurrently from every I/O thread.
#pragma once

#include "api/control_plane.h"
#include "api/dashboard.h"
#include "api/monitoring_api.h"
#include "proxy/proxy_handler.h"
#include "till/forward.h"
#include "till/http.h"

namespace till {

class Router {
 public:
  // `monitoring` is null when monitoring is off: its routes then answer 404 saying so.
  Router(ControlPlane& control_plane, MonitoringApi* monitoring, ProxyHandler& proxy,
         const Dashboard& dashboard)
      : control_plane_(control_plane),
        monitoring_(monitoring),
        proxy_(proxy),
        dashboard_(dashboard) {}

  HandlerResult handle(HttpRequest& request);

 private:
  ControlPlane& control_plane_;
  MonitoringApi* monitoring_;
  ProxyHandler& proxy_;
  const Dashboard& dashboard_;
};

}  // namespace till
