// TillInstance: a running till server — data dir, store, ledger, key cache, control plane,
// proxy and HTTP server, wired together. `till serve` runs one until a signal; `till run` runs
// an embedded one for the life of its child.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "cli/commands.h"
#include "till/error.h"

namespace till {

class TillInstance {
 public:
  // Opens (or creates) options.data_dir and starts serving on options.listen. A data dir without
  // an admin key gets one, returned once by new_admin_key().
  static Result<std::unique_ptr<TillInstance>> start(const ServeOptions& options);

  ~TillInstance();  // stop()
  TillInstance(const TillInstance&) = delete;
  TillInstance& operator=(const TillInstance&) = delete;

  // "http://127.0.0.1:4100": the bound address (the real port when listening on port 0).
  std::string url() const;

  // The admin key created at start for a new data dir; nullopt if the data dir had one.
  const std::optional<std::string>& new_admin_key() const { return new_admin_key_; }

  // Graceful stop: finishes in-flight requests, then writes the ledger's last usage. Idempotent.
  void stop();

 private:
  struct Parts;
  explicit TillInstance(std::unique_ptr<Parts> parts, std::optional<std::string> admin_key);
  std::unique_ptr<Parts> parts_;
  std::optional<std::string> new_admin_key_;
};

}  // namespace till
