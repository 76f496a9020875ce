// http_call: a blocking HTTP/1.1 client on Asio with Beast's response parser.
//
// Each call owns an io_context, starts one asynchronous operation at a time and runs the context
// until that operation completes or the overall deadline passes; on the deadline it closes the
// socket, which completes the operation with an error. No threads and no timers are involved.
#include "http/client.h"

#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <charconv>
#include <string>
#include <utility>
#include <vector>

namespace till {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;
using SteadyClock = std::chrono::steady_clock;
using ErrorCodeT = boost::system::error_code;

constexpr std::uint32_t kMaxResponseHeaderBytes = 1024 * 1024;

struct BaseUrl {
  bool tls = false;  // https://
  std::string host;  // without brackets: "127.0.0.1", "::1", "localhost"
  std::string port;  // "4100"
  unsigned short port_number = 80;
  std::string host_header;  // as written in the URL: "[::1]:4100"
  std::string prefix;       // path before the target, without a trailing '/': "" or "/till"
  std::string display;      // normalised, for messages: "http://127.0.0.1:4100"
};

Error bad_url(std::string_view url, std::string_view why) {
  return Error::invalid("TILL_URL", "TILL_URL \"" + std::string(url) + "\" is not usable: " +
                                        std::string(why) + " (expected http://HOST:PORT)");
}

bool starts_with_ci(std::string_view text, std::string_view prefix) {
  return text.size() >= prefix.size() && header_name_equals(text.substr(0, prefix.size()), prefix);
}

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

Result<BaseUrl> parse_base_url(std::string_view url) {
  if (url.find('@') != std::string_view::npos) {
    // The part before '@' would be credentials: do not echo the URL.
    return fail(Error::invalid("TILL_URL", "TILL_URL must not contain user credentials"));
  }
  const bool tls = starts_with_ci(url, "https://");
  if (!tls && !starts_with_ci(url, "http://")) {
    return fail(bad_url(url, "it must start with http:// or https://"));
  }
  std::string_view rest = url.substr(tls ? 8 : 7);
  size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? std::string_view() : rest.substr(slash);
  while (path.ends_with('/')) path.remove_suffix(1);
  if (path.find_first_of("?# ") != std::string_view::npos) {
    return fail(bad_url(url, "it must not have a query or fragment"));
  }

  BaseUrl out;
  out.tls = tls;
  std::string_view port;
  if (authority.starts_with('[')) {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return fail(bad_url(url, "unterminated IPv6 address"));
    out.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return fail(bad_url(url, "unexpected text after the IPv6 address"));
      port = after.substr(1);
    }
  } else {
    size_t colon = authority.find(':');
    out.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port = authority.substr(colon + 1);
  }
  if (out.host.empty()) return fail(bad_url(url, "no host"));
  if (out.host.find_first_of(" \t\r\n") != std::string::npos) {
    return fail(bad_url(url, "the host contains whitespace"));
  }
  if (!port.empty() || authority.ends_with(':')) {
    unsigned value = 0;
    if (!all_digits(port) || port.size() > 5 ||
        std::from_chars(port.data(), port.data() + port.size(), value).ec != std::errc() ||
        value == 0 || value > 65535) {
      return fail(bad_url(url, "the port is not a number between 1 and 65535"));
    }
    out.port = std::string(port);
    out.port_number = static_cast<unsigned short>(value);
  } else {
    out.port = tls ? "443" : "80";
    out.port_number = tls ? 443 : 80;
  }
  out.host_header = std::string(authority);
  out.prefix = std::string(path);
  out.display = (tls ? "https://" : "http://") + out.host_header + out.prefix;
  return out;
}

bool is_token(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char ch) {
    auto c = static_cast<unsigned char>(ch);
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
    return std::string_view("!#$%&'*+-.^_`|~").find(ch) != std::string_view::npos;
  });
}

bool is_field_value(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char ch) {
    auto c = static_cast<unsigned char>(ch);
    return c == '\t' || (c >= 0x20 && c != 0x7f);
  });
}

