#include "unit/http/fake_upstream.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <stdexcept>

namespace till::test {
namespace {

[[noreturn]] void die(const std::string& what) {
  throw std::runtime_error("fake upstream: " + what);
}

void add_extension(X509* cert, X509V3_CTX* ctx, int nid, const std::string& value) {
  X509_EXTENSION* extension = X509V3_EXT_conf_nid(nullptr, ctx, nid, value.c_str());
  if (extension == nullptr) die("cannot build certificate extension " + value);
  X509_add_ext(cert, extension, -1);
  X509_EXTENSION_free(extension);
}

// A certificate for `key`, signed by `issuer_key` (self-signed when `issuer` is null).
X509* make_certificate(EVP_PKEY* key, const char* common_name, X509* issuer, EVP_PKEY* issuer_key,
                       long serial, const std::string& subject_alt_names) {
  X509* cert = X509_new();
  X509_set_version(cert, X509_VERSION_3);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), serial);
  X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert), 24 * 3600);
  X509_set_pubkey(cert, key);
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(common_name), -1, -1, 0);
  X509_set_issuer_name(cert, issuer ? X509_get_subject_name(issuer) : name);
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer ? issuer : cert, cert, nullptr, nullptr, 0);
  bool is_ca = issuer == nullptr;
  add_extension(cert, &ctx, NID_basic_constraints,
                is_ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
  add_extension(cert, &ctx, NID_key_usage,
                is_ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature");
  add_extension(cert, &ctx, NID_subject_key_identifier, "hash");
  if (!is_ca) {
    add_extension(cert, &ctx, NID_authority_key_identifier, "keyid:always");
    add_extension(cert, &ctx, NID_ext_key_usage, "serverAuth");
    add_extension(cert, &ctx, NID_subject_alt_name, subject_alt_names);
  }
  if (X509_sign(cert, issuer_key, EVP_sha256()) == 0) die("cannot sign a certificate");
  return cert;
}

std::string pem_of(X509* cert) {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(bio, cert);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<size_t>(n));
  BIO_free(bio);
  return out;
}

std::string pem_of(EVP_PKEY* key) {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<size_t>(n));
  BIO_free(bio);
  return out;
}

std::string lower(std::string s) {
  for (char& c : s) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return s;
}

}  // namespace

TestPki make_test_pki(const std::vector<std::string>& dns_names,
                      const std::vector<std::string>& ip_addresses) {
  EVP_PKEY* ca_key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  EVP_PKEY* server_key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  if (!ca_key || !server_key) die("cannot generate keys");
  X509* ca = make_certificate(ca_key, "till test CA", nullptr, ca_key, 1, "");
  std::string names;
  for (const std::string& dns : dns_names) names += (names.empty() ? "DNS:" : ",DNS:") + dns;
  for (const std::string& ip : ip_addresses) names += (names.empty() ? "IP:" : ",IP:") + ip;
  X509* server = make_certificate(server_key, "till test server", ca, ca_key, 2, names);
  TestPki pki{pem_of(ca), pem_of(server), pem_of(server_key)};
  X509_free(server);
  X509_free(ca);
  EVP_PKEY_free(server_key);
  EVP_PKEY_free(ca_key);
  return pki;
}

TempFile::TempFile(std::string_view contents) {
  std::string templ = "/tmp/till-test-XXXXXX";
  int fd = mkstemp(templ.data());
  if (fd < 0) die("cannot create a temp file");
  path_ = templ;
  size_t written = 0;
  while (written < contents.size()) {
    ssize_t n = ::write(fd, contents.data() + written, contents.size() - written);
    if (n <= 0) break;
    written += static_cast<size_t>(n);
  }
  ::close(fd);
}

TempFile::~TempFile() { ::unlink(path_.c_str()); }

bool FakeConnection::write(std::string_view data) {
  while (!data.empty()) {
    int n = ssl_ ? SSL_write(ssl_, data.data(), static_cast<int>(data.size()))
                 : static_cast<int>(::send(fd_, data.data(), data.size(), MSG_NOSIGNAL));
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

void FakeConnection::close() {
  if (close_ || reset_) return;
  close_ = true;
  if (ssl_) SSL_shutdown(ssl_);
  ::shutdown(fd_, SHUT_RDWR);
}

void FakeConnection::reset() {
  linger option{1, 0};  // close() then sends RST
  setsockopt(fd_, SOL_SOCKET, SO_LINGER, &option, sizeof option);
  reset_ = true;
}

bool FakeConnection::read_more(std::string& pending) {
  char buffer[16384];
  int n = ssl_ ? SSL_read(ssl_, buffer, sizeof buffer)
               : static_cast<int>(::recv(fd_, buffer, sizeof buffer, 0));
  if (n <= 0) return false;
  pending.append(buffer, static_cast<size_t>(n));
  return true;
}

FakeUpstream::FakeUpstream(Handler handler, const TestPki* tls) : handler_(std::move(handler)) {
  ::signal(SIGPIPE, SIG_IGN);  // OpenSSL writes with write(2)
  if (tls) {
    ssl_ctx_ = SSL_CTX_new(TLS_server_method());
    BIO* cert_bio =
        BIO_new_mem_buf(tls->server_cert_pem.data(), static_cast<int>(tls->server_cert_pem.size()));
    X509* cert = PEM_read_bio_X509(cert_bio, nullptr, nullptr, nullptr);
    BIO* key_bio =
        BIO_new_mem_buf(tls->server_key_pem.data(), static_cast<int>(tls->server_key_pem.size()));
    EVP_PKEY* key = PEM_read_bio_PrivateKey(key_bio, nullptr, nullptr, nullptr);
    if (!cert || !key || SSL_CTX_use_certificate(ssl_ctx_, cert) != 1 ||
        SSL_CTX_use_PrivateKey(ssl_ctx_, key) != 1) {
      die("cannot load the test certificate");
    }
    X509_free(cert);
    EVP_PKEY_free(key);
    BIO_free(cert_bio);
    BIO_free(key_bio);
  }
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      ::listen(listen_fd_, 64) != 0) {
    die("cannot listen");
  }
  socklen_t length = sizeof address;
  getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&address), &length);
  port_ = ntohs(address.sin_port);
  accept_thread_ = std::thread([this] { accept_loop(); });
}

