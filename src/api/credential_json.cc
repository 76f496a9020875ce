#include "api/credential_json.h"

#include <boost/json/array.hpp>

#include "core/time_text.h"

namespace till {

boost::json::object credential_to_json(const CredentialRecord& credential,
                                       const std::vector<std::string>& keys) {
  namespace json = boost::json;
  const std::optional<Timestamp> due = credential.rotation_due_at();
  return json::object{
      {"name", credential.name},
      {"provider", credential.provider},
      {"created_at", format_rfc3339(credential.created_at)},
      {"rotated_at", format_rfc3339(credential.rotated_at)},
      {"rotate_every", credential.rotate_every
                           ? json::value(format_duration(*credential.rotate_every))
                           : json::value(nullptr)},
      {"rotation_due_at", due ? json::value(format_rfc3339(*due)) : json::value(nullptr)},
      {"master_key_version", credential.master_key_version},
      {"keys", json::array(keys.begin(), keys.end())},
      {"key_count", keys.size()},
  };
}

}  // namespace till
