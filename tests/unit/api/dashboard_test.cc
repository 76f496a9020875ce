#include "api/dashboard.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "unit/temp_dir.h"

namespace till {
namespace {

constexpr EmbeddedFile kFiles[] = {
    {"index.html", "<!doctype html><title>till</title>"},
    {"assets/app.js", "console.log(1)"},
    {"assets/app.css", "body{}"},
};

HttpRequest get(std::string target, std::string method = "GET") {
  HttpRequest request;
  request.method = std::move(method);
  request.target = std::move(target);
  return request;
}

TEST(DashboardTest, OwnsTheRootItsIndexAndAssetsOnly) {
  EXPECT_TRUE(Dashboard::owns("/"));
  EXPECT_TRUE(Dashboard::owns("/index.html"));
  EXPECT_TRUE(Dashboard::owns("/assets/app.js"));
  EXPECT_FALSE(Dashboard::owns("/api/v1/keys"));
  EXPECT_FALSE(Dashboard::owns("/v1/chat/completions"));
  EXPECT_FALSE(Dashboard::owns("/metrics"));
  EXPECT_FALSE(Dashboard::owns("/favicon.ico"));
}

TEST(DashboardTest, ServesIndexAtTheRootWithAStrictContentSecurityPolicy) {
  const Dashboard dashboard(kFiles);
  const HttpResponse response = dashboard.handle(get("/?from=bookmark"));
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.body, "<!doctype html><title>till</title>");
  EXPECT_EQ(response.header("content-type"), "text/html; charset=utf-8");
  const std::string csp(response.header("content-security-policy").value_or(""));
  EXPECT_NE(csp.find("default-src 'none'"), std::string::npos);
  EXPECT_NE(csp.find("script-src 'self'"), std::string::npos);
  EXPECT_NE(csp.find("connect-src 'self'"), std::string::npos);
  EXPECT_NE(csp.find("frame-ancestors 'none'"), std::string::npos);
  EXPECT_EQ(csp.find("unsafe"), std::string::npos) << csp;
  EXPECT_EQ(response.header("x-content-type-options"), "nosniff");
  EXPECT_EQ(response.header("referrer-policy"), "no-referrer");
}

TEST(DashboardTest, ServesAssetsWithTheirContentTypes) {
  const Dashboard dashboard(kFiles);
  EXPECT_EQ(dashboard.handle(get("/assets/app.js")).header("content-type"),
            "text/javascript; charset=utf-8");
  EXPECT_EQ(dashboard.handle(get("/assets/app.css")).header("content-type"),
            "text/css; charset=utf-8");
  EXPECT_EQ(dashboard.handle(get("/assets/app.css")).body, "body{}");
}

TEST(DashboardTest, AnswersNotModifiedForTheCurrentEtagOnly) {
  const Dashboard dashboard(kFiles);
  const HttpResponse first = dashboard.handle(get("/assets/app.js"));
  const std::string etag(first.header("etag").value());
  HttpRequest again = get("/assets/app.js");
  again.headers.push_back({"if-none-match", etag});
  const HttpResponse cached = dashboard.handle(again);
  EXPECT_EQ(cached.status, 304);
  EXPECT_TRUE(cached.body.empty());
  again.headers.back().value = "\"stale\"";
  EXPECT_EQ(dashboard.handle(again).status, 200);
  EXPECT_NE(dashboard.handle(get("/assets/app.css")).header("etag"), etag);
}

TEST(DashboardTest, RefusesOtherMethodsAndUnknownFiles) {
  const Dashboard dashboard(kFiles);
  EXPECT_EQ(dashboard.handle(get("/", "POST")).status, 405);
  EXPECT_EQ(dashboard.handle(get("/assets/missing.js")).status, 404);
  const HttpResponse head = dashboard.handle(get("/", "HEAD"));
  EXPECT_EQ(head.status, 200);
  EXPECT_TRUE(head.body.empty());
}

TEST(DashboardTest, ServesADirectoryReadOnEveryRequestAndNothingOutsideIt) {
  test::TempDir root;
  const std::string web = root.path() + "/web";
  std::filesystem::create_directories(web + "/assets");
  std::ofstream(root.path() + "/secret.txt") << "outside";
  std::ofstream(web + "/assets/.hidden") << "hidden";
  std::ofstream(web + "/index.html") << "v1";
  const Dashboard dashboard(web);
  EXPECT_EQ(dashboard.handle(get("/")).body, "v1");
  std::ofstream(web + "/index.html") << "v2";
  EXPECT_EQ(dashboard.handle(get("/")).body, "v2");
  for (const char* target : {"/assets/../../secret.txt", "/assets/..", "/assets/.hidden",
                             "/assets//app.js", "/assets/a\\b", "/assets/"}) {
    EXPECT_EQ(dashboard.handle(get(target)).status, 404) << target;
  }
}

TEST(DashboardTest, TheBinaryCarriesTheBuiltDashboard) {
  const Dashboard dashboard(embedded_dashboard_files());
  const HttpResponse index = dashboard.handle(get("/"));
  ASSERT_EQ(index.status, 200);
  EXPECT_NE(index.body.find("/assets/app.js"), std::string::npos);
  EXPECT_EQ(dashboard.handle(get("/assets/app.js")).status, 200);
  EXPECT_EQ(dashboard.handle(get("/assets/app.css")).status, 200);
}

}  // namespace
}  // namespace till
