// The `till` subcommands. cli_main.cc parses arguments (CLI11) into these option structs; each
// command returns the process exit code and writes errors as one line "till: …" on stderr.
//
// Exit codes: 0 success, 1 the server or the command refused, 2 bad usage, 3 server unreachable.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "till/error.h"

namespace till {

inline constexpr int kExitOk = 0;
inline constexpr int kExitRefused = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitUnreachable = 3;

// Writes "till: <message>" on stderr and returns the exit code for the error.
int report_error(const Error& error);

struct ServeOptions {
  std::string listen = "127.0.0.1:4100";
  std::string data_dir = "./.till";
  int threads = 0;  // 0 = one per core
  size_t max_body_bytes = 32 * 1024 * 1024;
  std::chrono::milliseconds header_timeout{30'000};  // to receive a request's header block
  std::chrono::milliseconds body_timeout{60'000};    // to receive the rest of its body
  std::string upstream_ca;  // --upstream-ca: PEM file of extra CAs trusted for upstream TLS
  std::chrono::milliseconds upstream_timeout{600'000};         // request sent → response head
  std::chrono::milliseconds upstream_connect_timeout{10'000};  // TCP connect + TLS handshake
  std::vector<std::string> upstream_overrides;                 // "NAME=URL", from --upstream
  std::string pricing_file;   // --pricing: prices over the built-in table
  int max_key_depth = 4;      // --max-key-depth: levels of sub-keys below a key
  std::string dashboard_dir;  // --dashboard-dir: serve the dashboard from here, not the binary
  // Monitoring (docs/monitoring.md).
  bool monitoring = true;  // --monitoring off: no usage events, metrics or alert rules
  std::chrono::milliseconds usage_retention = std::chrono::days(30);  // 0: keep forever
  std::string access_log;                         // --access-log FILE, "-" = stderr
  std::vector<std::string> alert_webhooks;        // --alert-webhook URL
  std::vector<std::string> alert_slack_webhooks;  // --alert-slack-webhook URL
  std::vector<std::string> alert_actions;         // --alert RULE=off|alert|suspend
};
int run_serve(const ServeOptions& options);

struct InitOptions {
  std::string data_dir = "./.till";
};
int run_init(const InitOptions& options);

struct KeyCreateOptions {
  std::string provider;
  std::optional<std::string> upstream_key_env;
  bool upstream_key_stdin = false;
  std::optional<std::string> credential;    // a vault credential instead of an upstream key
  std::optional<std::string> rotate_every;  // each token is refused this long after it is issued
  std::optional<std::string> name;
  std::optional<int64_t> max_requests;
  std::optional<int64_t> max_tokens;
  std::optional<std::string> max_spend;  // USD, decimal text
  std::optional<std::string> expires_in;
  std::optional<std::string> expires_at;
  std::vector<std::string> models;
  std::optional<int64_t> rpm;
  std::optional<int64_t> max_concurrency;
  std::vector<std::string> allowed_cidrs;
  std::optional<std::string> metadata;  // JSON object text
  bool json = false;
};
int run_key_create(const KeyCreateOptions& options);

struct KeyListOptions {
  std::optional<std::string> status;
  std::optional<std::string> provider;
  std::optional<std::string> name;
  bool json = false;
};
int run_key_list(const KeyListOptions& options);

struct KeyIdOptions {
  std::string id;
  bool json = false;
};
int run_key_show(const KeyIdOptions& options);
int run_key_suspend(const KeyIdOptions& options);
int run_key_resume(const KeyIdOptions& options);

struct KeyRotateOptions {
  std::string id;
  std::optional<std::string> grace;  // how long the old token keeps working; server default 0s
  // A key holding its own (sealed) upstream key needs it again: from this variable (default the
  // provider's usual one) or stdin. A key using a vault credential needs none.
  std::optional<std::string> upstream_key_env;
  bool upstream_key_stdin = false;
  bool json = false;
};
// Prints the new token alone on stdout (or the record with --json).
int run_key_rotate(const KeyRotateOptions& options);

struct EnvOptions {
  std::string key;      // an existing scoped key, or empty with `create`
  bool create = false;  // create a key from `spec` first (needs TILL_ADMIN_KEY)
  KeyCreateOptions spec;
  std::string format = "shell";  // "shell" (export lines) or "dotenv"
};
// Prints the SDK variables for the key on stdout.
int run_env(const EnvOptions& options);

struct RunOptions {
  KeyCreateOptions key;              // the key's provider and limits; expiry defaults to 24h
  ServeOptions serve;                // for the embedded server when TILL_URL is not set
  std::vector<std::string> command;  // the command and its arguments
};
// Exits with the command's status (128 + signal if it was killed; 127 if it could not start).
int run_run(const RunOptions& options);
int run_key_revoke(const KeyIdOptions& options);

// `till credential …`: provider keys kept (encrypted) in the server's vault and shared by keys
// created with --credential. Secrets come from an environment variable or stdin, never argv.
struct CredentialAddOptions {
  std::string name;
  std::string provider;
  std::optional<std::string> secret_env;  // default: the provider's usual variable
  bool secret_stdin = false;
  std::optional<std::string> rotate_every;
  bool json = false;
};
int run_credential_add(const CredentialAddOptions& options);

struct CredentialListOptions {
  bool json = false;
};
int run_credential_list(const CredentialListOptions& options);

struct CredentialNameOptions {
  std::string name;
  bool json = false;
};
int run_credential_show(const CredentialNameOptions& options);

struct CredentialRotateOptions {
  std::string name;
  std::optional<std::string> secret_env;  // default: the credential's provider's usual variable
  bool secret_stdin = false;
  bool json = false;
};
int run_credential_rotate(const CredentialRotateOptions& options);

struct CredentialRemoveOptions {
  std::string name;
  bool force = false;  // remove it even while keys use it
  bool json = false;
};
int run_credential_remove(const CredentialRemoveOptions& options);

// `till master-key list|rotate|retire VERSION`: on the data dir of a stopped server.
struct MasterKeyOptions {
  std::string data_dir = "./.till";
  uint32_t version = 0;  // retire only
};
int run_master_key_list(const MasterKeyOptions& options);
int run_master_key_rotate(const MasterKeyOptions& options);  // prints the new version on stdout
int run_master_key_retire(const MasterKeyOptions& options);

// `till usage`, `till alerts`, `till top`: the monitoring endpoints (/api/v1/usage,
// /api/v1/alerts) read over HTTP with TILL_ADMIN_KEY, like the key commands.
struct UsageOptions {
  std::optional<std::string> key;       // only this key's usage
  std::optional<std::string> provider;  // only this provider's
  std::optional<std::string> model;     // only this model's
  std::string since = "24h";            // a duration before now ("24h"), or an RFC 3339 time
  std::optional<std::string> bucket;    // minute|hour|day; default from the length of `since`
  std::optional<std::string> by;        // model|key|provider: one row per group
  bool json = false;
};
// Prints a table (one row per group, or one "total" row) with a sparkline of requests per bucket;
// a summary line on stderr. --json prints the server's answer.
int run_usage(const UsageOptions& options);

struct AlertsOptions {
  std::optional<std::string> key;   // only this key's alerts
  std::optional<std::string> rule;  // only this rule's
  bool all = false;                 // acknowledged ones too
  bool follow = false;              // keep printing new ones until SIGINT/SIGTERM (then exit 0)
  std::optional<int64_t> ack;       // acknowledge this alert and print it
  bool json = false;
};
int run_alerts(const AlertsOptions& options);

struct TopOptions {
  std::chrono::milliseconds interval{2'000};  // between refreshes
  int limit = 20;                             // keys shown
  bool once = false;                          // one frame, then exit
};
// The busiest keys of the last minute, refreshed every interval until SIGINT/SIGTERM (exit 0).
int run_top(const TopOptions& options);

}  // namespace till
