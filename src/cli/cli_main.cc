// Argument parsing for every subcommand (CLI11 lives only in this file: it is slow to compile).
#include "cli/cli_main.h"

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

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
  KeyRotateOptions key_rotate;
  KeyIdOptions key_suspend;
  KeyIdOptions key_resume;
  CredentialAddOptions credential_add;
  CredentialListOptions credential_list;
  CredentialNameOptions credential_show;
  CredentialRotateOptions credential_rotate;
  CredentialRemoveOptions credential_remove;
  MasterKeyOptions master_key_list;
  MasterKeyOptions master_key_rotate;
  MasterKeyOptions master_key_retire;
  RunOptions run;
  EnvOptions env;
  UsageOptions usage;
  AlertsOptions alerts;
  TopOptions top;
};

// <stem>-env VAR | <stem>-stdin, one excluding the other: where a secret comes from (never argv).
// Returns the two options.
std::pair<CLI::Option*, CLI::Option*> add_secret_options(CLI::App& c, const std::string& stem,
                                                         std::optional<std::string>& env,
                                                         bool& from_stdin, const std::string& what,
                                                         const std::string& default_env) {
  auto* e = c.add_option(stem + "-env", env,
                         "Environment variable holding " + what + " (default: " + default_env + ")")
                ->type_name("VAR");
  auto* s =
      c.add_flag(stem + "-stdin", from_stdin, "Read " + what + " from the first line of stdin");
  e->excludes(s);
  return {e, s};
}

// The options that describe a new key (provider, upstream credential, limits, scope).
void add_key_spec_options(CLI::App& c, KeyCreateOptions& create) {
  c.add_option("--provider", create.provider, "Provider: openai, anthropic, google, …")->required();
  auto [env, stdin_flag] =
      add_secret_options(c, "--upstream-key", create.upstream_key_env, create.upstream_key_stdin,
                         "the real provider key", "the provider's usual one, e.g. OPENAI_API_KEY");
  auto* credential = c.add_option("--credential", create.credential,
                                  "Use this vault credential (see `till credential add`) instead "
                                  "of an upstream key; no upstream key is read")
                         ->type_name("NAME");
  credential->excludes(env)->excludes(stdin_flag);
  c.add_option(
       "--rotate-every", create.rotate_every,
       "Each token is refused after this long unless rotated with `till key rotate`, e.g. 7d")
      ->type_name("DURATION");
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
  // Inside another run the key is a sub-key of TILL_KEY and takes its provider.
  r->get_option("--provider")->required(false);
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
      "Inside another run (TILL_KEY set, no TILL_ADMIN_KEY) the key is a sub-key carved out of "
      "TILL_KEY. Otherwise, with TILL_URL set (and TILL_ADMIN_KEY), the key is created on that "
      "server; without, an embedded server runs on an ephemeral loopback port for the life of "
      "the command. --provider is required except inside another run. The key is revoked when "
      "the command exits; the exit status is the command's.");
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
  CLI::App* key = app.add_subcommand(
      "key", "Create, list, show, revoke, rotate, suspend and resume scoped keys");
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

  KeyRotateOptions& rotate = options.key_rotate;
  CLI::App* rot =
      key->add_subcommand("rotate", "Give a key a new token; prints only the new token on stdout");
  rot->add_option("id", rotate.id, "Key id (key_…)")->required();
  rot->add_option("--grace", rotate.grace,
                  "How long the old token keeps working, e.g. 10m (default: none, it is refused "
                  "from the next request)")
      ->type_name("DURATION");
  add_secret_options(*rot, "--upstream-key", rotate.upstream_key_env, rotate.upstream_key_stdin,
                     "the real provider key", "the provider's usual one, e.g. OPENAI_API_KEY");
  rot->add_flag("--json", rotate.json, "Print the full record as JSON");
  rot->footer(
      "A key created with --credential keeps using its vault credential and needs no upstream "
      "key; a key holding its own upstream key is given it again, from the environment or stdin "
      "(never the command line).");
  rot->callback([o = &rotate, a = &action] { *a = [o] { return run_key_rotate(*o); }; });

  KeyIdOptions& suspend = options.key_suspend;
  CLI::App* su = key->add_subcommand(
      "suspend", "Suspend a key: its requests are refused until `till key resume`");
  su->add_option("id", suspend.id, "Key id (key_…)")->required();
  su->add_flag("--json", suspend.json, "Print JSON");
  su->callback([o = &suspend, a = &action] { *a = [o] { return run_key_suspend(*o); }; });

  KeyIdOptions& resume = options.key_resume;
  CLI::App* re = key->add_subcommand("resume", "Resume a suspended key");
  re->add_option("id", resume.id, "Key id (key_…)")->required();
  re->add_flag("--json", resume.json, "Print JSON");
  re->callback([o = &resume, a = &action] { *a = [o] { return run_key_resume(*o); }; });
}

