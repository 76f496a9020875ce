#include "monitor/alert_engine.h"

namespace till {

std::string_view to_string(AlertAction action) {
  switch (action) {
    case AlertAction::kOff:
      return "off";
    case AlertAction::kAlert:
      return "alert";
    case AlertAction::kSuspend:
      return "suspend";
  }
  return "alert";
}

std::optional<AlertAction> parse_alert_action(std::string_view text) {
  if (text == "off") return AlertAction::kOff;
  if (text == "alert") return AlertAction::kAlert;
  if (text == "suspend") return AlertAction::kSuspend;
  return std::nullopt;
}

}  // namespace till
