// A scriptable upstream for forwarding tests: plain or TLS HTTP/1.1 on 127.0.0.1:0, blocking
// sockets, one thread per connection. Each request it reads is recorded and handed to the test's
// handler, which writes whatever bytes it likes (a well-formed response, half of one, a reset…)
// and may wait on the test in between, so tests can prove streaming without sleeping.
//
// Also: a throwaway PKI (CA + server certificate) generated with OpenSSL at test time.
#pragma once

#include <openssl/ssl.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "till/http.h"

namespace till::test {

// PEM texts of a CA and of a server certificate it signed.
struct TestPki {
  std::string ca_cert_pem;
  std::string server_cert_pem;
  std::string server_key_pem;
};

// A CA ("till test CA") and a server certificate for the given DNS names and IP addresses.
TestPki make_test_pki(const std::vector<std::string>& dns_names,
                      const std::vector<std::string>& ip_addresses);

// A file under the system temp dir holding `contents`, removed when destroyed.
class TempFile {
 public:
  explicit TempFile(std::string_view contents);
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  ~TempFile();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

struct SeenRequest {
  int connection = 0;  // 1 for the first accepted connection, 2 for the next…
  int index = 0;       // 1 for the first request on that connection
  std::string method;
  std::string target;
  HttpHeaders headers;  // names lower-cased
  std::string body;

  std::optional<std::string_view> header(std::string_view name) const {
    return find_header(headers, name);
  }
};

// One accepted connection, as the handler sees it.
class FakeConnection {
 public:
  FakeConnection(int fd, SSL* ssl) : fd_(fd), ssl_(ssl) {}
  bool write(std::string_view data);
  // Closes the connection now (TLS close_notify, then FIN both ways); the handler should return.
  void close();
  // Arranges for a TCP reset instead of a FIN; the connection is reset when the handler returns.
  void reset();
  bool closing() const { return close_ || reset_; }
  bool resetting() const { return reset_; }

  // Internal: reads into `pending`; false on EOF, error or timeout.
  bool read_more(std::string& pending);

 private:
  int fd_;
  SSL* ssl_;
  bool close_ = false;
  bool reset_ = false;
};

class FakeUpstream {
 public:
  // Called on the connection's thread for each request read. The connection stays open for the
  // next request unless the handler calls close() or reset().
  using Handler = std::function<void(const SeenRequest&, FakeConnection&)>;

  // `tls`: serve HTTPS with this certificate (the PKI must outlive the upstream).
  explicit FakeUpstream(Handler handler, const TestPki* tls = nullptr);
  FakeUpstream(const FakeUpstream&) = delete;
  FakeUpstream& operator=(const FakeUpstream&) = delete;
  ~FakeUpstream();  // closes every connection and joins the threads

  uint16_t port() const { return port_; }
  std::string url(std::string_view scheme_host = "http://127.0.0.1") const {
    return std::string(scheme_host) + ":" + std::to_string(port_);
  }

  int accepts() const;
  // Connections that the peer (till) closed, seen as EOF or reset while reading a request.
  int closed_by_peer() const;
  int tls_handshake_failures() const;
  std::vector<std::string> server_names() const;  // SNI of each TLS handshake, "" if none
  std::vector<SeenRequest> requests() const;

  // Waits until `condition` (evaluated under the lock) holds; false after `timeout`.
  bool wait_until(const std::function<bool()>& condition,
                  std::chrono::milliseconds timeout = std::chrono::milliseconds(5000));
  bool wait_for_requests(size_t n,
                         std::chrono::milliseconds timeout = std::chrono::milliseconds(5000));

 private:
  void accept_loop();
  void serve(int fd, int connection_number);
  void changed();

  Handler handler_;
  SSL_CTX* ssl_ctx_ = nullptr;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::thread accept_thread_;

  mutable std::mutex mutex_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::set<int> open_fds_;
  std::vector<std::thread> threads_;
  int accepts_ = 0;
  int closed_by_peer_ = 0;
  int tls_handshake_failures_ = 0;
  std::vector<std::string> server_names_;
  std::vector<SeenRequest> requests_;
};

}  // namespace till::test
