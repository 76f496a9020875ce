// Reading the server's JSON answers for display in the CLI's tables and summaries.
#pragma once

#include <boost/json/value.hpp>
#include <string>
#include <string_view>

namespace till {

// The member `a` of the object `v`, or the member `b` of that when `b` is given; nullptr when
// either is absent or not an object.
const boost::json::value* json_at(const boost::json::value& v, std::string_view a,
                                  std::string_view b = {});

// A value as a table cell: a string as it is, null or absent as "-", anything else as JSON.
std::string cell_text(const boost::json::value* v);

}  // namespace till
