#include "monitor/access_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <cerrno>
#include <cstring>

#include "core/time_text.h"

namespace till {
namespace {

namespace json = boost::json;

double milliseconds(std::chrono::microseconds us) { return static_cast<double>(us.count()) / 1000; }

}  // namespace

std::string access_log_line(const UsageEvent& event) {
  const auto optional_text = [](const std::string& s) {
    return s.empty() ? json::value(nullptr) : json::value(s);
  };
  json::object line{
      {"time", format_rfc3339(event.at)},
      {"key_id", optional_text(event.key_id)},
      {"provider", optional_text(event.provider)},
      {"model", optional_text(event.model)},
      {"status", event.status},
      {"error", optional_text(event.error_code)},
      {"forwarded", event.forwarded},
      {"stream", event.streaming},
      {"input_tokens", event.usage.input_tokens},
      {"cached_input_tokens", event.usage.cached_input_tokens},
      {"output_tokens", event.usage.output_tokens},
      {"reasoning_tokens", event.usage.reasoning_tokens},
      {"unmetered_tokens", event.usage.unmetered_tokens},
      {"cost_usd", event.usage.spend.to_usd_string()},
      {"latency_ms", milliseconds(event.latency)},
      {"upstream_ms", milliseconds(event.upstream_latency)},
      {"client", optional_text(event.client_address)},
  };
  return json::serialize(line);
}

Result<std::unique_ptr<AccessLog>> AccessLog::open(const std::string& path) {
  if (path == "-") return std::unique_ptr<AccessLog>(new AccessLog(stderr, false));
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) {
    return fail(
        Error::internal("cannot open the access log " + path + ": " + std::strerror(errno)));
  }
  std::FILE* file = ::fdopen(fd, "a");
  if (file == nullptr) {
    ::close(fd);
    return fail(
        Error::internal("cannot open the access log " + path + ": " + std::strerror(errno)));
  }
  return std::unique_ptr<AccessLog>(new AccessLog(file, true));
}

AccessLog::~AccessLog() {
  if (owned_) {
    std::fclose(file_);
  } else {
    std::fflush(file_);
  }
}

void AccessLog::write(const UsageEvent& event) {
  const std::string line = access_log_line(event);
  std::fwrite(line.data(), 1, line.size(), file_);
  std::fputc('\n', file_);
}

void AccessLog::flush() { std::fflush(file_); }

}  // namespace till