FakeUpstream::~FakeUpstream() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    ::shutdown(listen_fd_, SHUT_RDWR);
    for (int fd : open_fds_) ::shutdown(fd, SHUT_RDWR);
  }
  accept_thread_.join();
  for (std::thread& thread : threads_) thread.join();
  ::close(listen_fd_);
  if (ssl_ctx_) SSL_CTX_free(ssl_ctx_);
}

int FakeUpstream::accepts() const {
  std::lock_guard lock(mutex_);
  return accepts_;
}

int FakeUpstream::closed_by_peer() const {
  std::lock_guard lock(mutex_);
  return closed_by_peer_;
}

int FakeUpstream::tls_handshake_failures() const {
  std::lock_guard lock(mutex_);
  return tls_handshake_failures_;
}

std::vector<std::string> FakeUpstream::server_names() const {
  std::lock_guard lock(mutex_);
  return server_names_;
}

std::vector<SeenRequest> FakeUpstream::requests() const {
  std::lock_guard lock(mutex_);
  return requests_;
}

bool FakeUpstream::wait_until(const std::function<bool()>& condition,
                              std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  return cv_.wait_for(lock, timeout, condition);
}

bool FakeUpstream::wait_for_requests(size_t n, std::chrono::milliseconds timeout) {
  return wait_until([&] { return requests_.size() >= n; }, timeout);
}

void FakeUpstream::changed() { cv_.notify_all(); }

void FakeUpstream::accept_loop() {
  for (;;) {
    int fd = ::accept(listen_fd_, nullptr, nullptr);
    if (fd < 0) {
      if (errno == EINTR) continue;
      return;
    }
    std::lock_guard lock(mutex_);
    if (stopping_) {
      ::close(fd);
      return;
    }
    int number = ++accepts_;
    open_fds_.insert(fd);
    threads_.emplace_back([this, fd, number] { serve(fd, number); });
    changed();
  }
}

void FakeUpstream::serve(int fd, int connection_number) {
  timeval timeout{10, 0};  // no test waits this long: a stuck read ends the connection
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  SSL* ssl = nullptr;
  bool usable = true;
  if (ssl_ctx_) {
    ssl = SSL_new(ssl_ctx_);
    SSL_set_fd(ssl, fd);
    if (SSL_accept(ssl) != 1) {
      ERR_clear_error();
      std::lock_guard lock(mutex_);
      ++tls_handshake_failures_;
      changed();
      usable = false;
    } else {
      const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
      std::lock_guard lock(mutex_);
      server_names_.push_back(name ? name : "");
    }
  }
  FakeConnection connection(fd, ssl);
  std::string pending;
  for (int index = 1; usable; ++index) {
    size_t end;
    bool peer_closed = false;
    while ((end = pending.find("\r\n\r\n")) == std::string::npos) {
      if (!connection.read_more(pending)) {
        peer_closed = true;
        break;
      }
    }
    if (peer_closed) {
      std::lock_guard lock(mutex_);
      if (!stopping_) ++closed_by_peer_;
      changed();
      break;
    }
    SeenRequest request;
    request.connection = connection_number;
    request.index = index;
    std::string head = pending.substr(0, end);
    pending.erase(0, end + 4);
    size_t line_end = head.find("\r\n");
    std::string line = head.substr(0, line_end);
    size_t sp1 = line.find(' ');
    size_t sp2 = line.rfind(' ');
    request.method = line.substr(0, sp1);
    request.target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    size_t at = line_end;
    while (at != std::string::npos && at < head.size()) {
      size_t next = head.find("\r\n", at + 2);
      std::string field =
          head.substr(at + 2, next == std::string::npos ? std::string::npos : next - at - 2);
      size_t colon = field.find(':');
      if (colon != std::string::npos) {
        std::string value = field.substr(colon + 1);
        while (!value.empty() && value.front() == ' ') value.erase(0, 1);
        request.headers.push_back({lower(field.substr(0, colon)), value});
      }
      at = next;
    }
    size_t length = 0;
    if (auto cl = request.header("content-length")) length = std::stoul(std::string(*cl));
    while (pending.size() < length) {
      if (!connection.read_more(pending)) break;
    }
    request.body = pending.substr(0, length);
    pending.erase(0, std::min(length, pending.size()));
    {
      std::lock_guard lock(mutex_);
      requests_.push_back(request);
      changed();
    }
    handler_(request, connection);
    if (connection.closing()) break;
  }
  {
    std::lock_guard lock(mutex_);
    open_fds_.erase(fd);
  }
  if (ssl) {
    if (usable && !connection.closing()) SSL_shutdown(ssl);
    SSL_free(ssl);
  }
  ::close(fd);  // after reset(), SO_LINGER 0 makes this send a RST
}

}  // namespace till::test