void add_credential_commands(CLI::App& app, Options& options, std::function<int()>& action) {
  CLI::App* credential = app.add_subcommand(
      "credential", "Keep provider keys in till's vault, shared by keys made with --credential");
  credential->require_subcommand(1);
  credential->footer(
      "Secrets are read from an environment variable or stdin, never the command line, and are "
      "never printed. Talks to the server at TILL_URL (default http://127.0.0.1:4100) with "
      "TILL_ADMIN_KEY.");

  CredentialAddOptions& add = options.credential_add;
  CLI::App* ad = credential->add_subcommand("add", "Store a provider key in the vault");
  ad->add_option("name", add.name, "Credential name: 1-64 of A-Z a-z 0-9 . _ -")->required();
  ad->add_option("--provider", add.provider, "Provider: openai, anthropic, google, …")->required();
  add_secret_options(*ad, "--secret", add.secret_env, add.secret_stdin, "the provider key",
                     "the provider's usual one, e.g. OPENAI_API_KEY");
  ad->add_option("--rotate-every", add.rotate_every,
                 "Rotate the secret this often, e.g. 30d (`credential list` shows when it is due)")
      ->type_name("DURATION");
  ad->add_flag("--json", add.json, "Print JSON");
  ad->callback([o = &add, a = &action] { *a = [o] { return run_credential_add(*o); }; });

  CredentialListOptions& list = options.credential_list;
  CLI::App* l = credential->add_subcommand(
      "list", "List credentials: provider, age of the secret, keys using it, rotation due");
  l->add_flag("--json", list.json, "Print JSON");
  l->callback([o = &list, a = &action] { *a = [o] { return run_credential_list(*o); }; });

  CredentialNameOptions& show = options.credential_show;
  CLI::App* s = credential->add_subcommand("show", "Show one credential (never its secret)");
  s->add_option("name", show.name, "Credential name")->required();
  s->add_flag("--json", show.json, "Print JSON");
  s->callback([o = &show, a = &action] { *a = [o] { return run_credential_show(*o); }; });

  CredentialRotateOptions& rotate = options.credential_rotate;
  CLI::App* r = credential->add_subcommand(
      "rotate", "Replace a credential's secret; the keys using it send the new one");
  r->add_option("name", rotate.name, "Credential name")->required();
  add_secret_options(*r, "--secret", rotate.secret_env, rotate.secret_stdin, "the new provider key",
                     "the credential's provider's usual one");
  r->add_flag("--json", rotate.json, "Print JSON");
  r->callback([o = &rotate, a = &action] { *a = [o] { return run_credential_rotate(*o); }; });

  CredentialRemoveOptions& remove = options.credential_remove;
  CLI::App* rm = credential->add_subcommand(
      "remove", "Delete a credential; refused while keys that are not revoked use it");
  rm->add_option("name", remove.name, "Credential name")->required();
  rm->add_flag("--force", remove.force, "Remove it even while keys use it");
  rm->add_flag("--json", remove.json, "Print JSON");
  rm->callback([o = &remove, a = &action] { *a = [o] { return run_credential_remove(*o); }; });
}

