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
  std::string pricing_file;  // --pricing: prices over the built-in table
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

}  // namespace till
