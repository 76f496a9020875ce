#include "proxy/proxy_route.h"

#include <gtest/gtest.h>

namespace till {
namespace {

TEST(ProxyRoute, ProviderRoutes) {
  auto r = parse_proxy_route("/proxy/openai/v1/chat/completions?x=1");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->provider, "openai");
  EXPECT_EQ(r->upstream_path, "/v1/chat/completions");
  EXPECT_EQ(r->query, "x=1");
  auto gemini = parse_proxy_route("/proxy/google/v1beta/models/gemini-2.5-flash:generateContent");
  ASSERT_TRUE(gemini);
  EXPECT_EQ(gemini->upstream_path, "/v1beta/models/gemini-2.5-flash:generateContent");
  auto encoded = parse_proxy_route("/proxy/openai/v1/files/file%20x");
  ASSERT_TRUE(encoded);
  EXPECT_EQ(encoded->upstream_path, "/v1/files/file%20x");
}

TEST(ProxyRoute, OpenAiCompatibleRouteUsesTheKeysProvider) {
  auto r = parse_proxy_route("/v1/chat/completions");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->provider, "");
  EXPECT_EQ(r->upstream_path, "/v1/chat/completions");
}

TEST(ProxyRoute, UnknownProviderOrMissingPathIsNotFound) {
  for (const char* target : {"/proxy/nosuch/v1/x", "/proxy/openai", "/proxy/openai/", "/v1/",
                             "/proxy/"}) {
    auto r = parse_proxy_route(target);
    ASSERT_FALSE(r) << target;
    EXPECT_EQ(r.error().code, ErrorCode::kNotFound) << target;
  }
}

TEST(ProxyRoute, PathTricksAreRefused) {
  for (const char* target : {
           "/proxy/openai/../../api/v1/keys", "/proxy/openai/v1/../../api/v1/keys",
           "/proxy/openai/%2e%2e/%2e%2e/api/v1/keys", "/proxy/openai/%2E%2E/x",
           "/proxy/openai/.%2e/x", "/proxy/openai/./v1/x", "/proxy/openai//v1/x",
           "/proxy/openai/v1//x", "/proxy/openai/v1%2f..%2fx", "/proxy/openai/v1%2F..",
           "/proxy/openai/v1/x%5c..", "/proxy/openai/v1\\..\\x", "/proxy/openai/v1/%252e%252e",
           "/proxy/openai/v1/%00", "/proxy/openai/v1/%zz", "/proxy/openai/v1/%2",
           "/v1/../api/v1/keys", "/v1/%2e%2e/api", "/proxy/../api/v1/keys",
           "/proxy/openai/v1/..", "/proxy/openai/v1/x\r\n"}) {
    auto r = parse_proxy_route(target);
    ASSERT_FALSE(r) << target;
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidRequest) << target;
  }
}

TEST(ProxyRoute, IsProxyPath) {
  EXPECT_TRUE(is_proxy_path("/proxy/openai/v1/x"));
  EXPECT_TRUE(is_proxy_path("/v1/chat/completions"));
  EXPECT_FALSE(is_proxy_path("/api/v1/keys"));
  EXPECT_FALSE(is_proxy_path("/v10/x"));
  EXPECT_FALSE(is_proxy_path("/healthz"));
}

}  // namespace
}  // namespace till