void add_master_key_commands(CLI::App& app, Options& options, std::function<int()>& action) {
  CLI::App* master = app.add_subcommand(
      "master-key", "List, rotate and retire master key versions (with the server stopped)");
  master->require_subcommand(1);
  master->footer(
      "Works on the data dir's master.key and database directly, so the server using them must "
      "be stopped. Not available when the master key comes from TILL_MASTER_KEY.");
  const auto data_dir_option = [](CLI::App& c, MasterKeyOptions& o) {
    o.data_dir = default_data_dir();
    c.add_option("--data-dir", o.data_dir, "Data directory (or TILL_DATA_DIR)")
        ->capture_default_str();
  };

  MasterKeyOptions& list = options.master_key_list;
  CLI::App* l = master->add_subcommand(
      "list", "Show each version and how many live keys and vault credentials still need it");
  data_dir_option(*l, list);
  l->callback([o = &list, a = &action] { *a = [o] { return run_master_key_list(*o); }; });

  MasterKeyOptions& rotate = options.master_key_rotate;
  CLI::App* r = master->add_subcommand(
      "rotate",
      "Add a new version that new seals use and re-wrap the vault under it; prints the version");
  data_dir_option(*r, rotate);
  r->callback([o = &rotate, a = &action] { *a = [o] { return run_master_key_rotate(*o); }; });

  MasterKeyOptions& retire = options.master_key_retire;
  CLI::App* t = master->add_subcommand(
      "retire", "Remove an old version; refused while any live key or credential still needs it");
  t->add_option("version", retire.version, "The version to remove (as `list` shows, without v)")
      ->required()
      ->check(CLI::Range(1u, 4294967295u));
  data_dir_option(*t, retire);
  t->callback([o = &retire, a = &action] { *a = [o] { return run_master_key_retire(*o); }; });
}

// A time bound as the monitoring endpoints take it: a duration before now, or RFC 3339.
// Returns why `text` is neither, or "" (a CLI::Validator, which names the option itself).
std::string check_time_bound(const std::string& text) {
  const std::string field = "time";
  Error error;
  if (text.find_first_of("Tt") != std::string::npos) {
    auto t = parse_rfc3339(text, field);
    if (t) return "";
    error = t.error();
  } else {
    auto d = parse_duration(text, field);
    if (d) return "";
    error = d.error();
  }
  return error.message.starts_with(field + ": ") ? error.message.substr(field.size() + 2)
                                                 : error.message;
}

