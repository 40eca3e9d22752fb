// The attestation-policy flags shared by the commands that verify enclaves (`attest
// verify`, `seal`, `enclave verify-receipt`): which root to trust, which measurements to
// accept, whether debug enclaves pass, the expected nonce, the time to check at, and the
// maximum age of a document.
#pragma once

#include <string>
#include <vector>

#include "attest/verifier.h"
#include "base/flags.h"

namespace supercluster::cli {

struct PolicyFlags {
  std::string root_path;
  std::vector<std::string> pcrs;  // "N=HEX", together one allowed measurement set
  bool allow_debug = false;
  std::string nonce_hex;
  int64_t at_seconds = 0;
  int64_t max_age_seconds = 0;

  void Register(base::FlagSet& flags);
  // kInvalidArgument naming the flag for a bad value (bad usage); another code (kNotFound,
  // kOutOfRange for one over 64KiB, kDataLoss, ...) for a root file that cannot be read or
  // parsed.
  base::Result<attest::AttestationPolicy> Build() const;
};

}  // namespace supercluster::cli
