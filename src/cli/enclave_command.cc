// `supercluster enclave attest|open|wipe|verify-receipt`: talk to a running
// supercluster-enclave the way its worker does, for operators and for debugging.
//   attest          fetch an attestation document (with a nonce and user data)
//   open            play the worker once: open a sealed request, then seal a reply to it as a
//                   streamed answer of N chunks (prints the opened request to stderr)
//   wipe            destroy the enclave's keys; write the signed wipe receipt
//   verify-receipt  check a wipe receipt against the enclave's verified attestation
#include <iostream>

#include "base/data_dir.h"
#include "base/flags.h"
#include "cli/cli_files.h"
#include "cli/command.h"
#include "cli/commands.h"
#include "cli/policy_flags.h"
#include "client/sealed_client.h"
#include "enclave/enclave_client.h"
#include "enclave/wipe_receipt.h"

namespace supercluster::cli {
namespace {

constexpr const char* kUsage =
    "usage: supercluster enclave VERB [flags]   (VERB --help for its flags)\n"
    "  attest          fetch the enclave's attestation document\n"
    "  open            open one sealed request and seal a reply to it (acts as the worker)\n"
    "  wipe            destroy the enclave's keys and write its signed wipe receipt\n"
    "  verify-receipt  check a wipe receipt against the enclave's attestation document\n";

int Usage(const std::string& verb, const std::string& why) {
  std::cerr << "supercluster enclave " << verb << ": " << why << "\n";
  return kExitUsage;
}

int Fail(const std::string& verb, const std::string& why) {
  std::cerr << "supercluster enclave " << verb << ": " << why << "\n";
  return kExitFailure;
}

// The flags every verb that connects shares.
struct ConnectFlags {
  std::string enclave;
  void Register(base::FlagSet& flags) {
    flags.AddString("enclave", &enclave,
                    "unix:///path or vsock://CID:PORT (default unix://DATA_DIR/enclave.sock)");
  }
  base::Result<std::unique_ptr<enclave::EnclaveClient>> Connect() const {
    std::string address_text =
        enclave.empty() ? "unix://" + base::DefaultDataDir() + "/enclave.sock" : enclave;
    SC_ASSIGN_OR_RETURN(enclave::EnclaveAddress address, enclave::EnclaveAddress::Parse(address_text));
    return enclave::EnclaveClient::Connect(address);
  }
};

// Parses `args` into `flags`; returns an exit code when the command should stop there.
std::optional<int> ParseOrExit(const std::string& verb, base::FlagSet& flags,
                               const std::vector<std::string>& args) {
  if (base::Status parsed = flags.Parse(args); !parsed.ok()) return Usage(verb, parsed.message());
  if (flags.help_requested()) {
    std::cout << flags.Help();
    return kExitOk;
  }
  return std::nullopt;
}

int RunAttestVerb(const std::vector<std::string>& args) {
  ConnectFlags connect;
  std::string nonce_hex, user_data, out_path;
  base::FlagSet flags("supercluster enclave attest --out FILE [--nonce HEX] [--user-data TEXT]");
  connect.Register(flags);
  flags.AddString("nonce", &nonce_hex, "a fresh nonce (hex) the document must carry");
  flags.AddString("user-data", &user_data, "data to bind into the document");
  flags.AddString("out", &out_path, "write the document here");
  if (auto exit = ParseOrExit("attest", flags, args)) return *exit;
  if (out_path.empty()) return Usage("attest", "--out is required");
  crypto::Bytes nonce;
  if (!crypto::FromHex(nonce_hex, &nonce)) return Usage("attest", "--nonce is not hex");
  auto client = connect.Connect();
  if (!client.ok()) return Fail("attest", client.status().message());
  auto document = (*client)->Attest(nonce, crypto::AsBytes(user_data));
  if (!document.ok()) return Fail("attest", document.status().message());
  if (base::Status written = WriteWholeFile(out_path, crypto::ToString(*document)); !written.ok()) {
    return Fail("attest", written.message());
  }
  return kExitOk;
}

int RunOpenVerb(const std::vector<std::string>& args) {
  ConnectFlags connect;
  std::string in_path, reply, out_path;
  int64_t chunks = 1;
  MaxInBytesFlag max_in_bytes;
  base::FlagSet flags("supercluster enclave open --in SEALED --reply TEXT --out STREAM");
  connect.Register(flags);
  flags.AddString("in", &in_path, "the sealed request (from `supercluster seal`)");
  max_in_bytes.Register(flags);
  flags.AddString("reply", &reply, "the answer to seal back");
  flags.AddInt("chunks", &chunks, "split the answer into this many sealed chunks");
  flags.AddString("out", &out_path, "write the sealed answer stream here");
  if (auto exit = ParseOrExit("open", flags, args)) return *exit;
  if (in_path.empty() || out_path.empty()) return Usage("open", "--in and --out are required");
  if (chunks < 1 || chunks > 100000) return Usage("open", "--chunks must be 1..100000");
  auto in_limit = max_in_bytes.Limit();
  if (!in_limit.ok()) return Usage("open", in_limit.status().message());
  auto sealed = ReadWholeFile(in_path, *in_limit);
  if (!sealed.ok()) return Fail("open", sealed.status().message());
  auto client = connect.Connect();
  if (!client.ok()) return Fail("open", client.status().message());
  auto opened = (*client)->Open(enclave::SealedFormat::kMultiRecipient, crypto::AsBytes(*sealed));
  if (!opened.ok()) return Fail("open", opened.status().message());
  std::cerr << "request: " << crypto::AsText(opened->payload) << "\n";
  std::string stream;
  size_t piece = (reply.size() + static_cast<size_t>(chunks) - 1) / static_cast<size_t>(chunks);
  for (int64_t i = 0; i < chunks; ++i) {
    size_t begin = std::min(reply.size(), static_cast<size_t>(i) * piece);
    std::string_view text = std::string_view(reply).substr(begin, piece);
    auto chunk = (*client)->Seal(opened->context_id, crypto::AsBytes(text), i + 1 == chunks);
    if (!chunk.ok()) return Fail("open", chunk.status().message());
    stream += crypto::AsText(*chunk);
  }
  if (base::Status written = WriteWholeFile(out_path, stream); !written.ok()) {
    return Fail("open", written.message());
  }
  return kExitOk;
}

int RunWipeVerb(const std::vector<std::string>& args) {
  ConnectFlags connect;
  std::string out_path;
  base::FlagSet flags("supercluster enclave wipe --out RECEIPT");
  connect.Register(flags);
  flags.AddString("out", &out_path, "write the signed wipe receipt here");
  if (auto exit = ParseOrExit("wipe", flags, args)) return *exit;
  if (out_path.empty()) return Usage("wipe", "--out is required");
  auto client = connect.Connect();
  if (!client.ok()) return Fail("wipe", client.status().message());
  auto receipt = (*client)->Wipe();
  if (!receipt.ok()) return Fail("wipe", receipt.status().message());
  if (base::Status written = WriteWholeFile(out_path, crypto::ToString(*receipt)); !written.ok()) {
    return Fail("wipe", written.message());
  }
  return kExitOk;
}

int RunVerifyReceiptVerb(const std::vector<std::string>& args) {
  PolicyFlags policy_flags;
  std::string receipt_path, document_path;
  base::FlagSet flags(
      "supercluster enclave verify-receipt --receipt FILE --attestation DOC --root PEM");
  flags.AddString("receipt", &receipt_path, "the wipe receipt");
  flags.AddString("attestation", &document_path, "the enclave's attestation document");
  policy_flags.Register(flags);
  if (auto exit = ParseOrExit("verify-receipt", flags, args)) return *exit;
  if (receipt_path.empty() || document_path.empty()) {
    return Usage("verify-receipt", "--receipt and --attestation are required");
  }
  auto policy = policy_flags.Build();
  if (!policy.ok()) {
    return policy.status().code() == base::StatusCode::kInvalidArgument
               ? Usage("verify-receipt", policy.status().message())
               : Fail("verify-receipt", policy.status().message());
  }
  auto document = ReadWholeFile(document_path, kAttestationDocumentLimit);
  auto receipt = ReadWholeFile(receipt_path, kWipeReceiptLimit);
  if (!document.ok()) return Fail("verify-receipt", document.status().message());
  if (!receipt.ok()) return Fail("verify-receipt", receipt.status().message());
  client::CandidateVerdicts verdicts =
      client::VerifyCandidates({crypto::ToBytes(*document)}, *policy);
  if (verdicts.accepted.empty()) return Fail("verify-receipt", verdicts.rejections.front());
  auto verified = enclave::VerifyWipeReceipt(crypto::AsBytes(*receipt),
                                             verdicts.accepted.front().identity.receipt_key_point);
  if (!verified.ok()) return Fail("verify-receipt", verified.status().message());
  std::cout << "wipe receipt verified: wiped at " << verified->wiped_at_ms << " ms, "
            << verified->contexts_opened << " contexts opened, " << verified->contexts_closed
            << " closed, " << verified->contexts_destroyed << " destroyed by the wipe\n";
  return kExitOk;
}

}  // namespace

int RunEnclave(const std::vector<std::string>& args) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    (args.empty() ? std::cerr : std::cout) << kUsage;
    return args.empty() ? kExitUsage : kExitOk;
  }
  std::vector<std::string> rest(args.begin() + 1, args.end());
  if (args[0] == "attest") return RunAttestVerb(rest);
  if (args[0] == "open") return RunOpenVerb(rest);
  if (args[0] == "wipe") return RunWipeVerb(rest);
  if (args[0] == "verify-receipt") return RunVerifyReceiptVerb(rest);
  std::cerr << "supercluster enclave: unknown verb '" << args[0] << "'\n" << kUsage;
  return kExitUsage;
}

}  // namespace supercluster::cli
