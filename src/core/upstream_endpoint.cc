// UpstreamEndpoint::parse and origin (include/till/forward.h). Pure string handling: it lives in
// core rather than http because the proxy and provider layers parse base URLs without linking the
// transport.
#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <string>
#include <string_view>

#include "till/forward.h"

namespace till {
namespace {

constexpr std::string_view kExpected = "expected http(s)://HOST[:PORT][/PATH]";

Error bad_url(std::string_view url, std::string_view why) {
  return Error::invalid("upstream", "the upstream URL \"" + std::string(url) +
                                        "\" is not usable: " + std::string(why) + " (" +
                                        std::string(kExpected) + ")");
}

bool starts_with_ci(std::string_view text, std::string_view prefix) {
  return text.size() >= prefix.size() && header_name_equals(text.substr(0, prefix.size()), prefix);
}

// A DNS name or IPv4 literal: letters, digits, '-', '.', '_' (some internal names use it).
bool is_reg_name(std::string_view host) {
  return !host.empty() && std::all_of(host.begin(), host.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_';
  });
}

bool is_ipv6_literal(const std::string& host) {
  in6_addr address{};
  return inet_pton(AF_INET6, host.c_str(), &address) == 1;
}

// Visible ASCII except the delimiters that would end the path: no query, fragment or spaces.
bool is_path(std::string_view path) {
  return std::all_of(path.begin(), path.end(), [](char ch) {
    auto c = static_cast<unsigned char>(ch);
    return c > 0x20 && c < 0x7f && c != '?' && c != '#';
  });
}

}  // namespace

Result<UpstreamEndpoint> UpstreamEndpoint::parse(std::string_view url) {
  if (url.find('@') != std::string_view::npos) {
    // What precedes '@' would be credentials: never echo the URL.
    return fail(Error::invalid("upstream", "the upstream URL must not contain user credentials (" +
                                               std::string(kExpected) + ")"));
  }
  UpstreamEndpoint endpoint;
  std::string_view rest;
  if (starts_with_ci(url, "https://")) {
    endpoint.tls = true;
    endpoint.port = 443;
    rest = url.substr(8);
  } else if (starts_with_ci(url, "http://")) {
    endpoint.tls = false;
    endpoint.port = 80;
    rest = url.substr(7);
  } else {
    return fail(bad_url(url, "the scheme must be http or https"));
  }
  if (rest.find_first_of("?#") != std::string_view::npos) {
    return fail(bad_url(url, "it must not have a query or fragment"));
  }
  size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? std::string_view() : rest.substr(slash);

  std::string_view port;
  bool has_port = false;
  if (authority.starts_with('[')) {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return fail(bad_url(url, "unterminated IPv6 address"));
    endpoint.host = std::string(authority.substr(1, close - 1));
    if (!is_ipv6_literal(endpoint.host)) return fail(bad_url(url, "invalid IPv6 address"));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return fail(bad_url(url, "unexpected text after the IPv6 address"));
      port = after.substr(1);
      has_port = true;
    }
  } else {
    size_t colon = authority.find(':');
    endpoint.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) {
      port = authority.substr(colon + 1);
      has_port = true;
    }
    if (endpoint.host.empty()) return fail(bad_url(url, "no host"));
    if (!is_reg_name(endpoint.host)) {
      return fail(bad_url(url, "the host has characters not allowed in a host name"));
    }
    for (char& c : endpoint.host) {
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }
  }
  if (has_port) {
    unsigned value = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (port.empty() || port.size() > 5 || ec != std::errc() || end != port.data() + port.size() ||
        value == 0 || value > 65535) {
      return fail(bad_url(url, "the port is not a number between 1 and 65535"));
    }
    endpoint.port = static_cast<uint16_t>(value);
  }
  while (path.ends_with('/')) path.remove_suffix(1);
  if (!is_path(path)) return fail(bad_url(url, "the path has spaces or control characters"));
  endpoint.base_path = std::string(path);
  return endpoint;
}

std::string UpstreamEndpoint::origin() const {
  std::string out;
  out.reserve(host.size() + 16);
  out.append(tls ? "https://" : "http://");
  bool v6 = host.find(':') != std::string::npos;
  if (v6) out.push_back('[');
  out.append(host);
  if (v6) out.push_back(']');
  out.push_back(':');
  out.append(std::to_string(port));
  return out;
}

}  // namespace till
