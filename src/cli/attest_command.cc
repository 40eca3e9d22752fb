// `supercluster attest verify FILE --root PEM`: checks an attestation document (AWS Nitro
// format, from the `nitro` or `dev` attestor) against a pinned root and prints its fields
// and the verdict. Exit 0 when accepted, 1 with the rejection reason when not.
#include <ctime>
#include <iostream>
#include <nlohmann/json.hpp>

#include "attest/certificate.h"
#include "attest/cose_sign1.h"
#include "attest/nitro_document.h"
#include "attest/verifier.h"
#include "base/flags.h"
#include "cli/cli_files.h"
#include "cli/command.h"
#include "cli/commands.h"
#include "cli/policy_flags.h"

namespace supercluster::cli {
namespace {

constexpr const char* kUsage =
    "usage: supercluster attest verify FILE --root PEM [--at UNIX_SECONDS] [--json]\n"
    "  verify    check an attestation document against a pinned root certificate\n";

std::string IsoTime(uint64_t unix_ms) {
  time_t seconds = static_cast<time_t>(unix_ms / 1000);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%S", &utc);
  char millis[8];
  std::snprintf(millis, sizeof(millis), ".%03uZ", static_cast<unsigned>(unix_ms % 1000));
  return std::string(text) + millis;
}

nlohmann::json DocumentJson(const attest::AttestationDocument& document) {
  nlohmann::json pcrs = nlohmann::json::object();
  for (const auto& [index, value] : document.pcrs) pcrs[std::to_string(index)] = attest::HexOf(value);
  auto optional_hex = [](const std::optional<attest::Bytes>& value) -> nlohmann::json {
    return value ? nlohmann::json(attest::HexOf(*value)) : nlohmann::json(nullptr);
  };
  auto subject = attest::CertificateSubject(document.certificate);
  return {{"module_id", document.module_id},
          {"digest", document.digest},
          {"timestamp_ms", document.timestamp_ms},
          {"timestamp", IsoTime(document.timestamp_ms)},
          {"pcrs", pcrs},
          {"certificate_subject", subject.ok() ? *subject : "(unreadable)"},
          {"cabundle_root_fingerprint", attest::CertificateFingerprintSha256(document.cabundle[0])},
          {"cabundle_size", document.cabundle.size()},
          {"public_key", optional_hex(document.public_key)},
          {"user_data", optional_hex(document.user_data)},
          {"nonce", optional_hex(document.nonce)}};
}

void PrintText(const nlohmann::json& fields) {
  std::cout << "module_id:   " << fields["module_id"].get<std::string>() << "\n"
            << "digest:      " << fields["digest"].get<std::string>() << "\n"
            << "timestamp:   " << fields["timestamp"].get<std::string>() << " ("
            << fields["timestamp_ms"].get<uint64_t>() << " ms)\n"
            << "certificate: " << fields["certificate_subject"].get<std::string>() << "\n"
            << "cabundle:    " << fields["cabundle_size"].get<size_t>() << " certificates, root "
            << fields["cabundle_root_fingerprint"].get<std::string>() << "\n";
  for (int index = 0; index < 32; ++index) {  // numeric order, not the JSON keys' order
    std::string key = std::to_string(index);
    if (!fields["pcrs"].contains(key)) continue;
    std::cout << "pcr" << key << (key.size() == 1 ? ":        " : ":       ")
              << fields["pcrs"][key].get<std::string>() << "\n";
  }
  for (const char* optional : {"public_key", "user_data", "nonce"}) {
    std::string padding(12 - std::string(optional).size(), ' ');
    const nlohmann::json& value = fields[optional];
    std::cout << optional << ":" << padding
              << (value.is_null() ? "(absent)"
                  : value.get<std::string>().empty() ? "(empty)"
                                                     : value.get<std::string>())
              << "\n";
  }
}

int RunVerify(const std::vector<std::string>& args) {
  PolicyFlags policy_flags;
  bool json = false;
  std::vector<std::string> positional;
  base::FlagSet flags("supercluster attest verify FILE --root PEM [--at UNIX_SECONDS] [--json]");
  policy_flags.Register(flags);
  flags.AddBool("json", &json, "machine-readable output");
  flags.AllowPositional(&positional, "FILE");
  if (base::Status parsed = flags.Parse(args); !parsed.ok()) {
    std::cerr << "supercluster attest verify: " << parsed.message() << "\n";
    return kExitUsage;
  }
  if (flags.help_requested()) {
    std::cout << flags.Help();
    return kExitOk;
  }
  if (positional.size() != 1) {
    std::cerr << flags.Help();
    return kExitUsage;
  }
  auto fail = [](const std::string& why) {
    std::cerr << "supercluster attest verify: " << why << "\n";
    return kExitFailure;
  };
  auto policy = policy_flags.Build();
  if (!policy.ok()) {
    std::cerr << "supercluster attest verify: " << policy.status().message() << "\n";
    return policy.status().code() == base::StatusCode::kInvalidArgument ? kExitUsage
                                                                         : kExitFailure;
  }
  auto file = ReadWholeFile(positional[0], kAttestationDocumentLimit);
  if (!file.ok()) return fail(file.status().message());
  attest::ByteView bytes = attest::AsByteView(*file);

  // The fields are shown even when the verdict is no, as long as they can be read.
  nlohmann::json output = nlohmann::json::object();
  if (auto cose = attest::DecodeCoseSign1(bytes); cose.ok()) {
    if (auto document = attest::DecodeAttestationDocument(cose->payload); document.ok()) {
      output = DocumentJson(*document);
    }
  }
  auto verified = attest::VerifyAttestation(bytes, *policy);
  if (verified.ok()) {
    output["verdict"] = "accepted";
    output["dev"] = verified->dev;
  } else {
    auto reason = attest::RejectionReasonOf(verified.status());
    output["verdict"] = "rejected";
    output["reason"] = reason ? attest::RejectionReasonName(*reason) : "error";
    output["detail"] = verified.status().message();
  }
  if (json) {
    std::cout << output.dump() << "\n";
  } else {
    if (output.contains("module_id")) PrintText(output);
    std::cout << "verdict:     " << output["verdict"].get<std::string>()
              << (verified.ok() && verified->dev ? " (dev document: INSECURE, proves nothing)" : "")
              << "\n";
  }
  if (!verified.ok()) return fail(verified.status().message());
  return kExitOk;
}

}  // namespace

int RunAttest(const std::vector<std::string>& args) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    (args.empty() ? std::cerr : std::cout) << kUsage;
    return args.empty() ? kExitUsage : kExitOk;
  }
  if (args[0] != "verify") {
    std::cerr << "supercluster attest: unknown verb '" << args[0] << "'\n" << kUsage;
    return kExitUsage;
  }
  return RunVerify({args.begin() + 1, args.end()});
}

}  // namespace supercluster::cli
