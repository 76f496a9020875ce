// `till serve` and `till init`.
#include <cstdio>
#include <iostream>

#include "api/key_issuer.h"
#include "cli/commands.h"
#include "cli/data_dir.h"
#include "cli/shutdown_signals.h"
#include "cli/till_instance.h"

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
  ShutdownSignals signals;  // before any thread starts: a signal during start-up is kept
  auto instance = TillInstance::start(options);
  if (!instance) return report_error(instance.error());
  if (const auto& admin = (*instance)->new_admin_key()) {
    std::cerr << "till: created an admin key for this new data dir; it is shown only once:\n"
              << "  " << *admin << "\n"
              << "till: e.g. export TILL_ADMIN_KEY=" << *admin << "\n";
  }
  std::cerr << "till: listening on " << (*instance)->url() << " (data dir " << options.data_dir
            << ")" << std::endl;
  std::cerr << "till: dashboard at " << (*instance)->url() << "/ (sign in with an admin key)"
            << std::endl;
  const int signal_number = signals.wait();
  std::cerr << "till: signal " << signal_number << ", finishing in-flight requests" << std::endl;
  (*instance)->stop();
  std::cerr << "till: stopped" << std::endl;
  return kExitOk;
}

}  // namespace till
