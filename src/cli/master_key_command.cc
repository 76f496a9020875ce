// `till master-key list|rotate|retire`: the master key's versions, on a stopped server's data dir.
//
// Rotation adds a version that new seals use and re-wraps the vault under it; tokens sealed under
// older versions keep working until they are rotated. Retiring a version removes it from
// master.key, which is refused while any live key's token or any vault credential still needs it.
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "api/credential_vault.h"
#include "cli/commands.h"
#include "cli/data_dir.h"
#include "cli/table.h"

namespace till {
namespace {

// What still needs master key `version`: ids of live keys sealed under it, names of vault
// credentials wrapped under it.
struct Dependants {
  std::vector<std::string> keys;
  std::vector<std::string> credentials;
};

Result<Dependants> dependants_of(Store& store, uint32_t version) {
  auto keys = store.keys_sealed_under(version, system_clock().now());
  if (!keys) return fail(keys.error());
  auto credentials = store.list_credentials();
  if (!credentials) return fail(credentials.error());
  Dependants dependants{std::move(*keys), {}};
  for (const CredentialRecord& credential : *credentials) {
    if (credential.master_key_version == version) {
      dependants.credentials.push_back(credential.name);
    }
  }
  return dependants;
}

// "key_a, key_b, … (12)" — at most five names.
std::string some_of(const std::vector<std::string>& names) {
  std::string out;
  for (size_t i = 0; i < names.size() && i < 5; ++i) out += (i ? ", " : "") + names[i];
  if (names.size() > 5) out += ", … (" + std::to_string(names.size()) + ")";
  return out;
}

// The master key must come from the data dir's file to have versions to manage.
Result<DataDir> open_for_master_key(const std::string& data_dir) {
  if (std::getenv("TILL_MASTER_KEY") != nullptr) {
    return fail(Error::client(
        ErrorCode::kConflict,
        "the master key comes from TILL_MASTER_KEY, which holds one version only; unset it to "
        "manage the versions in " +
            data_dir + "/master.key"));
  }
  std::error_code ec;
  if (!std::filesystem::exists(std::filesystem::path(data_dir) / MasterKeyring::kFileName, ec)) {
    return fail(Error::client(ErrorCode::kNotFound,
                              "there is no " + std::string(MasterKeyring::kFileName) + " in " +
                                  data_dir + "; is it a till data dir? (--data-dir)"));
  }
  return open_data_dir(data_dir);
}

}  // namespace

int run_master_key_list(const MasterKeyOptions& options) {
  auto dir = open_for_master_key(options.data_dir);
  if (!dir) return report_error(dir.error());
  Table table({"VERSION", "USE", "KEYS", "CREDENTIALS"});
  for (uint32_t version : dir->keyring.versions()) {
    auto dependants = dependants_of(*dir->store, version);
    if (!dependants) return report_error(dependants.error());
    table.add_row({"v" + std::to_string(version),
                   version == dir->keyring.current().version ? "current" : "opens only",
                   std::to_string(dependants->keys.size()),
                   std::to_string(dependants->credentials.size())});
  }
  table.print(std::cout);
  return kExitOk;
}

int run_master_key_rotate(const MasterKeyOptions& options) {
  auto dir = open_for_master_key(options.data_dir);
  if (!dir) return report_error(dir.error());
  const uint32_t previous = dir->keyring.current().version;
  auto keyring = MasterKeyring::add_version(dir->path);
  if (!keyring) return report_error(keyring.error());
  const uint32_t current = keyring->current().version;
  auto rewrapped = CredentialVault(*dir->store, *keyring, system_clock()).rewrap_all();
  if (!rewrapped) {
    std::cerr << "till: master key v" << current
              << " was added, but re-wrapping the vault failed; run this again to finish\n";
    return report_error(rewrapped.error());
  }
  std::cerr << "till: added master key v" << current << "; new tokens are sealed under it\n"
            << "till: re-wrapped " << *rewrapped << " vault credential"
            << (*rewrapped == 1 ? "" : "s") << " under v" << current << "\n";
  auto dependants = dependants_of(*dir->store, previous);
  if (!dependants) return report_error(dependants.error());
  if (dependants->keys.empty()) {
    std::cerr << "till: nothing needs v" << previous << " any more: till master-key retire "
              << previous << "\n";
  } else {
    std::cerr << "till: " << dependants->keys.size() << " live key"
              << (dependants->keys.size() == 1 ? "" : "s") << " still carry tokens sealed under v"
              << previous << " (" << some_of(dependants->keys)
              << "); rotate them (till key rotate ID), then till master-key retire " << previous
              << "\n";
  }
  std::cout << current << std::endl;
  return kExitOk;
}

int run_master_key_retire(const MasterKeyOptions& options) {
  auto dir = open_for_master_key(options.data_dir);
  if (!dir) return report_error(dir.error());
  auto dependants = dependants_of(*dir->store, options.version);
  if (!dependants) return report_error(dependants.error());
  const std::string version = "v" + std::to_string(options.version);
  if (!dependants->credentials.empty()) {
    return report_error(Error::client(
        ErrorCode::kConflict, "master key " + version + " still wraps vault credential(s) " +
                                  some_of(dependants->credentials) +
                                  "; run till master-key rotate to re-wrap them first"));
  }
  if (!dependants->keys.empty()) {
    return report_error(Error::client(
        ErrorCode::kConflict,
        "master key " + version + " still opens the tokens of " +
            std::to_string(dependants->keys.size()) + " live key(s): " + some_of(dependants->keys) +
            "; rotate them (till key rotate ID) or revoke them, then retire " + version));
  }
  auto keyring = MasterKeyring::remove_version(dir->path, options.version);
  if (!keyring) return report_error(keyring.error());
  std::cerr << "till: retired master key " << version << "; it is gone from "
            << (dir->path / MasterKeyring::kFileName).string() << "\n";
  return kExitOk;
}

}  // namespace till
