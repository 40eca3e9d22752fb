// `supercluster seal` and `supercluster open`: the client library (client/sealed_client.h)
// from the command line, for debugging the confidential path by hand.
//   seal: verify attestation documents against a policy, seal a message to every accepted
//         enclave, write the envelope and (mode 0600) the secrets that open the answer.
//   open: read a sealed answer stream (a file or stdin) and print it as it opens; a
//         truncated, reordered or altered stream fails with the reason.
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iostream>

#include "base/bounded_read.h"
#include "base/flags.h"
#include "cli/cli_files.h"
#include "cli/command.h"
#include "cli/commands.h"
#include "cli/policy_flags.h"
#include "client/sealed_client.h"

namespace supercluster::cli {
namespace {

int Usage(const std::string& command, const base::Status& status) {
  std::cerr << "supercluster " << command << ": " << status.message() << "\n";
  return kExitUsage;
}

int Fail(const std::string& command, const std::string& why) {
  std::cerr << "supercluster " << command << ": " << why << "\n";
  return kExitFailure;
}

}  // namespace

int RunSeal(const std::vector<std::string>& args) {
  PolicyFlags policy_flags;
  MaxInBytesFlag max_in_bytes;
  std::vector<std::string> documents;
  std::string message, in_path, out_path, keep_path;
  base::FlagSet flags(
      "supercluster seal --attestation DOC... --root PEM (--message TEXT | --in FILE) "
      "--out FILE --keep FILE");
  flags.AddRepeated("attestation", &documents, "a candidate enclave's attestation document");
  policy_flags.Register(flags);
  flags.AddString("message", &message, "the plaintext to seal");
  flags.AddString("in", &in_path, "read the plaintext from FILE (- for stdin)");
  max_in_bytes.Register(flags);
  flags.AddString("out", &out_path, "write the sealed envelope here");
  flags.AddString("keep", &keep_path,
                  "write the secrets that open the answer here (0600; not the --out file)");
  if (base::Status parsed = flags.Parse(args); !parsed.ok()) return Usage("seal", parsed);
  if (flags.help_requested()) {
    std::cout << flags.Help();
    return kExitOk;
  }
  if (documents.empty() || out_path.empty() || keep_path.empty() ||
      message.empty() == in_path.empty()) {
    return Usage("seal", base::InvalidArgument("need --attestation, --out, --keep and exactly "
                                               "one of --message and --in"));
  }
  // The secrets are written first and the envelope over them: one file for both would keep
  // only the envelope, whose answer nothing could then open. (--out - is standard output,
  // which the shell may have pointed at the --keep file: /dev/stdout resolves to it.)
  if (SameFile(out_path == "-" ? "/dev/stdout" : out_path, keep_path)) {
    return Usage("seal", base::InvalidArgument("--out and --keep name the same file (" +
                                               keep_path + "): the envelope would overwrite "
                                               "the secrets that open the answer"));
  }
  auto in_limit = max_in_bytes.Limit();
  if (!in_limit.ok()) return Usage("seal", in_limit.status());
  auto policy = policy_flags.Build();
  if (!policy.ok()) {
    if (policy.status().code() == base::StatusCode::kInvalidArgument) {
      return Usage("seal", policy.status());
    }
    return Fail("seal", policy.status().message());
  }
  std::vector<crypto::Bytes> candidates;
  for (const std::string& path : documents) {
    auto bytes = ReadWholeFile(path, kAttestationDocumentLimit);
    if (!bytes.ok()) return Fail("seal", bytes.status().message());
    candidates.push_back(crypto::ToBytes(*bytes));
  }
  client::CandidateVerdicts verdicts = client::VerifyCandidates(candidates, *policy);
  for (const std::string& rejection : verdicts.rejections) {
    std::cerr << "supercluster seal: " << rejection << "\n";
  }
  if (verdicts.accepted.empty()) return Fail("seal", "no candidate enclave was accepted");
  for (const client::AcceptedEnclave& enclave : verdicts.accepted) {
    std::cerr << "supercluster seal: sealing to " << enclave.attestation.document.module_id
              << (enclave.attestation.dev ? " (dev: INSECURE)" : "") << "\n";
  }
  std::string plaintext = message;
  if (!in_path.empty()) {
    auto read = ReadWholeFile(in_path, *in_limit);
    if (!read.ok()) return Fail("seal", read.status().message());
    plaintext = std::move(*read);
  }
  auto sealed = client::SealRequest(verdicts.accepted, crypto::AsBytes(plaintext), client::NowMs());
  crypto::Zeroize(plaintext.data(), plaintext.size());
  if (!sealed.ok()) return Fail("seal", sealed.status().message());
  if (base::Status saved = client::SaveResponseSecrets(sealed->response_secrets, keep_path);
      !saved.ok()) {
    return Fail("seal", saved.message());
  }
  if (base::Status written = WriteWholeFile(out_path, crypto::ToString(sealed->envelope));
      !written.ok()) {
    return Fail("seal", written.message());
  }
  return kExitOk;
}

int RunOpen(const std::vector<std::string>& args) {
  std::string keep_path, in_path = "-";
  base::FlagSet flags("supercluster open --keep FILE [--in FILE]");
  flags.AddString("keep", &keep_path, "the secrets `supercluster seal --keep` wrote");
  flags.AddString("in", &in_path, "the sealed answer stream (- for stdin)");
  if (base::Status parsed = flags.Parse(args); !parsed.ok()) return Usage("open", parsed);
  if (flags.help_requested()) {
    std::cout << flags.Help();
    return kExitOk;
  }
  if (keep_path.empty()) return Usage("open", base::InvalidArgument("--keep is required"));
  auto secrets = client::LoadResponseSecrets(keep_path);
  if (!secrets.ok()) return Fail("open", secrets.status().message());
  crypto::ChunkedResponseOpener opener = crypto::OpenMultiRecipientResponse(std::move(*secrets));

  int fd = STDIN_FILENO;
  if (in_path != "-") {
    auto opened_fd = base::OpenForReading(in_path);  // a directory is refused here
    if (!opened_fd.ok()) return Fail("open", opened_fd.status().message());
    fd = *opened_fd;
  }
  // Print each chunk as soon as it opens: the stream may be arriving from a pipe.
  std::vector<crypto::Bytes> opened;
  auto print = [&opened] {
    for (const crypto::Bytes& piece : opened) std::cout << crypto::AsText(piece);
    std::cout.flush();
    opened.clear();
  };
  uint8_t buffer[16384];
  base::Status status;
  while (status.ok()) {
    ssize_t got = ::read(fd, buffer, sizeof(buffer));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) {  // an error, not the end of the stream: "truncated" would blame the sender
      int error = errno;
      status = base::Unavailable((in_path == "-" ? "standard input" : in_path) +
                                 ": cannot read: " + std::strerror(error));
      break;
    }
    if (got == 0) break;
    status = opener.Feed(crypto::ByteView(buffer, static_cast<size_t>(got)), &opened);
    print();
  }
  if (fd != STDIN_FILENO) ::close(fd);
  if (status.ok()) status = opener.Finish(&opened);
  print();
  if (!status.ok()) return Fail("open", status.message());
  return kExitOk;
}

}  // namespace supercluster::cli
