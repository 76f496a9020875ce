#include "cli/till_instance.h"

#include <cstdlib>

#include "api/control_plane.h"
#include "api/key_issuer.h"
#include "api/monitoring_api.h"
#include "api/router.h"
#include "cli/data_dir.h"
#include "http/client.h"
#include "http/server.h"
#include "monitor/monitor.h"
#include "provider/pricing.h"
#include "proxy/budget_ledger.h"
#include "proxy/error_response.h"
#include "proxy/key_cache.h"
#include "proxy/proxy_handler.h"
#include "proxy/upstream_map.h"

namespace till {

// Declared in dependency order: destroyed in reverse, so the server stops before the handlers
// it calls, and the ledger writes its last usage before the store closes.
struct TillInstance::Parts {
  DataDir dir;
  std::optional<PricingTable> custom_pricing;
  UpstreamMap upstreams;
  std::unique_ptr<BudgetLedger> ledger;
  std::unique_ptr<KeyCache> keys;
  AddressBlocklist blocked;
  std::unique_ptr<Metrics> metrics;
  std::unique_ptr<AccessLog> access_log;
  std::unique_ptr<WebhookSender> webhooks;
  std::unique_ptr<Monitor> monitor;
  NullEventSink no_events;  // with --monitoring off
  std::unique_ptr<ControlPlane> control_plane;
  std::unique_ptr<MonitoringApi> monitoring_api;
  std::unique_ptr<ProxyHandler> proxy;
  std::unique_ptr<Dashboard> dashboard;
  std::unique_ptr<Router> router;
  std::unique_ptr<HttpServer> server;
};

namespace {

// The alert settings `--alert RULE=ACTION` flags ask for.
Result<AlertSettings> alert_settings(const std::vector<std::string>& flags) {
  AlertSettings settings;
  for (const std::string& flag : flags) {
    const size_t eq = flag.find('=');
    const std::string rule = flag.substr(0, eq);
    const auto& names = alert_rule_names();
    auto action = eq == std::string::npos
                      ? std::nullopt
                      : parse_alert_action(std::string_view(flag).substr(eq + 1));
    if (std::find(names.begin(), names.end(), rule) == names.end() || !action) {
      std::string known;
      for (const auto& name : names) known += (known.empty() ? "" : ", ") + name;
      return fail(Error::invalid(
          "alert", "--alert " + flag + ": give RULE=off|alert|suspend; rules: " + known));
    }
    settings.actions[rule] = *action;
  }
  return settings;
}

// POSTs a webhook with the blocking HTTP client.
Result<int> post_webhook(const std::string& url,
                         const std::vector<std::pair<std::string, std::string>>& headers,
                         const std::string& body) {
  // "scheme://host[:port]" and the rest, which http_call takes apart.
  const size_t authority = url.find("://");
  const size_t path =
      authority == std::string::npos ? std::string::npos : url.find('/', authority + 3);
  const std::string base = path == std::string::npos ? url : url.substr(0, path);
  const std::string target = path == std::string::npos ? "/" : url.substr(path);
  HttpHeaders http_headers;
  for (const auto& [name, value] : headers) http_headers.push_back({name, value});
  auto response = http_call(base, "POST", target, http_headers, body, std::chrono::seconds(10));
  if (!response) return fail(response.error());
  return response->status;
}

// The webhook sender `options` ask for, or null when they name no webhook.
Result<std::unique_ptr<WebhookSender>> make_webhooks(const ServeOptions& options) {
  std::vector<WebhookTarget> targets;
  for (const auto& url : options.alert_webhooks)
    targets.push_back({url, WebhookTarget::Format::kTill});
  for (const auto& url : options.alert_slack_webhooks) {
    targets.push_back({url, WebhookTarget::Format::kSlack});
  }
  if (targets.empty()) return std::unique_ptr<WebhookSender>();
  const char* secret = std::getenv("TILL_WEBHOOK_SECRET");
  if (secret == nullptr || *secret == '\0') {
    return fail(Error::invalid("alert_webhook",
                               "--alert-webhook needs TILL_WEBHOOK_SECRET, the secret webhook "
                               "requests are signed with (see docs/alerts.md)"));
  }
  return std::make_unique<WebhookSender>(std::move(targets), secret, post_webhook);
}

}  // namespace

Result<std::unique_ptr<TillInstance>> TillInstance::start(const ServeOptions& options) {
  auto dir = open_data_dir(options.data_dir);
  if (!dir) return fail(dir.error());
  auto admins = dir->store->count_admin_keys();
  if (!admins) return fail(admins.error());
  std::optional<std::string> new_admin_key;
  if (*admins == 0) {
    auto token = create_admin_key(*dir->store, "initial", system_clock().now());
    if (!token) return fail(token.error());
    new_admin_key = std::move(*token);
  }
  std::optional<PricingTable> custom_pricing;
  if (!options.pricing_file.empty()) {
    auto loaded = PricingTable::load_file(options.pricing_file);
    if (!loaded) return fail(loaded.error());
    custom_pricing = std::move(*loaded);
  }
  auto upstreams = UpstreamMap::create(options.upstream_overrides);
  if (!upstreams) return fail(upstreams.error());

  auto parts = std::unique_ptr<Parts>(
      new Parts{std::move(*dir), std::move(custom_pricing), std::move(*upstreams)});
  Store& store = *parts->dir.store;
  const PricingTable& pricing =
      parts->custom_pricing ? *parts->custom_pricing : PricingTable::builtin();
  parts->ledger = std::make_unique<BudgetLedger>(store, system_clock());
  parts->keys = std::make_unique<KeyCache>(store, parts->dir.keyring, system_clock());
  EventSink* events = &parts->no_events;
  if (options.monitoring) {
    auto alerts = alert_settings(options.alert_actions);
    if (!alerts) return fail(alerts.error());
    auto webhooks = make_webhooks(options);
    if (!webhooks) return fail(webhooks.error());
    parts->webhooks = std::move(*webhooks);
    if (!options.access_log.empty()) {
      auto log = AccessLog::open(options.access_log);
      if (!log) return fail(log.error());
      parts->access_log = std::move(*log);
    }
    parts->metrics = std::make_unique<Metrics>(pricing);
    Monitor::Options monitor_options;
    monitor_options.alerts = std::move(*alerts);
    if (options.usage_retention.count() == 0)
      monitor_options.retention = std::nullopt;
    else
      monitor_options.retention = options.usage_retention;
    parts->monitor = std::make_unique<Monitor>(
        store, *parts->ledger, *parts->keys, parts->blocked, *parts->metrics, parts->webhooks.get(),
        parts->access_log.get(), pricing, system_clock(), std::move(monitor_options));
    parts->monitoring_api =
        std::make_unique<MonitoringApi>(store, *parts->monitor, *parts->metrics, system_clock());
    events = parts->monitor.get();
  }
  parts->control_plane = std::make_unique<ControlPlane>(
      store, parts->dir.keyring, *parts->ledger, *parts->keys, system_clock(),
      ControlPlane::Options{.max_key_depth = options.max_key_depth});
  parts->proxy =
      std::make_unique<ProxyHandler>(*parts->keys, *parts->ledger, pricing, parts->upstreams,
                                     system_clock(), *events, parts->blocked);
  parts->dashboard = options.dashboard_dir.empty()
                         ? std::make_unique<Dashboard>(embedded_dashboard_files())
                         : std::make_unique<Dashboard>(options.dashboard_dir);
  parts->router = std::make_unique<Router>(*parts->control_plane, parts->monitoring_api.get(),
                                           *parts->proxy, *parts->dashboard);

  ServerOptions server_options;
  server_options.listen = options.listen;
  server_options.threads = options.threads;
  server_options.max_body_bytes = options.max_body_bytes;
  server_options.header_timeout = options.header_timeout;
  server_options.body_timeout = options.body_timeout;
  server_options.upstream.extra_ca_file = options.upstream_ca;
  server_options.upstream.response_timeout = options.upstream_timeout;
  server_options.upstream.connect_timeout = options.upstream_connect_timeout;
  Router& router = *parts->router;
  auto server = HttpServer::start(
      server_options, [&router](HttpRequest& request) { return router.handle(request); },
      [](const Error& error) { return error_response(error); });
  if (!server) return fail(server.error());
  parts->server = std::move(*server);
  if (parts->metrics) {
    HttpServer& serving = *parts->server;
    parts->metrics->set_live_counts([&serving] {
      const HttpServer::Activity activity = serving.activity();
      return Metrics::LiveCounts{activity.connections, activity.forwards};
    });
  }
  return std::unique_ptr<TillInstance>(
      new TillInstance(std::move(parts), std::move(new_admin_key)));
}

TillInstance::TillInstance(std::unique_ptr<Parts> parts, std::optional<std::string> admin_key)
    : parts_(std::move(parts)), new_admin_key_(std::move(admin_key)) {}

TillInstance::~TillInstance() { stop(); }

std::string TillInstance::url() const { return "http://" + parts_->server->local_address(); }

void TillInstance::stop() {
  if (!parts_->server) return;
  parts_->server->stop();
  parts_->server->wait();
  parts_->server.reset();
}

}  // namespace till
