// Tests ParseEndpoint() and Endpoint::ToString(): every accepted form (host:port, [ipv6],
// tcp://, http://, https://, unix://, vsock://), that the canonical text parses back to the
// same endpoint, and that bad input is rejected with a message that says what is wrong.
#include "net/endpoint.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

namespace supercluster::net {
namespace {

using ::testing::HasSubstr;

Endpoint ParseOk(const std::string& text) {
  auto result = ParseEndpoint(text);
  EXPECT_TRUE(result.ok()) << text << ": " << result.status().ToString();
  return result.ok() ? *result : Endpoint{};
}

// The error message for text that must be rejected; also checks the code and that the
// message quotes the input, so the reader knows which setting was wrong.
std::string ParseError(const std::string& text) {
  auto result = ParseEndpoint(text);
  EXPECT_FALSE(result.ok()) << text << " was accepted as " << result->ToString();
  if (result.ok()) return "";
  EXPECT_EQ(result.status().code(), base::StatusCode::kInvalidArgument) << text;
  EXPECT_THAT(result.status().message(), HasSubstr("'" + text + "'"));
  return result.status().message();
}

TEST(EndpointTest, ParsesIpv4HostAndPort) {
  Endpoint endpoint = ParseOk("127.0.0.1:8080");
  EXPECT_EQ(endpoint.kind, Endpoint::Kind::kTcp);
  EXPECT_EQ(endpoint.host, "127.0.0.1");
  EXPECT_EQ(endpoint.port, 8080);
  EXPECT_FALSE(endpoint.tls);
}

TEST(EndpointTest, ParsesHostName) {
  Endpoint endpoint = ParseOk("localhost:9");
  EXPECT_EQ(endpoint.kind, Endpoint::Kind::kTcp);
  EXPECT_EQ(endpoint.host, "localhost");
  EXPECT_EQ(endpoint.port, 9);
}

TEST(EndpointTest, ParsesBracketedIpv6WithoutTheBrackets) {
  Endpoint endpoint = ParseOk("[::1]:80");
  EXPECT_EQ(endpoint.kind, Endpoint::Kind::kTcp);
  EXPECT_EQ(endpoint.host, "::1");
  EXPECT_EQ(endpoint.port, 80);

  Endpoint full = ParseOk("[2001:db8::7]:443");
  EXPECT_EQ(full.host, "2001:db8::7");
  EXPECT_EQ(full.port, 443);
}

TEST(EndpointTest, AcceptsTheWholePortRange) {
  EXPECT_EQ(ParseOk("127.0.0.1:0").port, 0);
  EXPECT_EQ(ParseOk("127.0.0.1:65535").port, 65535);
}

TEST(EndpointTest, TcpSchemeIsPlainTcp) {
  Endpoint endpoint = ParseOk("tcp://10.1.2.3:7000");
  EXPECT_EQ(endpoint.kind, Endpoint::Kind::kTcp);
  EXPECT_EQ(endpoint.host, "10.1.2.3");
  EXPECT_EQ(endpoint.port, 7000);
  EXPECT_FALSE(endpoint.tls);
}

TEST(EndpointTest, HttpSchemeIsPlainTcp) {
  Endpoint endpoint = ParseOk("http://example.com:8000");
  EXPECT_EQ(endpoint.kind, Endpoint::Kind::kTcp);
  EXPECT_EQ(endpoint.host, "example.com");
  EXPECT_EQ(endpoint.port, 8000);
  EXPECT_FALSE(endpoint.tls);
}

TEST(EndpointTest, HttpsSchemeSetsTls) {
  Endpoint endpoint = ParseOk("https://example.com:8443");
  EXPECT_EQ(endpoint.kind, Endpoint::Kind::kTcp);
  EXPECT_EQ(endpoint.host, "example.com");
  EXPECT_EQ(endpoint.port, 8443);
  EXPECT_TRUE(endpoint.tls);

  Endpoint ipv6 = ParseOk("https://[::1]:8443");
  EXPECT_EQ(ipv6.host, "::1");
  EXPECT_TRUE(ipv6.tls);
}

TEST(EndpointTest, ToleratesOneTrailingSlashAfterAUrl) {
  Endpoint endpoint = ParseOk("http://localhost:8080/");
  EXPECT_EQ(endpoint.host, "localhost");
  EXPECT_EQ(endpoint.port, 8080);
}

TEST(EndpointTest, ParsesUnixSocketPaths) {
  Endpoint absolute = ParseOk("unix:///run/supercluster/enclave.sock");
  EXPECT_EQ(absolute.kind, Endpoint::Kind::kUnix);
  EXPECT_EQ(absolute.path, "/run/supercluster/enclave.sock");

  Endpoint relative = ParseOk("unix://sockets/a.sock");
  EXPECT_EQ(relative.kind, Endpoint::Kind::kUnix);
  EXPECT_EQ(relative.path, "sockets/a.sock");
}

TEST(EndpointTest, AcceptsUnixPathOfExactly107Bytes) {
  std::string path = "/" + std::string(106, 'p');
  ASSERT_EQ(path.size(), 107u);
  EXPECT_EQ(ParseOk("unix://" + path).path, path);
}

TEST(EndpointTest, ParsesVsockCidAndPort) {
  Endpoint endpoint = ParseOk("vsock://3:5000");
  EXPECT_EQ(endpoint.kind, Endpoint::Kind::kVsock);
  EXPECT_EQ(endpoint.cid, 3u);
  EXPECT_EQ(endpoint.port, 5000);

  // CIDs are 32-bit: the "any" CID 0xFFFFFFFF must fit.
  EXPECT_EQ(ParseOk("vsock://4294967295:1").cid, 4294967295u);
}

TEST(EndpointTest, ToStringGivesTheCanonicalForm) {
  EXPECT_EQ(ParseOk("127.0.0.1:8080").ToString(), "tcp://127.0.0.1:8080");
  EXPECT_EQ(ParseOk("http://localhost:80").ToString(), "tcp://localhost:80");
  EXPECT_EQ(ParseOk("https://localhost:443").ToString(), "https://localhost:443");
  EXPECT_EQ(ParseOk("[::1]:80").ToString(), "tcp://[::1]:80");
  EXPECT_EQ(ParseOk("unix:///tmp/x.sock").ToString(), "unix:///tmp/x.sock");
  EXPECT_EQ(ParseOk("vsock://3:5000").ToString(), "vsock://3:5000");
}

TEST(EndpointTest, ToStringParsesBackToTheSameEndpoint) {
  for (const char* text :
       {"127.0.0.1:8080", "localhost:1", "[::1]:80", "[fe80::1]:65535", "tcp://h:0",
        "http://example.com:8000", "https://example.com:8443", "https://[::1]:443",
        "unix:///run/x.sock", "unix://relative.sock", "vsock://3:5000", "vsock://0:0"}) {
    SCOPED_TRACE(text);
    Endpoint first = ParseOk(text);
    Endpoint second = ParseOk(first.ToString());
    EXPECT_EQ(second.kind, first.kind);
    EXPECT_EQ(second.host, first.host);
    EXPECT_EQ(second.port, first.port);
    EXPECT_EQ(second.path, first.path);
    EXPECT_EQ(second.cid, first.cid);
    EXPECT_EQ(second.tls, first.tls);
    EXPECT_EQ(second.ToString(), first.ToString());
  }
}

TEST(EndpointTest, RejectsMissingPort) {
  EXPECT_THAT(ParseError("localhost"), HasSubstr("host:port"));
  EXPECT_THAT(ParseError("tcp://localhost"), HasSubstr("host:port"));
  EXPECT_THAT(ParseError("localhost:"), HasSubstr("port must be 0..65535"));
}

TEST(EndpointTest, RejectsPortOutOfRange) {
  EXPECT_THAT(ParseError("localhost:65536"), HasSubstr("port must be 0..65535"));
  EXPECT_THAT(ParseError("localhost:99999999999"), HasSubstr("port must be 0..65535"));
}

TEST(EndpointTest, RejectsPortThatIsNotADecimalNumber) {
  EXPECT_THAT(ParseError("abc:-1"), HasSubstr("port must be 0..65535"));
  EXPECT_THAT(ParseError("abc:+80"), HasSubstr("port must be 0..65535"));
  EXPECT_THAT(ParseError("abc:80x"), HasSubstr("port must be 0..65535"));
  EXPECT_THAT(ParseError("abc:http"), HasSubstr("port must be 0..65535"));
}

TEST(EndpointTest, RejectsIpv6WithoutBrackets) {
  EXPECT_THAT(ParseError("::1:80"), HasSubstr("brackets"));
  EXPECT_THAT(ParseError("2001:db8::1:443"), HasSubstr("brackets"));
}

TEST(EndpointTest, RejectsMalformedBrackets) {
  EXPECT_THAT(ParseError("[::1]80"), HasSubstr("[ipv6]:port"));
  EXPECT_THAT(ParseError("[::1"), HasSubstr("[ipv6]:port"));
  EXPECT_THAT(ParseError("[::1]"), HasSubstr("[ipv6]:port"));
}

TEST(EndpointTest, RejectsEmptyHost) {
  EXPECT_THAT(ParseError(":80"), HasSubstr("host is empty"));
  EXPECT_THAT(ParseError("tcp://:80"), HasSubstr("host is empty"));
  EXPECT_THAT(ParseError("[]:80"), HasSubstr("host is empty"));
}

TEST(EndpointTest, RejectsUnknownScheme) {
  std::string message = ParseError("ftp://example.com:21");
  EXPECT_THAT(message, HasSubstr("unknown scheme"));
  // The message lists what would have worked.
  EXPECT_THAT(message, HasSubstr("unix://"));
  EXPECT_THAT(message, HasSubstr("https://"));
}

TEST(EndpointTest, RejectsUnixPathLongerThanSockaddrHolds) {
  std::string path = "/" + std::string(107, 'p');
  ASSERT_EQ(path.size(), 108u);
  EXPECT_THAT(ParseError("unix://" + path), HasSubstr("107 bytes"));
}

TEST(EndpointTest, RejectsEmptyUnixPath) {
  EXPECT_THAT(ParseError("unix://"), HasSubstr("path is empty"));
}

TEST(EndpointTest, RejectsMalformedVsock) {
  EXPECT_THAT(ParseError("vsock://x:1"), HasSubstr("vsock://CID:PORT"));
  EXPECT_THAT(ParseError("vsock://3"), HasSubstr("vsock://CID:PORT"));
  EXPECT_THAT(ParseError("vsock://3:"), HasSubstr("vsock://CID:PORT"));
  EXPECT_THAT(ParseError("vsock://:5000"), HasSubstr("vsock://CID:PORT"));
  EXPECT_THAT(ParseError("vsock://3:65536"), HasSubstr("vsock://CID:PORT"));
  EXPECT_THAT(ParseError("vsock://4294967296:1"), HasSubstr("vsock://CID:PORT"));
}

TEST(EndpointTest, RejectsEmptyText) {
  EXPECT_THAT(ParseError(""), HasSubstr("host:port"));
}

}  // namespace
}  // namespace supercluster::net
