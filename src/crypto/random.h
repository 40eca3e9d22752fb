// Randomness from the operating system's CSPRNG (OpenSSL's RAND_bytes, seeded by getrandom).
#pragma once

#include "base/status.h"
#include "crypto/bytes.h"

namespace supercluster::crypto {

// `size` random bytes; fails (kInternal) only if the CSPRNG is unavailable.
base::Result<Bytes> RandomBytes(size_t size);

}  // namespace supercluster::crypto
