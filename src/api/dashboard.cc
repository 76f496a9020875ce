#include "api/dashboard.h"

#include <fstream>
#include <optional>
#include <sstream>

#include "api/route_helpers.h"
#include "core/crypto.h"
#include "core/url.h"
#include "proxy/error_response.h"

namespace till {
namespace {

// Everything the app loads comes from this origin; nothing inline, no plugins, no framing. Styles
// set through the CSSOM from script (uPlot sizes its canvas that way) are not inline styles.
constexpr std::string_view kContentSecurityPolicy =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

std::string_view content_type(std::string_view path) {
  auto ends_with = [path](std::string_view suffix) { return path.ends_with(suffix); };
  if (ends_with(".html")) return "text/html; charset=utf-8";
  if (ends_with(".js")) return "text/javascript; charset=utf-8";
  if (ends_with(".css")) return "text/css; charset=utf-8";
  if (ends_with(".svg")) return "image/svg+xml";
  if (ends_with(".png")) return "image/png";
  if (ends_with(".json")) return "application/json";
  return "application/octet-stream";
}

std::string etag_of(std::string_view content) {
  const auto digest = crypto::sha256(content);
  return "\"" + crypto::hex_encode(std::span(digest.data(), 12)) + "\"";
}

// The file a request path names, relative to the dashboard's folder: "/" is index.html. Only
// plain names are accepted ("assets/app.js"): no "..", no hidden files, no backslashes, so a
// --dashboard-dir request cannot leave its folder.
std::optional<std::string> relative_file(std::string_view path) {
  if (path == "/" || path == "/index.html") return "index.html";
  if (!path.starts_with("/assets/")) return std::nullopt;
  const std::string_view name = path.substr(1);
  size_t start = 0;
  while (start <= name.size()) {
    const size_t end = std::min(name.find('/', start), name.size());
    const std::string_view segment = name.substr(start, end - start);
    if (segment.empty() || segment.front() == '.') return std::nullopt;
    for (char c : segment) {
      const bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                         (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
      if (!plain) return std::nullopt;
    }
    start = end + 1;
  }
  return std::string(name);
}

std::optional<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream bytes;
  bytes << in.rdbuf();
  return std::move(bytes).str();
}

}  // namespace

Dashboard::Dashboard(std::span<const EmbeddedFile> files) {
  for (const EmbeddedFile& file : files) {
    files_.emplace(std::string(file.path), File{file.content, etag_of(file.content)});
  }
}

Dashboard::Dashboard(std::string directory) : directory_(std::move(directory)) {}

bool Dashboard::owns(std::string_view path) {
  return path == "/" || path == "/index.html" || path.starts_with("/assets/");
}

HttpResponse Dashboard::handle(const HttpRequest& request) const {
  const RequestTarget target = split_target(request.target);
  if (request.method != "GET" && request.method != "HEAD") {
    return error_response(method_not_allowed(request.method, target.path));
  }
  const std::optional<std::string> name = relative_file(target.path);
  if (!name) return error_response(no_such_endpoint(target.path));
  std::optional<std::string> from_directory;
  std::string_view content;
  std::string etag;
  if (directory_.empty()) {
    const auto found = files_.find(*name);
    if (found == files_.end()) return error_response(no_such_endpoint(target.path));
    content = found->second.content;
    etag = found->second.etag;
  } else {
    from_directory = read_file(directory_ + "/" + *name);
    if (!from_directory) return error_response(no_such_endpoint(target.path));
    content = *from_directory;
    etag = etag_of(content);
  }

  HttpResponse response;
  response.headers = {
      {"content-security-policy", std::string(kContentSecurityPolicy)},
      {"x-content-type-options", "nosniff"},
      {"referrer-policy", "no-referrer"},
      {"x-frame-options", "DENY"},
      {"cross-origin-opener-policy", "same-origin"},
      // Asset names carry no content hash: revalidate every time (a 304 costs one round trip).
      {"cache-control", "no-cache"},
      {"etag", etag},
  };
  if (request.header("if-none-match") == etag) {
    response.status = 304;
    return response;
  }
  response.headers.push_back({"content-type", std::string(content_type(*name))});
  if (request.method == "GET") response.body = std::string(content);
  return response;
}

}  // namespace till
