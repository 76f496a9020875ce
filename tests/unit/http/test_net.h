// Test helpers for the HTTP transport: a blocking raw HTTP/1.1 client whose reads all have
// deadlines, a one-shot latch, and eventually() for polling a condition with a deadline.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

namespace till::test {

using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

struct RawResponse {
  int status = 0;
  std::string head;  // status line and headers, lower-cased
  std::string body;  // de-chunked

  bool has_header(std::string_view line) const {
    return head.find("\r\n" + std::string(line) + "\r\n") != std::string::npos;
  }
  bool has_header_named(std::string_view name) const {
    return head.find("\r\n" + std::string(name) + ":") != std::string::npos;
  }
};

// A blocking POSIX client socket (IPv4) whose reads all have deadlines.
class RawConnection {
 public:
  explicit RawConnection(const std::string& address, int receive_buffer = 0) {
    size_t colon = address.rfind(':');
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(static_cast<uint16_t>(std::stoi(address.substr(colon + 1))));
    inet_pton(AF_INET, address.substr(0, colon).c_str(), &sa.sin_addr);
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (receive_buffer > 0) {
      setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof receive_buffer);
    }
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
      connect_errno_ = errno;
      ::close(fd_);
      fd_ = -1;
    }
  }
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;
  ~RawConnection() {
    if (fd_ >= 0) ::close(fd_);
  }

  bool connected() const { return fd_ >= 0; }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  int connect_errno() const { return connect_errno_; }

  bool send(std::string_view data) {
    while (!data.empty()) {
      ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  // Reads a response head (status line and headers).
  std::optional<RawResponse> read_head(std::chrono::milliseconds timeout = 3000ms) {
    auto deadline = SteadyClock::now() + timeout;
    size_t end;
    while ((end = pending_.find("\r\n\r\n")) == std::string::npos) {
      if (!fill(deadline)) return std::nullopt;
    }
    RawResponse response;
    response.head = pending_.substr(0, end + 2);
    for (char& c : response.head) {
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    pending_.erase(0, end + 4);
    if (response.head.size() < 12) return std::nullopt;
    response.status = std::stoi(response.head.substr(9, 3));
    return response;
  }

  // Reads exactly `n` body bytes.
  std::optional<std::string> read_exact(size_t n, std::chrono::milliseconds timeout = 3000ms) {
    auto deadline = SteadyClock::now() + timeout;
    while (pending_.size() < n) {
      if (!fill(deadline)) return std::nullopt;
    }
    std::string out = pending_.substr(0, n);
    pending_.erase(0, n);
    return out;
  }

  // Reads the next chunk of a chunked body: its data, or "" for the last chunk (whose trailer
  // section is consumed too).
  std::optional<std::string> read_chunk(std::chrono::milliseconds timeout = 3000ms) {
    auto deadline = SteadyClock::now() + timeout;
    size_t eol;
    while ((eol = pending_.find("\r\n")) == std::string::npos) {
      if (!fill(deadline)) return std::nullopt;
    }
    size_t size = std::stoul(pending_.substr(0, eol), nullptr, 16);
    pending_.erase(0, eol + 2);
    if (size == 0) {
      while (pending_.find("\r\n") != 0) {  // trailers end with an empty line
        size_t line_end;
        while ((line_end = pending_.find("\r\n")) == std::string::npos) {
          if (!fill(deadline)) return std::nullopt;
        }
        if (line_end == 0) break;
        pending_.erase(0, line_end + 2);
      }
      while (pending_.size() < 2) {
        if (!fill(deadline)) return std::nullopt;
      }
      pending_.erase(0, 2);
      return std::string();
    }
    while (pending_.size() < size + 2) {
      if (!fill(deadline)) return std::nullopt;
    }
    std::string data = pending_.substr(0, size);
    pending_.erase(0, size + 2);
    return data;
  }

  // Reads one response: a 1xx; a head plus a Content-Length or chunked body; or, with neither
  // and `connection: close`, a body up to the end of the connection. No body for HEAD.
  std::optional<RawResponse> read_response(bool head_request = false,
                                           std::chrono::milliseconds timeout = 3000ms) {
    auto deadline = SteadyClock::now() + timeout;
    auto response = read_head(timeout);
    if (!response) return std::nullopt;
    auto left = [&] {
      return std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now());
    };
    if (head_request || response->status < 200 || response->status == 204 ||
        response->status == 304) {
      return response;
    }
    if (response->has_header("transfer-encoding: chunked")) {
      for (;;) {
        auto chunk = read_chunk(left());
        if (!chunk) return std::nullopt;
        if (chunk->empty()) return response;
        response->body += *chunk;
      }
    }
    if (size_t at = response->head.find("\r\ncontent-length: "); at != std::string::npos) {
      auto body = read_exact(std::stoul(response->head.substr(at + 18)), left());
      if (!body) return std::nullopt;
      response->body = std::move(*body);
      return response;
    }
    if (response->has_header("connection: close")) {
      while (fill(deadline)) {
      }
      if (!eof_) return std::nullopt;
      response->body = std::move(pending_);
      pending_.clear();
    }
    return response;
  }

  // True if the server closes the connection within `timeout` without sending anything more.
  bool closed_without_data(std::chrono::milliseconds timeout = 3000ms) {
    auto deadline = SteadyClock::now() + timeout;
    size_t before = pending_.size();
    while (fill(deadline)) {
    }
    return eof_ && pending_.size() == before;
  }

  // True if the server closes the connection within `timeout` (what it sent first is discarded).
  bool closed(std::chrono::milliseconds timeout = 3000ms) {
    auto deadline = SteadyClock::now() + timeout;
    while (fill(deadline)) {
    }
    pending_.clear();
    return eof_;
  }

 private:
  // Appends what arrives before `deadline`; false on EOF, error or deadline.
  bool fill(SteadyClock::time_point deadline) {
    auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
    char chunk[16384];
    ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n <= 0) {
      eof_ = true;
      return false;
    }
    pending_.append(chunk, static_cast<size_t>(n));
    return true;
  }

  int fd_ = -1;
  int connect_errno_ = 0;
  bool eof_ = false;
  std::string pending_;
};

// Opens once; waiters wait with a deadline (so a failing test cannot hang the suite).
class Latch {
 public:
  void open() {
    {
      std::lock_guard lock(mutex_);
      open_ = true;
    }
    cv_.notify_all();
  }
  bool wait(std::chrono::milliseconds timeout = 5000ms) {
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, timeout, [this] { return open_; });
  }
  bool is_open() {
    std::lock_guard lock(mutex_);
    return open_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  bool open_ = false;
};

// Polls `condition` until it holds or `timeout` passes.
template <typename Condition>
bool eventually(Condition condition, std::chrono::milliseconds timeout = 3000ms) {
  auto deadline = SteadyClock::now() + timeout;
  while (SteadyClock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(2ms);
  }
  return condition();
}

}  // namespace till::test
