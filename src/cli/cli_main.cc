// Argument parsing for every subcommand (CLI11 lives only in this file: it is slow to compile).
#include "cli/cli_main.h"

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <functional>
#include <string_view>

#include "cli/commands.h"
#include "core/time_text.h"

namespace till {
namespace {

std::string default_data_dir() {
  const char* env = std::getenv("TILL_DATA_DIR");
  return env && *env ? env : "./.till";
}

// An option taking a duration such as "30s" or "500ms" (core/time_text.h syntax).
void add_duration_option(CLI::App& app, const std::string& name, std::chrono::milliseconds& target,
                         const std::string& help) {
  app.add_option_function<std::string>(
         name,
         [name, &target](const std::string& text) {
           auto d = parse_duration(text, name);
           if (!d) throw CLI::ValidationError(name, d.error().message);
           target = *d;
         },
         help)
      ->type_name("DURATION");
}

// Every subcommand's options; outlives parsing, so callbacks may refer to its members.
struct Options {
  ServeOptions serve;
  InitOptions init;
  KeyCreateOptions key_create;
  KeyListOptions key_list;
  KeyIdOptions key_show;
  KeyIdOptions key_revoke;
  RunOptions run;
  EnvOptions env;
};

// The options that describe a new key (provider, upstream credential, limits, scope).
void add_key_spec_options(CLI::App& c, KeyCreateOptions& create) {
  c.add_option("--provider", create.provider, "Provider: openai, anthropic, google, …")->required();
  auto* env = c.add_option("--upstream-key-env", create.upstream_key_env,
                           "Environment variable holding the real provider key "
                           "(default: the provider's usual one, e.g. OPENAI_API_KEY)");
  auto* stdin_flag = c.add_flag("--upstream-key-stdin", create.upstream_key_stdin,
                                "Read the real provider key from the first line of stdin");
  env->excludes(stdin_flag);
  c.add_option("--name", create.name, "A name to recognise the key by");
  c.add_option("--max-requests", create.max_requests, "Request limit")->check(CLI::PositiveNumber);
  c.add_option("--max-tokens", create.max_tokens, "Token limit (input + output)")
      ->check(CLI::PositiveNumber);
  c.add_option("--max-spend", create.max_spend, "Spend limit in USD, e.g. 5 or 0.50");
  auto* in = c.add_option("--expires-in", create.expires_in, "Lifetime, e.g. 90m, 24h, 7d");
  auto* at = c.add_option("--expires-at", create.expires_at, "Expiry time (RFC 3339)");
  in->excludes(at);
  c.add_option("--models", create.models, "Allowed models, comma-separated")->delimiter(',');
  c.add_option("--rpm", create.rpm, "Requests per minute")->check(CLI::PositiveNumber);
  c.add_option("--max-concurrency", create.max_concurrency, "Requests in flight at once")
      ->check(CLI::PositiveNumber);
  c.add_option("--allowed-cidrs", create.allowed_cidrs, "Client address ranges, comma-separated")
      ->delimiter(',');
  c.add_option("--metadata", create.metadata, "A JSON object stored with the key");
}

void add_run_command(CLI::App& app, RunOptions& run, std::function<int()>& action) {
  CLI::App* r = app.add_subcommand(
      "run", "Run a command with a scoped key for its lifetime: till run [options] -- CMD ARGS…");
  add_key_spec_options(*r, run.key);
  run.serve.data_dir.clear();  // a temporary one unless given
  r->add_option("--data-dir", run.serve.data_dir,
                "Data dir of the embedded server (default: a temporary one)");
  r->add_option("--upstream", run.serve.upstream_overrides,
                "Embedded server: send a provider's requests elsewhere, NAME=URL (repeatable)");
  r->add_option("--upstream-ca", run.serve.upstream_ca,
                "Embedded server: extra CA file for upstream TLS")
      ->check(CLI::ExistingFile);
  // Everything from the first argument that is not an option of `run` (after an optional "--")
  // is the command, options of its own included.
  r->prefix_command();
  r->footer(
      "With TILL_URL set (and TILL_ADMIN_KEY), the key is created on that server; otherwise an "
      "embedded server runs on an ephemeral loopback port for the life of the command. The key "
      "is revoked when the command exits; the exit status is the command's.");
  r->callback([r, o = &run, a = &action] {
    if (o->command.empty()) o->command = r->remaining();  // no "--": run_cli split nothing off
    if (o->command.empty()) throw CLI::ValidationError("run", "give the command to run after --");
    *a = [o] { return run_run(*o); };
  });
}

void add_env_command(CLI::App& app, EnvOptions& env, std::function<int()>& action) {
  CLI::App* e = app.add_subcommand(
      "env", "Print export lines that point the provider's SDKs at till with a scoped key");
  e->add_option("key", env.key, "A scoped key (till_sk_…)");
  auto* create = e->add_flag("--create", env.create, "Create a key first (key options below)");
  add_key_spec_options(*e, env.spec);
  e->get_option("--provider")->required(false)->needs(create);
  e->add_option("--format", env.format, "shell (export lines) or dotenv")
      ->check(CLI::IsMember({"shell", "dotenv"}))
      ->capture_default_str();
  e->footer(
      "Use: eval \"$(till env till_sk_…)\". Talks to TILL_URL; --create needs TILL_ADMIN_KEY.");
  e->callback([o = &env, a = &action] {
    if (o->create && o->spec.provider.empty()) {
      throw CLI::ValidationError("--create", "needs --provider");
    }
    *a = [o] { return run_env(*o); };
  });
}

void add_key_commands(CLI::App& app, Options& options, std::function<int()>& action) {
  CLI::App* key = app.add_subcommand("key", "Create, list, show and revoke scoped keys");
  key->require_subcommand(1);
  key->footer(
      "Talks to the server at TILL_URL (default http://127.0.0.1:4100) with TILL_ADMIN_KEY.");

  KeyCreateOptions& create = options.key_create;
  CLI::App* c = key->add_subcommand("create", "Create a scoped key; prints only the key on stdout");
  add_key_spec_options(*c, create);
  c->add_flag("--json", create.json, "Print the full record as JSON");
  c->callback([o = &create, a = &action] { *a = [o] { return run_key_create(*o); }; });

  KeyListOptions& list = options.key_list;
  CLI::App* l = key->add_subcommand("list", "List keys as a table");
  l->add_option("--status", list.status, "active, exhausted, revoked, expired or suspended");
  l->add_option("--provider", list.provider, "Only this provider's keys");
  l->add_option("--name", list.name, "Only keys with this name");
  l->add_flag("--json", list.json, "Print JSON");
  l->callback([o = &list, a = &action] { *a = [o] { return run_key_list(*o); }; });

  KeyIdOptions& show = options.key_show;
  KeyIdOptions& revoke = options.key_revoke;
  CLI::App* s = key->add_subcommand("show", "Show one key's limits, usage and status");
  s->add_option("id", show.id, "Key id (key_…)")->required();
  s->add_flag("--json", show.json, "Print JSON");
  s->callback([o = &show, a = &action] { *a = [o] { return run_key_show(*o); }; });
  CLI::App* r = key->add_subcommand("revoke", "Revoke a key; its next request is refused");
  r->add_option("id", revoke.id, "Key id (key_…)")->required();
  r->add_flag("--json", revoke.json, "Print JSON");
  r->callback([o = &revoke, a = &action] { *a = [o] { return run_key_revoke(*o); }; });
}

}  // namespace

int run_cli(int argc, char** argv) {
  CLI::App app{"till: scoped, disposable API keys for AI agents"};
  app.require_subcommand(1);
  std::function<int()> action;
  Options options;

  ServeOptions& serve = options.serve;
  serve.data_dir = default_data_dir();
  CLI::App* s = app.add_subcommand("serve", "Run the till server");
  s->add_option("--listen", serve.listen, "Address to listen on (host:port)")
      ->capture_default_str();
  s->add_option("--data-dir", serve.data_dir, "Data directory (or TILL_DATA_DIR)")
      ->capture_default_str();
  s->add_option("--threads", serve.threads, "I/O threads (default: one per core)")
      ->check(CLI::Range(0, 256));
  s->add_option("--max-body-bytes", serve.max_body_bytes, "Largest request body accepted")
      ->capture_default_str();
  s->add_option("--upstream", serve.upstream_overrides,
                "Send a provider's requests elsewhere: NAME=URL (repeatable)")
      ->type_name("NAME=URL");
  s->add_option("--pricing", serve.pricing_file,
                "JSON price file merged over the built-in table (see docs/pricing.md)")
      ->check(CLI::ExistingFile);
  add_duration_option(*s, "--header-timeout", serve.header_timeout,
                      "Time a client has to send a request's headers (e.g. 30s)");
  add_duration_option(*s, "--body-timeout", serve.body_timeout,
                      "Time a client has to send a request's body (e.g. 60s)");
  s->add_option("--upstream-ca", serve.upstream_ca,
                "PEM file of extra CA certificates trusted for upstream TLS")
      ->check(CLI::ExistingFile);
  add_duration_option(*s, "--upstream-timeout", serve.upstream_timeout,
                      "Time an upstream has to start answering a request (e.g. 600s)");
  add_duration_option(*s, "--upstream-connect-timeout", serve.upstream_connect_timeout,
                      "Time to connect to an upstream, TLS handshake included (e.g. 10s)");
  s->callback([o = &serve, a = &action] { *a = [o] { return run_serve(*o); }; });

  InitOptions& init = options.init;
  init.data_dir = default_data_dir();
  CLI::App* i = app.add_subcommand(
      "init", "Create a data dir with a master key and an admin key; prints the admin key");
  i->add_option("--data-dir", init.data_dir, "Data directory (or TILL_DATA_DIR)")
      ->capture_default_str();
  i->callback([o = &init, a = &action] { *a = [o] { return run_init(*o); }; });

  add_key_commands(app, options, action);
  add_run_command(app, options.run, action);
  add_env_command(app, options.env, action);

  // `till run [options] -- CMD ARGS…`: everything after "--" is the command, whatever it looks
  // like; CLI11 sees only run's own options.
  if (argc > 2 && std::string_view(argv[1]) == "run") {
    for (int i = 2; i < argc; ++i) {
      if (std::string_view(argv[i]) != "--") continue;
      options.run.command.assign(argv + i + 1, argv + argc);
      argc = i;
      break;
    }
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? kExitOk : kExitUsage;
  }
  return action ? action() : kExitUsage;
}

}  // namespace till
