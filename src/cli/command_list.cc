#include "cli/command.h"
#include "cli/commands.h"

namespace supercluster::cli {

const std::vector<Command>& AllCommands() {
  static const std::vector<Command> commands = {
      {"serve", "run an HTTP service with health, readiness, metrics and echo", RunServe},
      {"config", "show the configuration schema, defaults, or check a config file", RunConfig},
      {"store", "read, write and watch the cluster state (SQLite or etcd)", RunStore},
      {"attest", "verify an attestation document against a pinned root", RunAttest},
      {"dev-ca", "create the INSECURE development attestation root", RunDevCa},
      {"model", "inspect GGUF/safetensors model files, write synthetic ones", RunModel},
      {"generate", "run a model on a prompt and stream the text it generates", RunGenerate},
      {"enclave", "attest, open, wipe or check a running supercluster-enclave", RunEnclave},
      {"seal", "verify enclaves' attestation and seal a message to them", RunSeal},
      {"open", "open a sealed answer stream with the secrets `seal` kept", RunOpen},
      {"relay", "forward TCP between regions with an added round-trip time and faults",
       RunRelay},
      {"version", "print the version", RunVersion},
  };
  return commands;
}

}  // namespace supercluster::cli
