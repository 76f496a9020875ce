// `till serve` and `till init`: wiring of data dir, store, control plane and HTTP server.
#include <cstdio>
#include <iostream>
#include <optional>

#include "api/control_plane.h"
#include "api/key_issuer.h"
#include "api/router.h"
#include "cli/commands.h"
#include "cli/data_dir.h"
#include "http/server.h"
#include "provider/pricing.h"
#include "proxy/budget_ledger.h"
#include "proxy/error_response.h"
#include "proxy/key_cache.h"
#include "proxy/proxy_handler.h"
#include "proxy/upstream_map.h"

namespace till {
int run_init(const InitOptions& options) {
  auto dir = open_data_dir(options.data_dir);
  if (!dir) return report_error(dir.error());
  auto admins = dir->store->count_admin_keys();
  if (!admins) return report_error(admins.error());
  if (*admins > 0) {
    std::cerr << "till: " << options.data_dir
              << " is already initialised (it has an admin key); use it, or pick an empty "
                 "--data-dir\n";
    return kExitRefused;
  }
  auto token = create_admin_key(*dir->store, "initial", system_clock().now());
  if (!token) return report_error(token.error());
  std::cout << *token << std::endl;
  return kExitOk;
}

int run_serve(const ServeOptions& options) {
  auto dir = open_data_dir(options.data_dir);
  if (!dir) return report_error(dir.error());
  auto admins = dir->store->count_admin_keys();
  if (!admins) return report_error(admins.error());
  if (*admins == 0) {
    auto token = create_admin_key(*dir->store, "initial", system_clock().now());
    if (!token) return report_error(token.error());
    std::cerr << "till: created an admin key for this new data dir; it is shown only once:\n"
              << "  " << *token << "\n"
              << "till: e.g. export TILL_ADMIN_KEY=" << *token << "\n";
  }

  std::optional<PricingTable> custom_pricing;
  if (!options.pricing_file.empty()) {
    auto loaded = PricingTable::load_file(options.pricing_file);
    if (!loaded) return report_error(loaded.error());
    custom_pricing = std::move(*loaded);
  }
  const PricingTable& pricing = custom_pricing ? *custom_pricing : PricingTable::builtin();
  auto upstreams = UpstreamMap::create(options.upstream_overrides);
  if (!upstreams) return report_error(upstreams.error());

  // Destroyed in reverse order: the server stops before the ledger writes its last usage.
  BudgetLedger ledger(*dir->store, system_clock());
  KeyCache keys(*dir->store, dir->keyring, system_clock());
  ControlPlane control_plane(*dir->store, dir->keyring, ledger, keys, system_clock());
  ProxyHandler proxy(keys, ledger, pricing, *upstreams, system_clock());
  Router router(control_plane, proxy);
  ServerOptions server_options;
  server_options.listen = options.listen;
  server_options.threads = options.threads;
  server_options.max_body_bytes = options.max_body_bytes;
  server_options.header_timeout = options.header_timeout;
  server_options.body_timeout = options.body_timeout;
  server_options.upstream.extra_ca_file = options.upstream_ca;
  server_options.upstream.response_timeout = options.upstream_timeout;
  server_options.upstream.connect_timeout = options.upstream_connect_timeout;
  auto server = HttpServer::start(
      server_options, [&router](HttpRequest& request) { return router.handle(request); },
      [](const Error& error) { return error_response(error); });
  if (!server) return report_error(server.error());
  std::cerr << "till: listening on http://" << (*server)->local_address() << " (data dir "
            << options.data_dir << ")" << std::endl;

  const int signal_number = wait_for_shutdown_signal();
  std::cerr << "till: signal " << signal_number << ", finishing in-flight requests" << std::endl;
  (*server)->stop();
  (*server)->wait();
  std::cerr << "till: stopped" << std::endl;
  return kExitOk;
}

}  // namespace till
