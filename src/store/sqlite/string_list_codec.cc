#include "store/sqlite/string_list_codec.h"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

namespace till::sqlite {

std::string encode_string_list(const std::vector<std::string>& list) {
  return boost::json::serialize(boost::json::array(list.begin(), list.end()));
}

std::optional<std::vector<std::string>> decode_string_list(std::string_view text) {
  boost::system::error_code ec;
  const boost::json::value value = boost::json::parse(text, ec);
  if (ec || !value.is_array()) return std::nullopt;
  std::vector<std::string> list;
  for (const boost::json::value& item : value.get_array()) {
    if (!item.is_string()) return std::nullopt;
    list.emplace_back(item.get_string());
  }
  return list;
}

}  // namespace till::sqlite
