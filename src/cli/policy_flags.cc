#include "cli/policy_flags.h"

#include <charconv>
#include <chrono>
#include <string>

#include "cli/cli_files.h"
#include "crypto/bytes.h"

namespace supercluster::cli {
namespace {

// The last second the system clock can hold (its nanoseconds end in April 2262): the
// verifier takes --at as a clock time and --max-age in milliseconds, and past it --at wraps
// (--at 9223372036854775807 was checked as "unix time -1", and --max-age
// 18446744073709552 became 384 ms). A max-age beyond it means any age anyway.
constexpr int64_t kMaxPolicySeconds =
    std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::duration::max())
        .count();

}  // namespace

void PolicyFlags::Register(base::FlagSet& flags) {
  flags.AddString("root", &root_path,
                  "the root certificate to trust (PEM or DER), e.g. "
                  "AWS_NitroEnclaves_Root-G1.pem or DATA_DIR/dev-ca/root.pem");
  flags.AddRepeated("pcr", &pcrs,
                    "require PCR N to be HEX (--pcr 0=ab12..; repeat for each PCR)");
  flags.AddBool("allow-debug", &allow_debug, "accept debug-mode enclaves (PCR0..2 all zero)");
  flags.AddString("nonce", &nonce_hex, "require this nonce (hex)");
  const std::string most = std::to_string(kMaxPolicySeconds);
  flags.AddInt("at", &at_seconds,
               "check as of this UNIX time in seconds (0: now; at most " + most + ", in 2262)");
  flags.AddInt("max-age", &max_age_seconds,
               "refuse documents older than this many seconds (0: any; at most " + most + ")");
}

base::Result<attest::AttestationPolicy> PolicyFlags::Build() const {
  if (root_path.empty()) return base::InvalidArgument("--root is required");
  if (at_seconds < 0 || at_seconds > kMaxPolicySeconds) {
    return base::InvalidArgument("--at " + std::to_string(at_seconds) +
                                 ": expected a UNIX time in seconds from 0 (now) to " +
                                 std::to_string(kMaxPolicySeconds) + " (in 2262, where the "
                                 "system clock ends)");
  }
  if (max_age_seconds < 0 || max_age_seconds > kMaxPolicySeconds) {
    return base::InvalidArgument("--max-age " + std::to_string(max_age_seconds) +
                                 ": expected seconds from 0 (any age) to " +
                                 std::to_string(kMaxPolicySeconds));
  }
  attest::AttestationPolicy policy;
  SC_ASSIGN_OR_RETURN(std::string root, ReadWholeFile(root_path, kCertificateLimit));
  if (base::Status set = policy.SetRootCertificate(crypto::AsBytes(root)); !set.ok()) {
    return base::DataLoss(root_path + ": " + set.message());  // a bad file, not bad usage
  }
  attest::MeasurementSet measurements;
  for (const std::string& entry : pcrs) {
    size_t equals = entry.find('=');
    uint32_t index = 0;
    crypto::Bytes value;
    const char* index_end = entry.data() + (equals == std::string::npos ? 0 : equals);
    auto [end, error] = std::from_chars(entry.data(), index_end, index);
    if (equals == std::string::npos || error != std::errc() || end != index_end ||
        index > 31 || !crypto::FromHex(entry.substr(equals + 1), &value) || value.empty()) {
      return base::InvalidArgument("--pcr " + entry + ": expected N=HEX with N in 0..31");
    }
    measurements[index] = std::move(value);
  }
  if (!measurements.empty()) policy.allowed_measurements.push_back(std::move(measurements));
  policy.allow_debug = allow_debug;
  if (!nonce_hex.empty()) {
    crypto::Bytes nonce;
    if (!crypto::FromHex(nonce_hex, &nonce)) return base::InvalidArgument("--nonce is not hex");
    policy.expected_nonce = std::move(nonce);
  }
  if (at_seconds > 0) policy.SetFixedTime(static_cast<uint64_t>(at_seconds) * 1000);
  policy.max_age = std::chrono::seconds(max_age_seconds);
  return policy;
}

}  // namespace supercluster::cli
