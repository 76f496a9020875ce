// `till run [key options] -- CMD [ARGS…]`: one scoped key for the life of one command.
//
// Creates the key, runs the command with the key and till's base URLs in the variables the
// provider's SDKs read, forwards SIGINT, SIGTERM and SIGHUP to it, revokes the key when it exits
// however it exits, prints a usage summary on stderr and exits with the command's status.
//
// Where the key comes from, in this order:
//   - inside another run (TILL_KEY set, no TILL_ADMIN_KEY): a sub-key carved out of TILL_KEY on
//     its server (TILL_BASE_URL), so a sub-agent gets a smaller share of its parent's budget;
//   - TILL_URL set: a key made with TILL_ADMIN_KEY on that server;
//   - otherwise: an embedded server on an ephemeral loopback port, for the life of the command.
// The command never sees TILL_ADMIN_KEY, TILL_MASTER_KEY or the variable the real key came from.
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <boost/json/serialize.hpp>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <set>

#include "cli/api_client.h"
#include "cli/commands.h"
#include "cli/json_display.h"
#include "cli/key_body.h"
#include "cli/till_instance.h"
#include "provider/provider_table.h"
#include "provider/sdk_environment.h"

extern char** environ;

namespace till {
namespace {

namespace json = boost::json;

std::atomic<pid_t> g_child{0};

void forward_signal(int signal_number) {
  const pid_t child = g_child.load();
  if (child > 0) ::kill(child, signal_number);
}

// This process's environment with `vars` set and the `hidden` variables removed.
std::vector<std::string> child_environment(const std::map<std::string, std::string>& vars,
                                           const std::set<std::string>& hidden) {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string_view entry(*e);
    const std::string name(entry.substr(0, entry.find('=')));
    if (!vars.contains(name) && !hidden.contains(name)) env.emplace_back(entry);
  }
  for (const auto& [name, value] : vars) env.push_back(name + "=" + value);
  return env;
}

// Runs the command and returns its wait status; -1 if it could not be started.
int run_child(const std::vector<std::string>& command, const std::vector<std::string>& env) {
  std::vector<char*> argv, envp;
  for (const auto& a : command) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);

  struct sigaction action {};
  action.sa_handler = forward_signal;
  sigemptyset(&action.sa_mask);
  struct sigaction previous[3];
  const int forwarded[3] = {SIGINT, SIGTERM, SIGHUP};
  for (int i = 0; i < 3; ++i) ::sigaction(forwarded[i], &action, &previous[i]);

  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  sigset_t defaults, none;
  sigemptyset(&defaults);
  for (int s : forwarded) sigaddset(&defaults, s);
  sigemptyset(&none);
  posix_spawnattr_setsigdefault(&attributes, &defaults);
  posix_spawnattr_setsigmask(&attributes, &none);
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
  pid_t pid = 0;
  const int spawned = posix_spawnp(&pid, argv[0], nullptr, &attributes, argv.data(), envp.data());
  posix_spawnattr_destroy(&attributes);
  int status = -1;
  if (spawned != 0) {
    std::cerr << "till: cannot run " << command[0] << ": " << std::strerror(spawned) << "\n";
  } else {
    g_child = pid;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    g_child = 0;
  }
  for (int i = 0; i < 3; ++i) ::sigaction(forwarded[i], &previous[i], nullptr);
  return status;
}

void print_summary(const json::value& key) {
  std::string ended;
  const std::pair<const char*, const char*> dims[] = {
      {"requests", "max_requests"}, {"tokens", "max_tokens"}, {"spend_usd", "max_spend_usd"}};
  for (const auto& [used, limit] : dims) {
    const json::value* l = json_at(key, "limits", limit);
    const json::value* r = json_at(key, "remaining", used);
    if (l && !l->is_null() && r && (cell_text(r) == "0" || cell_text(r) == "0.00")) {
      ended = std::string(limit) + " (" + cell_text(l) + ")";
    }
  }
  std::cerr << "till run: " << cell_text(json_at(key, "used", "requests")) << " requests, "
            << cell_text(json_at(key, "used", "tokens")) << " tokens ("
            << cell_text(json_at(key, "used", "input_tokens")) << " in, "
            << cell_text(json_at(key, "used", "output_tokens")) << " out), $"
            << cell_text(json_at(key, "used", "spend_usd")) << " spent";
  if (!ended.empty()) std::cerr << "; the " << ended << " limit was reached";
  std::cerr << "\n";
}

// The server a run's key lives on and how to make and revoke it there.
struct KeyHome {
  std::optional<ApiClient> client;  // carries the admin key, or the parent key for a sub-key
  std::string create_target;        // POST here with the key's body
  std::string revoke_prefix;        // DELETE here + id
};

const char* non_empty_env(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? value : nullptr;
}

}  // namespace

