#include "net/free_ports.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <random>

namespace supercluster::net {
namespace {

// Below this, ports are often taken by well-known services.
constexpr int kLowestCandidate = 10000;
constexpr int kTriesPerPort = 200;

// Binds a socket to 127.0.0.1:port (0: any free port) and returns it with the port bound,
// or -1.
int BindLoopback(uint16_t port, uint16_t* bound) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(port);
  socklen_t length = sizeof(address);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    ::close(fd);
    return -1;
  }
  *bound = ntohs(address.sin_port);
  return fd;
}

}  // namespace

std::pair<uint16_t, uint16_t> EphemeralPortRange() {
  std::ifstream file("/proc/sys/net/ipv4/ip_local_port_range");
  int first = 0;
  int last = 0;
  if (file >> first >> last && first > 0 && first <= last && last <= 65535) {
    return {static_cast<uint16_t>(first), static_cast<uint16_t>(last)};
  }
  return {32768, 60999};
}

base::Result<std::vector<uint16_t>> FreeLoopbackPorts(size_t count) {
  auto [ephemeral_first, ephemeral_last] = EphemeralPortRange();
  // The candidates: [kLowestCandidate, first) and (last, 65535].
  std::vector<std::pair<int, int>> ranges;
  if (ephemeral_first > kLowestCandidate) ranges.emplace_back(kLowestCandidate, ephemeral_first - 1);
  if (ephemeral_last < 65535) ranges.emplace_back(ephemeral_last + 1, 65535);
  int candidates = 0;
  for (const auto& [low, high] : ranges) candidates += high - low + 1;

  std::random_device seed;
  std::mt19937 random(seed());
  std::vector<int> sockets;
  std::vector<uint16_t> ports;
  for (size_t i = 0; i < count; ++i) {
    uint16_t port = 0;
    int fd = -1;
    for (int attempt = 0; attempt < kTriesPerPort && fd < 0 && candidates > 0; ++attempt) {
      int pick = std::uniform_int_distribution<int>(0, candidates - 1)(random);
      for (const auto& [low, high] : ranges) {
        if (pick <= high - low) {
          fd = BindLoopback(static_cast<uint16_t>(low + pick), &port);
          break;
        }
        pick -= high - low + 1;
      }
    }
    // No room outside the ephemeral range (or all of it taken): any free port will do.
    if (fd < 0) fd = BindLoopback(0, &port);
    if (fd < 0) break;
    sockets.push_back(fd);
    ports.push_back(port);
  }
  for (int fd : sockets) ::close(fd);
  if (ports.size() != count) return base::Unavailable("cannot find a free port on 127.0.0.1");
  return ports;
}

}  // namespace supercluster::net
