// The monitoring part of the control plane (admin key required; docs/monitoring.md):
//
//   GET  /api/v1/usage          totals and a time series (?key=&provider=&model=&from=&to=
//                               &bucket=minute|hour|day&group_by=key|provider|model)
//   GET  /api/v1/usage/events   raw events, newest first (?…&cursor=&limit=&format=json|csv)
//   GET  /api/v1/alerts         alerts, newest first (?key=&rule=&acknowledged=&since=&cursor=
//                               &limit=)
//   POST /api/v1/alerts/{id}/acknowledge
//   GET  /metrics               Prometheus text exposition (no authentication, like /healthz)
//
// Reads first wait for the Monitor to process the events recorded so far, so a client sees the
// effect of every request it has had answered.
//
// Thread-safety: handle() may be called concurrently; the referenced objects must outlive this.
#pragma once

#include <string_view>

#include "monitor/metrics.h"
#include "monitor/monitor.h"
#include "proxy/authenticator.h"
#include "till/clock.h"
#include "till/http.h"
#include "till/store.h"

namespace till {

class MonitoringApi {
 public:
  MonitoringApi(Store& store, Monitor& monitor, const Metrics& metrics, const Clock& clock)
      : store_(store), monitor_(monitor), metrics_(metrics), clock_(clock), auth_(store) {}

  // True if `path` (raw, without query) is one of the routes above.
  static bool owns(std::string_view path);

  HttpResponse handle(const HttpRequest& request);

 private:
  Result<HttpResponse> route(const HttpRequest& request, std::string_view path,
                             std::string_view query);
  Result<HttpResponse> usage(std::string_view query);
  Result<HttpResponse> usage_events(std::string_view query);
  Result<HttpResponse> alerts(std::string_view query);
  Result<HttpResponse> acknowledge(std::string_view id);

  Store& store_;
  Monitor& monitor_;
  const Metrics& metrics_;
  const Clock& clock_;
  Authenticator auth_;
};

}  // namespace till
