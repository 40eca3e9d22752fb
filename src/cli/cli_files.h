// Whole-file reads and writes for the CLI commands, with errors that name the file.
#pragma once

#include <cstddef>
#include <string>

#include "base/flags.h"
#include "base/status.h"

namespace supercluster::cli {

// The most of a file the CLI reads whole (a path to /dev/zero or to a huge file by mistake
// must end in an error, not fill memory), and what the refusal says after "FILE: larger
// than N, ".
struct ReadLimit {
  size_t max_bytes;
  const char* note;
};

// An attestation document (`attest verify FILE`, `--attestation`): AWS Nitro's are about
// 4.5KiB (a leaf certificate, a cabundle of four, and a public key, user data and nonce of
// at most 1KiB each), the dev attestor's smaller; 64KiB holds any of them many times over.
inline constexpr ReadLimit kAttestationDocumentLimit{64 << 10, "which is no attestation document"};
// A root certificate (`--root`, PEM or DER): one is 1 to 2KiB.
inline constexpr ReadLimit kCertificateLimit{64 << 10, "which is no certificate"};
// A wipe receipt (`enclave verify-receipt --receipt`): a few counters and a signature.
inline constexpr ReadLimit kWipeReceiptLimit{64 << 10, "which is no wipe receipt"};
// An API key file (`infer --api-key-file`): one line.
inline constexpr ReadLimit kApiKeyFileLimit{64 << 10, "which is no API key file"};

// The file's bytes, at most `limit.max_bytes` of them; "-" reads standard input. Errors
// name the file: "FILE: no such file", "FILE: is a directory", "FILE: cannot read: WHY",
// "FILE: larger than 64KiB, which is no attestation document".
base::Result<std::string> ReadWholeFile(const std::string& path, const ReadLimit& limit);
// Writes `bytes` to `path` (created with `mode`, truncated); "-" writes standard output.
base::Status WriteWholeFile(const std::string& path, const std::string& bytes, int mode = 0644);

// Whether `a` and `b` name the same file: the same path once made absolute and resolved
// (".", "..", symbolic links; neither need exist yet), or two existing paths to one file by
// device and inode (a hard link, a bind mount).
bool SameFile(const std::string& a, const std::string& b);

// --max-in-bytes, for the commands whose --in is a sealed request (`enclave open`) or the
// plaintext of one (`seal`). A sealed request reaches the enclave as one frame, so the
// default is the enclave's default enclave.max_frame_bytes (4MiB), which an operator may
// raise, and the most is the largest that setting allows (256MiB): no enclave takes more.
class MaxInBytesFlag {
 public:
  void Register(base::FlagSet& flags);
  // The limit for reading --in; kInvalidArgument naming the flag for a value that is not a
  // size ("4MiB", "100000") in 1..256MiB.
  base::Result<ReadLimit> Limit() const;

 private:
  std::string text_ = "4MiB";
};

}  // namespace supercluster::cli
