// AccessLog: one JSON line per proxied request (`till serve --access-log FILE|-`): time, key id,
// provider, model, status, error code, tokens, cost, latencies, client address. Never bodies,
// never tokens or credentials.
//
//   {"time":"2026-12-04T15:00:00.123Z","key_id":"key_…","provider":"openai","model":"gpt-4o-mini",
//    "status":200,"error":null,"forwarded":true,"stream":false,"input_tokens":12,
//    "cached_input_tokens":0,"output_tokens":3,"reasoning_tokens":0,"cost_usd":"0.0000036",
//    "latency_ms":1.52,"upstream_ms":1.21,"client":"127.0.0.1"}
//
// Thread-safety: not thread-safe; the Monitor writes from its one worker thread.
#pragma once

#include <cstdio>
#include <memory>
#include <string>

#include "till/error.h"
#include "till/usage_event.h"

namespace till {

// The access-log line of one event, without the newline.
std::string access_log_line(const UsageEvent& event);

class AccessLog {
 public:
  // "-" is stderr; otherwise the file is created (mode 0600) or appended to.
  static Result<std::unique_ptr<AccessLog>> open(const std::string& path);
  ~AccessLog();
  AccessLog(const AccessLog&) = delete;
  AccessLog& operator=(const AccessLog&) = delete;

  void write(const UsageEvent& event);
  void flush();

 private:
  AccessLog(std::FILE* file, bool owned) : file_(file), owned_(owned) {}
  std::FILE* file_;
  bool owned_;
};

}  // namespace till
