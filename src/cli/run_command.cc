// `till run [key options] -- CMD [ARGS…]`: one scoped key for the life of one command.
//
// Creates the key (on TILL_URL's server, or on an embedded server on an ephemeral loopback port
// when TILL_URL is not set), runs the command with the key and till's base URLs in the variables
// the provider's SDKs read, forwards SIGINT, SIGTERM and SIGHUP to it, revokes the key when it
// exits however it exits, prints a usage summary on stderr and exits with the command's status.
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

#include "cli/api_client.h"
#include "cli/commands.h"
#include "cli/key_body.h"
#include "cli/sdk_environment.h"
#include "cli/till_instance.h"
#include "provider/provider_table.h"

extern char** environ;

namespace till {
namespace {

namespace json = boost::json;

std::atomic<pid_t> g_child{0};

void forward_signal(int signal_number) {
  const pid_t child = g_child.load();
  if (child > 0) ::kill(child, signal_number);
}

std::vector<std::string> child_environment(const std::map<std::string, std::string>& vars) {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string_view entry(*e);
    const std::string name(entry.substr(0, entry.find('=')));
    if (!vars.contains(name)) env.emplace_back(entry);
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

const json::value* field(const json::value& v, std::string_view a, std::string_view b) {
  const json::value* x = v.is_object() ? v.as_object().if_contains(a) : nullptr;
  return x && x->is_object() ? x->as_object().if_contains(b) : nullptr;
}

std::string text(const json::value* v) {
  if (v == nullptr || v->is_null()) return "-";
  return v->is_string() ? std::string(v->as_string()) : json::serialize(*v);
}

void print_summary(const json::value& key) {
  std::string ended;
  const std::pair<const char*, const char*> dims[] = {
      {"requests", "max_requests"}, {"tokens", "max_tokens"}, {"spend_usd", "max_spend_usd"}};
  for (const auto& [used, limit] : dims) {
    const json::value* l = field(key, "limits", limit);
    const json::value* r = field(key, "remaining", used);
    if (l && !l->is_null() && r && (text(r) == "0" || text(r) == "0.00")) {
      ended = std::string(limit) + " (" + text(l) + ")";
    }
  }
  std::cerr << "till run: " << text(field(key, "used", "requests")) << " requests, "
            << text(field(key, "used", "tokens")) << " tokens ("
            << text(field(key, "used", "input_tokens")) << " in, "
            << text(field(key, "used", "output_tokens")) << " out), $"
            << text(field(key, "used", "spend_usd")) << " spent";
  if (!ended.empty()) std::cerr << "; the " << ended << " limit was reached";
  std::cerr << "\n";
}

}  // namespace

int run_run(const RunOptions& o) {
  const ProviderInfo* provider = find_provider(o.key.provider);
  if (provider == nullptr) {
    std::cerr << "till: unknown provider \"" << o.key.provider << "\"\n";
    return kExitUsage;
  }
  KeyCreateOptions key_options = o.key;
  if (!key_options.expires_in && !key_options.expires_at) key_options.expires_in = "24h";
  if (!key_options.name) key_options.name = "till run: " + o.command.front();
  auto body = key_create_body(key_options);  // reads the real key before the child's env hides it
  if (!body) return report_error(body.error());

  // The server: TILL_URL's, or an embedded one for the life of the command.
  std::unique_ptr<TillInstance> embedded;
  std::optional<std::filesystem::path> temp_dir;
  std::optional<ApiClient> client;
  const char* till_url = std::getenv("TILL_URL");
  if (till_url && *till_url) {
    client = ApiClient::from_environment();
  } else {
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
    client.emplace(embedded->url(), *embedded->new_admin_key());
  }

  auto created = client->call("POST", "/api/v1/keys", json::serialize(*body));
  if (!created) return report_error(created.error());
  const std::string id = text(created->as_object().if_contains("id"));
  const std::string key = text(created->as_object().if_contains("key"));
  const std::string url = embedded ? embedded->url() : client->url();

  const int status = run_child(o.command, child_environment(sdk_environment(url, *provider, key)));

  auto final_state = client->call("DELETE", "/api/v1/keys/" + id);
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
