#include "enclave/socket_address.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>

#if __has_include(<linux/vm_sockets.h>)
#include <linux/vm_sockets.h>
#define SUPERCLUSTER_HAVE_VSOCK 1
#endif

namespace supercluster::enclave {
namespace {

bool ParseU32(std::string_view text, uint32_t* value) {
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), *value);
  return error == std::errc() && end == text.data() + text.size() && !text.empty();
}

base::Status Errno(const std::string& what) {
  return base::Unavailable(what + ": " + std::strerror(errno));
}

// Fills a sockaddr for `address`; returns its length, 0 if this build lacks the family.
socklen_t FillSockaddr(const EnclaveAddress& address, sockaddr_storage* storage) {
  std::memset(storage, 0, sizeof(*storage));
  if (address.kind == EnclaveAddress::Kind::kUnix) {
    auto* un = reinterpret_cast<sockaddr_un*>(storage);
    un->sun_family = AF_UNIX;
    std::memcpy(un->sun_path, address.path.c_str(), address.path.size() + 1);
    return sizeof(sockaddr_un);
  }
#ifdef SUPERCLUSTER_HAVE_VSOCK
  auto* vm = reinterpret_cast<sockaddr_vm*>(storage);
  vm->svm_family = AF_VSOCK;
  vm->svm_cid = address.cid;
  vm->svm_port = address.port;
  return sizeof(sockaddr_vm);
#else
  return 0;
#endif
}

}  // namespace

base::Result<EnclaveAddress> EnclaveAddress::Parse(const std::string& text) {
  EnclaveAddress address;
  if (text.rfind("unix://", 0) == 0) {
    address.kind = Kind::kUnix;
    address.path = text.substr(7);
    if (address.path.empty() || address.path.size() >= sizeof(sockaddr_un::sun_path)) {
      return base::InvalidArgument("enclave address '" + text + "': the socket path must be 1.." +
                                   std::to_string(sizeof(sockaddr_un::sun_path) - 1) + " bytes");
    }
    return address;
  }
  if (text.rfind("vsock://", 0) == 0) {
    std::string_view rest = std::string_view(text).substr(8);
    size_t colon = rest.find(':');
    if (colon == std::string_view::npos || !ParseU32(rest.substr(0, colon), &address.cid) ||
        !ParseU32(rest.substr(colon + 1), &address.port)) {
      return base::InvalidArgument("enclave address '" + text + "': expected vsock://CID:PORT");
    }
    address.kind = Kind::kVsock;
    return address;
  }
  return base::InvalidArgument("enclave address '" + text +
                               "': expected unix:///path or vsock://CID:PORT");
}

std::string EnclaveAddress::ToString() const {
  if (kind == Kind::kUnix) return "unix://" + path;
  return "vsock://" + std::to_string(cid) + ":" + std::to_string(port);
}

base::Result<int> ListenOn(const EnclaveAddress& address, int backlog) {
  sockaddr_storage storage;
  socklen_t length = FillSockaddr(address, &storage);
  if (length == 0) return base::Unavailable("this build has no AF_VSOCK support");
  int family = address.kind == EnclaveAddress::Kind::kUnix ? AF_UNIX : AF_VSOCK;
  int fd = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Errno("socket for " + address.ToString());
  if (address.kind == EnclaveAddress::Kind::kUnix) {
    struct stat info;
    if (::stat(address.path.c_str(), &info) == 0 && S_ISSOCK(info.st_mode)) {
      ::unlink(address.path.c_str());  // a socket left by an earlier run
    }
  }
  if (::bind(fd, reinterpret_cast<sockaddr*>(&storage), length) != 0 ||
      ::listen(fd, backlog) != 0) {
    base::Status status = Errno("listening on " + address.ToString());
    ::close(fd);
    return status;
  }
  if (address.kind == EnclaveAddress::Kind::kUnix) {
    ::chmod(address.path.c_str(), 0600);  // only the worker's user may talk to the enclave
  }
  return fd;
}

base::Result<int> ConnectTo(const EnclaveAddress& address) {
  sockaddr_storage storage;
  socklen_t length = FillSockaddr(address, &storage);
  if (length == 0) return base::Unavailable("this build has no AF_VSOCK support");
  int family = address.kind == EnclaveAddress::Kind::kUnix ? AF_UNIX : AF_VSOCK;
  int fd = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Errno("socket for " + address.ToString());
  if (::connect(fd, reinterpret_cast<sockaddr*>(&storage), length) != 0) {
    base::Status status = Errno("connecting to the enclave at " + address.ToString());
    ::close(fd);
    return status;
  }
  return fd;
}

}  // namespace supercluster::enclave
