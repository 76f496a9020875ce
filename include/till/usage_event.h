// Usage events (DESIGN.md "usage event"): one per request on the proxy routes, refused or
// forwarded, written off the request path to the store, the metrics, the access log and the
// alert rules. Never bodies, never secrets.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "till/clock.h"
#include "till/key.h"

namespace till {

struct UsageEvent {
  int64_t id = 0;  // assigned by the store; 0 until then
  Timestamp at;    // when the response ended (or the request was refused)
  // The key the request named. Authenticated unless error_code is "invalid_api_key", where it is
  // the id a well-formed token carried (possibly a revoked, rotated-out or guessed one), or empty.
  std::string key_id;
  std::string provider;     // from the route, or the key's for /v1; empty if unknown
  std::string model;        // as the request named it; empty if none
  int status = 0;           // the HTTP status the client got
  std::string error_code;   // till's error code when till refused or failed it; "" otherwise
  bool forwarded = false;   // it reached the provider: it counts as one of the key's requests
  bool streaming = false;   // the client asked for a stream
  int upstream_status = 0;  // the provider's status; 0 when there was no response head
  Usage usage;              // what the key was charged for it (zero unless forwarded)
  std::chrono::microseconds latency{0};             // received → answered in full
  std::chrono::microseconds upstream_latency{0};    // forwarded → provider's response head
  std::chrono::microseconds time_to_first_byte{0};  // forwarded → first body byte from provider
  std::string client_address;

  // In memory only, never stored: the request body's hash, for loop detection (0: no body).
  uint64_t body_hash = 0;
};

// Where the request path hands its events. record() must not block and must not fail: an
// implementation that cannot keep up drops events (and counts them) rather than slow requests.
//
// Thread-safety: record() is called concurrently from every I/O thread.
class EventSink {
 public:
  virtual ~EventSink() = default;
  virtual void record(UsageEvent event) = 0;
  // False when events are discarded: the request path then skips the work that only events
  // need (hashing the body, naming the key of a refused token).
  virtual bool enabled() const { return true; }
};

// A sink that discards every event (monitoring off, and tests that need none).
class NullEventSink final : public EventSink {
 public:
  void record(UsageEvent) override {}
  bool enabled() const override { return false; }
};

}  // namespace till