int run_run(const RunOptions& o) {
  const char* parent_key = non_empty_env("TILL_ADMIN_KEY") ? nullptr : non_empty_env("TILL_KEY");
  const char* till_url = non_empty_env("TILL_URL");
  KeyCreateOptions key_options = o.key;
  // A day unless given; a sub-key's default is its parent's expiry.
  if (!parent_key && !key_options.expires_in && !key_options.expires_at) {
    key_options.expires_in = "24h";
  }
  if (!key_options.name) key_options.name = "till run: " + o.command.front();

  KeyHome home;
  Result<json::object> body = json::object();
  std::unique_ptr<TillInstance> embedded;
  std::optional<std::filesystem::path> temp_dir;
  if (parent_key) {
    // A sub-key of the run this one runs in.
    const char* url = non_empty_env("TILL_BASE_URL") ? non_empty_env("TILL_BASE_URL") : till_url;
    if (url == nullptr) {
      std::cerr << "till: TILL_KEY is set but neither TILL_BASE_URL nor TILL_URL says where its "
                   "server is\n";
      return kExitUsage;
    }
    if (o.key.credential || o.key.upstream_key_env || o.key.upstream_key_stdin) {
      std::cerr << "till: inside a run (TILL_KEY is set) the key is a sub-key of TILL_KEY and "
                   "uses its upstream credential; drop --credential and --upstream-key-*\n";
      return kExitUsage;
    }
    home = {ApiClient(url, parent_key), "/api/v1/key/children", "/api/v1/key/children/"};
    if (key_options.provider.empty()) {
      auto parent = home.client->call("GET", "/api/v1/key");
      if (!parent) return report_error(parent.error());
      key_options.provider = cell_text(json_at(*parent, "provider"));
    }
    body = sub_key_body(key_options);
  } else {
    if (key_options.provider.empty()) {
      std::cerr << "till: --provider is required (it is optional only inside another till run, "
                   "where TILL_KEY is set)\n";
      return kExitUsage;
    }
    if (o.key.credential && !till_url) {
      std::cerr << "till: --credential names a credential in a running server's vault; set "
                   "TILL_URL and TILL_ADMIN_KEY (an embedded server starts with an empty vault)\n";
      return kExitUsage;
    }
    body = key_create_body(key_options);  // reads the real key before the child's env hides it
    home.create_target = "/api/v1/keys";
    home.revoke_prefix = "/api/v1/keys/";
  }
  const ProviderInfo* provider = find_provider(key_options.provider);
  if (provider == nullptr) {
    std::cerr << "till: unknown provider \"" << key_options.provider << "\"\n";
    return kExitUsage;
  }
  if (!body) return report_error(body.error());
  // Marks the key as a run's (the loop and rate-spike alert rules suspend such keys).
  json::value& metadata = (*body)["metadata"];
  if (!metadata.is_object()) metadata = json::object();
  metadata.as_object().emplace("created_by", "till run");

  if (!home.client && till_url) {
    home.client = ApiClient::from_environment();
  } else if (!home.client) {
    ServeOptions serve = o.serve;
    serve.listen = "127.0.0.1:0";
    if (serve.data_dir.empty()) {
      std::string pattern = (std::filesystem::temp_directory_path() / "till-run-XXXXXX").string();
      if (::mkdtemp(pattern.data()) == nullptr) {
        std::cerr << "till: cannot create a temporary data dir: " << std::strerror(errno) << "\n";
        return kExitRefused;
      }
      temp_dir = pattern;
      serve.data_dir = pattern;
    }
    auto instance = TillInstance::start(serve);
    if (!instance) return report_error(instance.error());
    embedded = std::move(*instance);
    if (!embedded->new_admin_key()) {
      std::cerr << "till: --data-dir " << serve.data_dir
                << " already has an admin key; use an empty one, or set TILL_URL and "
                   "TILL_ADMIN_KEY to use a running server\n";
      return kExitRefused;
    }
    home.client.emplace(embedded->url(), *embedded->new_admin_key());
  }

  auto created = home.client->call("POST", home.create_target, json::serialize(*body));
  if (!created) return report_error(created.error());
  const std::string id = cell_text(json_at(*created, "id"));
  const std::string key = cell_text(json_at(*created, "key"));
  const std::string url = home.client->url();

  std::set<std::string> hidden = {"TILL_ADMIN_KEY", "TILL_MASTER_KEY"};
  if (o.key.upstream_key_env) hidden.insert(*o.key.upstream_key_env);
  const int status =
      run_child(o.command, child_environment(sdk_environment(url, *provider, key), hidden));

  auto final_state = home.client->call("DELETE", home.revoke_prefix + id);
  if (final_state) {
    print_summary(*final_state);
  } else {
    std::cerr << "till: could not revoke " << id << ": " << final_state.error().message << "\n";
  }
  if (embedded) embedded->stop();
  if (temp_dir) {
    std::error_code ignored;
    std::filesystem::remove_all(*temp_dir, ignored);
  }
  if (status < 0) return 127;
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return WEXITSTATUS(status);
}

}  // namespace till
