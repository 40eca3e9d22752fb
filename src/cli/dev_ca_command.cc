// `supercluster dev-ca init`: creates the INSECURE development attestation root that the
// `dev` attestor signs with (attest/dev_attestor.h), in DIR/dev-ca/ under --data-dir.
#include <iostream>

#include "attest/dev_attestor.h"
#include "base/data_dir.h"
#include "base/flags.h"
#include "cli/command.h"
#include "cli/commands.h"

namespace supercluster::cli {
namespace {

constexpr const char* kUsage =
    "usage: supercluster dev-ca init [--data-dir DIR] [--force]\n"
    "  init    create a development attestation root in DIR/dev-ca/ (INSECURE: documents it\n"
    "          signs prove nothing; only for local clusters and tests)\n";

}  // namespace

int RunDevCa(const std::vector<std::string>& args) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    (args.empty() ? std::cerr : std::cout) << kUsage;
    return args.empty() ? kExitUsage : kExitOk;
  }
  if (args[0] != "init") {
    std::cerr << "supercluster dev-ca: unknown verb '" << args[0] << "'\n" << kUsage;
    return kExitUsage;
  }
  std::string data_dir = base::DefaultDataDir();
  bool force = false;
  base::FlagSet flags("supercluster dev-ca init [--data-dir DIR] [--force]");
  flags.AddString("data-dir", &data_dir, "the local cluster's state directory");
  flags.AddBool("force", &force, "replace an existing dev CA (documents it signed stop verifying)");
  if (base::Status parsed = flags.Parse({args.begin() + 1, args.end()}); !parsed.ok()) {
    std::cerr << "supercluster dev-ca init: " << parsed.message() << "\n";
    return kExitUsage;
  }
  if (flags.help_requested()) {
    std::cout << flags.Help();
    return kExitOk;
  }
  std::filesystem::path dir = std::filesystem::path(data_dir) / "dev-ca";
  auto ca = attest::DevCa::Init(dir, force);
  if (!ca.ok()) {
    std::cerr << "supercluster dev-ca init: " << ca.status().message() << "\n";
    return kExitFailure;
  }
  std::cout << "created INSECURE development attestation root in " << dir.string() << "\n"
            << "root certificate: " << (dir / "root.pem").string() << "\n"
            << "SHA-256 fingerprint: " << ca->RootFingerprint() << "\n";
  return kExitOk;
}

}  // namespace supercluster::cli
