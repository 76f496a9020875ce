#include <iostream>

#include "cli/commands.h"

namespace till {

int report_error(const Error& error) {
  // Messages written for agents already start with "till: ".
  const std::string_view message = error.message;
  std::cerr << (message.starts_with("till: ") ? "" : "till: ") << message << "\n";
  return error.code == ErrorCode::kUnavailable ? kExitUnreachable : kExitRefused;
}

}  // namespace till