void add_monitoring_commands(CLI::App& app, Options& options, std::function<int()>& action) {
  const std::string server =
      "Talks to the server at TILL_URL (default http://127.0.0.1:4100) with TILL_ADMIN_KEY.";

  UsageOptions& usage = options.usage;
  CLI::App* u = app.add_subcommand(
      "usage", "Requests, tokens and spend over a period, per model, key or provider");
  u->add_option("--key", usage.key, "Only this key's usage")->type_name("ID");
  u->add_option("--provider", usage.provider, "Only this provider's usage");
  u->add_option("--model", usage.model, "Only this model's usage");
  u->add_option("--since", usage.since,
                "Start of the period: a duration before now (90m, 24h, 7d) or an RFC 3339 time")
      ->check(CLI::Validator(check_time_bound, ""))
      ->type_name("DURATION|TIME")
      ->capture_default_str();
  u->add_option("--bucket", usage.bucket,
                "Length of each point of the trend (default: minute up to 2h, hour up to 7d, "
                "else day)")
      ->check(CLI::IsMember({"minute", "hour", "day"}));
  u->add_option("--by", usage.by, "One row per model, key or provider")
      ->check(CLI::IsMember({"model", "key", "provider"}));
  u->add_flag("--json", usage.json, "Print the server's answer as JSON");
  u->footer(
      "TREND is a sparkline of requests per bucket, oldest on the left, scaled to the row's "
      "busiest bucket (a space is a bucket without requests); more than 40 buckets are summed "
      "in equal groups. A summary line goes to stderr. " +
      server);
  u->callback([o = &usage, a = &action] { *a = [o] { return run_usage(*o); }; });

  AlertsOptions& alerts = options.alerts;
  CLI::App* al = app.add_subcommand(
      "alerts", "List alerts (unacknowledged ones by default), follow them, or acknowledge one");
  auto* key = al->add_option("--key", alerts.key, "Only this key's alerts")->type_name("ID");
  auto* rule = al->add_option("--rule", alerts.rule,
                              "Only this rule's alerts, e.g. budget_threshold, key_exhausted, "
                              "invalid_key_burst (docs/monitoring.md)");
  auto* all = al->add_flag("--all", alerts.all, "Acknowledged alerts too");
  auto* follow = al->add_flag("--follow,-f", alerts.follow,
                              "Print the alerts, then new ones as they are raised, until Ctrl-C");
  auto* ack = al->add_option("--ack", alerts.ack, "Acknowledge this alert and print it")
                  ->type_name("ID")
                  ->check(CLI::PositiveNumber);
  ack->excludes(key)->excludes(rule)->excludes(all)->excludes(follow);
  al->add_flag("--json", alerts.json,
               "Print JSON (with --follow: one alert per line, as each arrives)");
  al->footer(
      "The list is newest first; with --follow it is oldest first and new alerts are added at "
      "the bottom as the server raises them (checked every 2s). " +
      server);
  al->callback([o = &alerts, a = &action] { *a = [o] { return run_alerts(*o); }; });

  TopOptions& top = options.top;
  CLI::App* t =
      app.add_subcommand("top", "A live view of the busiest keys of the last minute, until Ctrl-C");
  add_duration_option(*t, "--interval", top.interval, "Time between refreshes (default 2s)");
  t->add_option("--limit", top.limit, "How many keys to show")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  t->add_flag("--once", top.once, "Print one screen and exit (for scripts)");
  t->footer(
      "Rates are over the last 60 seconds; REMAINING is what each key's limits still allow. "
      "On a terminal the screen is redrawn; otherwise each refresh is printed after a blank "
      "line. " +
      server);
  t->callback([o = &top, a = &action] {
    if (o->interval < std::chrono::milliseconds(100)) {
      throw CLI::ValidationError("--interval", "must be at least 100ms");
    }
    *a = [o] { return run_top(*o); };
  });
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
  s->add_option("--max-key-depth", serve.max_key_depth,
                "How many levels of sub-keys a key may have below it")
      ->capture_default_str()
      ->check(CLI::Range(0, 64));
  s->add_option("--dashboard-dir", serve.dashboard_dir,
                "Serve the dashboard's files from DIR (e.g. build/web), read on every request, "
                "instead of the copy built into till: for working on web/")
      ->type_name("DIR")
      ->check(CLI::ExistingDirectory);
  s->add_option_function<std::string>(
       "--monitoring", [o = &serve](const std::string& value) { o->monitoring = value == "on"; },
       "on (default): usage events, /metrics, alert rules; off: none of them")
      ->check(CLI::IsMember({"on", "off"}))
      ->type_name("on|off");
  s->add_option_function<std::string>(
       "--usage-retention",
       [o = &serve](const std::string& text) {
         if (text == "0" || text == "forever") {
           o->usage_retention = std::chrono::milliseconds::zero();
           return;
         }
         auto d = parse_duration(text, "--usage-retention");
         if (!d) throw CLI::ValidationError("--usage-retention", d.error().message);
         o->usage_retention = *d;
       },
       "How long usage events are kept, e.g. 30d (default), or forever")
      ->type_name("DURATION");
  s->add_option("--access-log", serve.access_log,
                "Write one JSON line per proxied request to FILE, or - for stderr")
      ->type_name("FILE");
  s->add_option("--alert-webhook", serve.alert_webhooks,
                "POST alerts, signed with TILL_WEBHOOK_SECRET, to URL (repeatable)")
      ->type_name("URL");
  s->add_option("--alert-slack-webhook", serve.alert_slack_webhooks,
                "POST alerts as Slack messages to URL (repeatable)")
      ->type_name("URL");
  s->add_option("--alert", serve.alert_actions,
                "Set an alert rule's action: RULE=off|alert|suspend (repeatable; see "
                "docs/monitoring.md)")
      ->type_name("RULE=ACTION");
  s->callback([o = &serve, a = &action] { *a = [o] { return run_serve(*o); }; });

  InitOptions& init = options.init;
  init.data_dir = default_data_dir();
  CLI::App* i = app.add_subcommand(
      "init", "Create a data dir with a master key and an admin key; prints the admin key");
  i->add_option("--data-dir", init.data_dir, "Data directory (or TILL_DATA_DIR)")
      ->capture_default_str();
  i->callback([o = &init, a = &action] { *a = [o] { return run_init(*o); }; });

  add_key_commands(app, options, action);
  add_credential_commands(app, options, action);
  add_master_key_commands(app, options, action);
  add_run_command(app, options.run, action);
  add_env_command(app, options.env, action);
  add_monitoring_commands(app, options, action);

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