bool is_target(std::string_view s) {
  return s.starts_with('/') && std::all_of(s.begin(), s.end(), [](char ch) {
           auto c = static_cast<unsigned char>(ch);
           return c > 0x20 && c != 0x7f;
         });
}

bool is_framing_header(std::string_view name) {
  return header_name_equals(name, "content-length") ||
         header_name_equals(name, "transfer-encoding") || header_name_equals(name, "connection");
}

// A short, lower-case reason for a transport error; never includes anything the caller sent.
std::string describe(const ErrorCodeT& ec) {
  if (ec == asio::error::connection_refused) return "connection refused";
  if (ec == asio::error::connection_reset) return "connection reset by the server";
  if (ec == asio::error::eof || ec == http::error::end_of_stream ||
      ec == http::error::partial_message) {
    return "the server closed the connection before a complete response";
  }
  if (ec == asio::error::host_not_found || ec == asio::error::host_not_found_try_again) {
    return "unknown host";
  }
  if (ec == asio::error::network_unreachable || ec == asio::error::host_unreachable) {
    return "network unreachable";
  }
  if (ec.category() == http::make_error_code(http::error::bad_version).category()) {
    return "malformed HTTP response (" + ec.message() + ")";
  }
  std::string text = ec.message();
  if (!text.empty() && text[0] >= 'A' && text[0] <= 'Z') text[0] = static_cast<char>(text[0] + 32);
  return text;
}

Error unreachable(const BaseUrl& url, std::string why, bool retryable) {
  return Error{ErrorCode::kUnavailable,
               ErrorSource::kUpstream,
               retryable,
               "cannot reach till at " + url.display + ": " + why,
               {}};
}

std::string describe_timeout(std::chrono::milliseconds timeout) {
  if (timeout.count() % 1000 == 0) return std::to_string(timeout.count() / 1000) + " s";
  return std::to_string(timeout.count()) + " ms";
}

// Runs `ioc` until its one pending operation completes (true) or `deadline` passes (false). On the
// deadline the socket is closed and the operation's handler runs with an error before returning.
bool run_until(asio::io_context& ioc, tcp::socket& socket, SteadyClock::time_point deadline) {
  ioc.restart();
  ioc.run_until(deadline);
  if (ioc.stopped()) return true;
  ErrorCodeT ignored;
  socket.close(ignored);
  ioc.restart();
  ioc.run();
  return false;
}

}  // namespace

