// UpstreamEndpoint::parse and origin(), and the pool key built from an endpoint.
#include <gtest/gtest.h>

#include <string>

#include "http/upstream_client.h"
#include "till/forward.h"

namespace till {
namespace {

TEST(UpstreamEndpointTest, ParsesProviderBaseUrls) {
  auto openai = UpstreamEndpoint::parse("https://api.openai.com/v1");
  ASSERT_TRUE(openai.has_value()) << openai.error().message;
  EXPECT_TRUE(openai->tls);
  EXPECT_EQ(openai->host, "api.openai.com");
  EXPECT_EQ(openai->port, 443);
  EXPECT_EQ(openai->base_path, "/v1");
  EXPECT_EQ(openai->origin(), "https://api.openai.com:443");

  auto local = UpstreamEndpoint::parse("http://127.0.0.1:9000/prefix/");
  ASSERT_TRUE(local.has_value());
  EXPECT_FALSE(local->tls);
  EXPECT_EQ(local->host, "127.0.0.1");
  EXPECT_EQ(local->port, 9000);
  EXPECT_EQ(local->base_path, "/prefix");
  EXPECT_EQ(local->origin(), "http://127.0.0.1:9000");

  auto bare = UpstreamEndpoint::parse("HTTP://Example.COM");
  ASSERT_TRUE(bare.has_value());
  EXPECT_EQ(bare->host, "example.com");
  EXPECT_EQ(bare->port, 80);
  EXPECT_EQ(bare->base_path, "");

  auto root = UpstreamEndpoint::parse("https://gateway.internal:8443/");
  ASSERT_TRUE(root.has_value());
  EXPECT_EQ(root->port, 8443);
  EXPECT_EQ(root->base_path, "");
}

TEST(UpstreamEndpointTest, ParsesIpv6Literals) {
  auto v6 = UpstreamEndpoint::parse("http://[::1]:8080/api");
  ASSERT_TRUE(v6.has_value()) << v6.error().message;
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, 8080);
  EXPECT_EQ(v6->base_path, "/api");
  EXPECT_EQ(v6->origin(), "http://[::1]:8080");
  auto default_port = UpstreamEndpoint::parse("https://[2001:db8::1]");
  ASSERT_TRUE(default_port.has_value());
  EXPECT_EQ(default_port->origin(), "https://[2001:db8::1]:443");
}

TEST(UpstreamEndpointTest, RejectsWhatIsNotABaseUrl) {
  for (std::string bad :
       {"", "api.openai.com", "ftp://host", "https://", "https:///v1", "https://host:0",
        "https://host:65536", "https://host:x", "https://host:", "https://host/v1?key=1",
        "https://host/v1#frag", "https://[::1", "https://[nonsense]", "https://[::1]x",
        "https://ho st", "https://host/a b", "https://host%41"}) {
    auto endpoint = UpstreamEndpoint::parse(bad);
    ASSERT_FALSE(endpoint.has_value()) << bad;
    EXPECT_EQ(endpoint.error().code, ErrorCode::kInvalidRequest) << bad;
  }
}

TEST(UpstreamEndpointTest, NeverEchoesCredentials) {
  auto endpoint = UpstreamEndpoint::parse("https://user:hunter2@api.example.com");
  ASSERT_FALSE(endpoint.has_value());
  EXPECT_EQ(endpoint.error().message.find("hunter2"), std::string::npos);
}

TEST(UpstreamEndpointTest, PoolKeyIsTheOrigin) {
  for (std::string url : {"https://api.openai.com/v1", "http://127.0.0.1:9/x", "http://[::1]:1"}) {
    auto endpoint = UpstreamEndpoint::parse(url);
    ASSERT_TRUE(endpoint.has_value()) << url;
    std::string key;
    append_origin(key, *endpoint);
    EXPECT_EQ(key, endpoint->origin());
  }
}

}  // namespace
}  // namespace till
