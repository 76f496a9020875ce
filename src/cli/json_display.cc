#include "cli/json_display.h"

#include <boost/json/serialize.hpp>

namespace till {

namespace json = boost::json;

const json::value* json_at(const json::value& v, std::string_view a, std::string_view b) {
  if (!v.is_object()) return nullptr;
  const json::value* x = v.as_object().if_contains(a);
  if (b.empty() || x == nullptr || !x->is_object()) return b.empty() ? x : nullptr;
  return x->as_object().if_contains(b);
}

std::string cell_text(const json::value* v) {
  if (v == nullptr || v->is_null()) return "-";
  if (v->is_string()) return std::string(v->as_string());
  return json::serialize(*v);
}

}  // namespace till
