// Reading a secret (a provider's API key) for the CLI: from an environment variable or the first
// line of stdin, never from argv, where every user of the machine could read it in the process
// list.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "till/error.h"

namespace till {

// Where one secret comes from, as the user's options said.
struct SecretSource {
  // The option pair's stem: "--upstream-key" stands for --upstream-key-env and
  // --upstream-key-stdin. Errors name these options.
  std::string_view option;
  // The request field the secret fills ("upstream_key", "secret"); errors carry it as their field.
  std::string_view field;
  std::optional<std::string> env;  // <option>-env VAR
  bool from_stdin = false;         // <option>-stdin
  std::string default_env;         // used when neither is given; empty if there is none
};

// The secret: the first line of stdin (trailing spaces and CR dropped) when `from_stdin`,
// otherwise the value of `env` or else `default_env`. An empty or unset source is an
// kInvalidRequest error saying which variable was missing and how to pass the secret instead.
// Never puts the secret in an error message.
Result<std::string> read_secret(const SecretSource& source);

// The variable the provider's SDKs read its key from ("OPENAI_API_KEY"), or "" for a provider
// till does not know.
std::string provider_key_env(std::string_view provider);

}  // namespace till
