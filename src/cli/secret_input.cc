#include "cli/secret_input.h"

#include <algorithm>
#include <cstdlib>
#include <iostream>

#include "provider/provider_table.h"

namespace till {

Result<std::string> read_secret(const SecretSource& source) {
  const std::string option(source.option);
  const std::string field(source.field);
  if (source.from_stdin) {
    std::string line;
    std::getline(std::cin, line);
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (line.empty()) return fail(Error::invalid(field, option + "-stdin: nothing on stdin"));
    return line;
  }
  const std::string var = source.env ? *source.env : source.default_env;
  const char* value = var.empty() ? nullptr : std::getenv(var.c_str());
  if (value == nullptr || *value == '\0') {
    std::string what = option.substr(option.find_first_not_of('-'));  // "--upstream-key" →
    std::replace(what.begin(), what.end(), '-', ' ');                 // "upstream key"
    return fail(
        Error::invalid(field, (var.empty() ? "no " + what + " variable" : var + " is not set") +
                                  "; pass " + option + "-env VAR or " + option + "-stdin"));
  }
  return std::string(value);
}

std::string provider_key_env(std::string_view provider) {
  const ProviderInfo* p = find_provider(provider);
  return p == nullptr ? std::string() : std::string(p->api_key_env);
}

}  // namespace till
