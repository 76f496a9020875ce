#include "cli/till_instance.h"

#include "api/control_plane.h"
#include "api/key_issuer.h"
#include "api/router.h"
#include "cli/data_dir.h"
#include "http/server.h"
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
  std::unique_ptr<ControlPlane> control_plane;
  std::unique_ptr<ProxyHandler> proxy;
  std::unique_ptr<Router> router;
  std::unique_ptr<HttpServer> server;
};

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
  parts->control_plane = std::make_unique<ControlPlane>(
      store, parts->dir.keyring, *parts->ledger, *parts->keys, system_clock(),
      ControlPlane::Options{.max_key_depth = options.max_key_depth});
  parts->proxy = std::make_unique<ProxyHandler>(*parts->keys, *parts->ledger, pricing,
                                                parts->upstreams, system_clock());
  parts->router = std::make_unique<Router>(*parts->control_plane, *parts->proxy);

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
