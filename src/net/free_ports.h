// Free TCP ports on 127.0.0.1, for whatever starts servers whose ports must be known before
// they start: `supercluster up` (routers are told their peers' addresses) and the tests that
// start etcd. Each port is bound while the others are chosen, so they are distinct, then
// released for its user to bind.
//
// The ports come from outside the kernel's ephemeral range (ip_local_port_range), where
// outgoing connections take their local ports: a port from inside it can be taken by any
// connection made between the choice and the bind, which busy test runs (thousands of
// connections) did. Another program could still bind a chosen port in between; callers
// that can, retry with new ports.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "base/status.h"

namespace supercluster::net {

base::Result<std::vector<uint16_t>> FreeLoopbackPorts(size_t count);

// The kernel's ephemeral port range, [first, last] (32768-60999 when it cannot be read).
std::pair<uint16_t, uint16_t> EphemeralPortRange();

}  // namespace supercluster::net
