#include "crypto/random.h"

#include <openssl/err.h>
#include <openssl/rand.h>

#include <algorithm>
#include <climits>

namespace supercluster::crypto {

base::Result<Bytes> RandomBytes(size_t size) {
  Bytes random(size);
  size_t filled = 0;
  // RAND_bytes takes an int length; larger requests are filled in pieces.
  while (filled < size) {
    size_t piece = std::min<size_t>(size - filled, INT_MAX);
    if (RAND_bytes(random.data() + filled, static_cast<int>(piece)) != 1) {
      ERR_clear_error();
      return base::Internal("the OpenSSL CSPRNG (RAND_bytes) failed to produce " +
                            std::to_string(size) + " random bytes");
    }
    filled += piece;
  }
  return random;
}

}  // namespace supercluster::crypto
