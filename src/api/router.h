// Top-level request routing of `till serve`: health, control plane, and (later) the proxy and
// dashboard. The one function the HTTP server calls for every request.
//
// Thread-safety: handle() may be called concurrently from every I/O thread.
#pragma once

#include "api/control_plane.h"
#include "till/http.h"

namespace till {

class Router {
 public:
  explicit Router(ControlPlane& control_plane) : control_plane_(control_plane) {}

  HttpResponse handle(const HttpRequest& request);

 private:
  ControlPlane& control_plane_;
};

}  // namespace till
