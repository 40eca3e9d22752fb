// Free TCP ports on 127.0.0.1, for whatever starts servers whose ports must be known before
// they start: `supercluster up` (routers are told their peers' addresses) and the tests that
// start etcd. Each port is bound while the others are chosen, so the kernel hands out
// distinct ones, then released for its user to bind. Another program could take one in
// between; callers that can, retry with new ports.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "base/status.h"

namespace supercluster::net {

base::Result<std::vector<uint16_t>> FreeLoopbackPorts(size_t count);

}  // namespace supercluster::net