Result<HttpResponse> http_call(std::string_view base_url, std::string_view method,
                               std::string_view target, const HttpHeaders& headers,
                               std::string_view body, std::chrono::milliseconds timeout) {
  Result<BaseUrl> url = parse_base_url(base_url);
  if (!url) return fail(std::move(url.error()));
  if (!is_token(method)) return fail(Error::invalid("method", "the HTTP method is not a token"));
  if (!is_target(target)) {
    return fail(Error::invalid("target",
                               "the request target must start with '/' and contain "
                               "no spaces or control characters"));
  }

  std::string request;
  request.reserve(256 + body.size());
  request.append(method).append(" ").append(url->prefix).append(target).append(" HTTP/1.1\r\n");
  bool has_host = false;
  for (const HttpHeader& h : headers) {
    if (!is_token(h.name)) return fail(Error::invalid("headers", "a header name is not a token"));
    if (!is_field_value(h.value)) {
      // Name the header, never its value: it may be a secret.
      return fail(Error::invalid("headers", "the value of header \"" + h.name +
                                                "\" contains a line break or control character"));
    }
    if (is_framing_header(h.name)) continue;
    if (header_name_equals(h.name, "host")) has_host = true;
    request.append(h.name).append(": ").append(h.value).append("\r\n");
  }
  if (!has_host) request.append("Host: ").append(url->host_header).append("\r\n");
  bool sends_length = !body.empty() || method == "POST" || method == "PUT" || method == "PATCH";
  if (sends_length)
    request.append("Content-Length: ").append(std::to_string(body.size())).append("\r\n");
  request.append("Connection: close\r\n\r\n");
  request.append(body);

  try {
    asio::io_context ioc(1);
    SteadyClock::time_point deadline = SteadyClock::now() + timeout;

    std::vector<tcp::endpoint> endpoints;
    ErrorCodeT ec;
    asio::ip::address literal = asio::ip::make_address(url->host, ec);
    if (!ec) {
      endpoints.emplace_back(literal, url->port_number);
    } else {
      // Blocking getaddrinfo: not bounded by `timeout`, but local names resolve at once.
      tcp::resolver resolver(ioc);
      auto results = resolver.resolve(url->host, url->port, ec);
      if (ec || results.empty()) {
        return fail(unreachable(*url, ec ? describe(ec) : "unknown host", true));
      }
      for (const auto& entry : results) endpoints.push_back(entry.endpoint());
    }

    tcp::socket socket(ioc);
    ErrorCodeT result;
    asio::async_connect(socket, endpoints,
                        [&result](const ErrorCodeT& e, const tcp::endpoint&) { result = e; });
    if (!run_until(ioc, socket, deadline)) {
      return fail(unreachable(*url, "no connection within " + describe_timeout(timeout), true));
    }
    if (result) return fail(unreachable(*url, describe(result), true));
    socket.set_option(tcp::no_delay(true), ec);

    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.header_limit(kMaxResponseHeaderBytes);
    parser.body_limit(boost::none);
    if (method == "HEAD") parser.skip(true);
    // Sends the request and reads the response over `stream` (the socket, or TLS over it).
    auto exchange = [&](auto& stream) -> Result<void> {
      asio::async_write(stream, asio::buffer(request),
                        [&result](const ErrorCodeT& e, size_t) { result = e; });
      if (!run_until(ioc, socket, deadline)) {
        return fail(unreachable(*url, "no response within " + describe_timeout(timeout), false));
      }
      if (result) return fail(unreachable(*url, describe(result), false));
      http::async_read(stream, buffer, parser,
                       [&result](const ErrorCodeT& e, size_t) { result = e; });
      if (!run_until(ioc, socket, deadline)) {
        return fail(unreachable(*url, "no response within " + describe_timeout(timeout), false));
      }
      if (result) return fail(unreachable(*url, describe(result), false));
      return {};
    };
    if (url->tls) {
      // Certificates checked against the system's trusted CAs and the host name.
      asio::ssl::context tls(asio::ssl::context::tls_client);
      tls.set_default_verify_paths();
      tls.set_verify_mode(asio::ssl::verify_peer);
      asio::ssl::stream<tcp::socket&> stream(socket, tls);
      stream.set_verify_callback(asio::ssl::host_name_verification(url->host));
      if (!SSL_set_tlsext_host_name(stream.native_handle(), url->host.c_str())) {
        return fail(unreachable(*url, "cannot set the TLS server name", true));
      }
      stream.async_handshake(asio::ssl::stream_base::client,
                             [&result](const ErrorCodeT& e) { result = e; });
      if (!run_until(ioc, socket, deadline)) {
        return fail(
            unreachable(*url, "no TLS handshake within " + describe_timeout(timeout), true));
      }
      if (result) return fail(unreachable(*url, "TLS handshake failed: " + describe(result), true));
      if (auto exchanged = exchange(stream); !exchanged) return fail(exchanged.error());
    } else if (auto exchanged = exchange(socket); !exchanged) {
      return fail(exchanged.error());
    }

    auto& message = parser.get();
    HttpResponse response;
    response.status = static_cast<int>(message.result_int());
    for (const auto& field : message) {
      HttpHeader& h = response.headers.emplace_back();
      h.name.assign(field.name_string().data(), field.name_string().size());
      for (char& c : h.name) {
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
      }
      h.value.assign(field.value().data(), field.value().size());
    }
    response.body = std::move(message.body());
    return response;
  } catch (const std::exception& e) {
    return fail(Error::internal(std::string("HTTP client failure: ") + e.what()));
  }
}

}  // namespace till
