#include "net/free_ports.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <set>

namespace supercluster::net {
namespace {

TEST(FreeLoopbackPortsTest, HandsOutDistinctPortsThatCanBeBound) {
  auto ports = FreeLoopbackPorts(20);
  ASSERT_TRUE(ports.ok()) << ports.status().ToString();
  ASSERT_EQ(ports->size(), 20u);
  EXPECT_EQ(std::set<uint16_t>(ports->begin(), ports->end()).size(), 20u);
  for (uint16_t port : *ports) {
    EXPECT_NE(port, 0);
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(port);
    EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0) << port;
    ::close(fd);
  }
  EXPECT_TRUE(FreeLoopbackPorts(0)->empty());
}

// Outgoing connections take their local ports from the ephemeral range, so a port chosen
// there could be gone before its user binds it.
TEST(FreeLoopbackPortsTest, ChoosesPortsOutsideTheEphemeralRange) {
  auto [first, last] = EphemeralPortRange();
  ASSERT_LE(first, last);
  auto ports = FreeLoopbackPorts(50);
  ASSERT_TRUE(ports.ok()) << ports.status().ToString();
  for (uint16_t port : *ports) {
    EXPECT_TRUE(port < first || port > last) << port << " is in " << first << "-" << last;
  }
}

}  // namespace
}  // namespace supercluster::net
