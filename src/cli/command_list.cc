#include "cli/command.h"
#include "cli/commands.h"

namespace supercluster::cli {

const std::vector<Command>& AllCommands() {
  static const std::vector<Command> commands = {
      // A local cluster and its client.
      {"up", "start a whole multi-region cluster on this machine", RunUp},
      {"down", "stop the local cluster (or one region of it)", RunDown},
      {"status", "show the local cluster's regions, routers and workers", RunStatus},
      {"infer", "seal a prompt to attested workers and stream the answer", RunInfer},
      // The services a cluster is made of.
      {"worker", "serve a model: the sealed and OpenAI-compatible APIs, with an enclave", RunWorker},
      {"router", "run the regional router or the global endpoint", RunRouter},
      {"relay", "forward TCP between regions with an added round-trip time and faults",
       RunRelay},
      {"serve", "run an HTTP service with health, readiness, metrics and echo", RunServe},
      // Tools.
      {"config", "show the configuration schema, defaults, or check a config file", RunConfig},
      {"store", "read, write and watch the cluster state (SQLite or etcd)", RunStore},
      {"attest", "verify an attestation document against a pinned root", RunAttest},
      {"dev-ca", "create the INSECURE development attestation root", RunDevCa},
      {"model", "inspect GGUF/safetensors model files, write synthetic ones", RunModel},
      {"generate", "run a model on a prompt and stream the text it generates", RunGenerate},
      {"enclave", "attest, open, wipe or check a running supercluster-enclave", RunEnclave},
      {"seal", "verify enclaves' attestation and seal a message to them", RunSeal},
      {"open", "open a sealed answer stream with the secrets `seal` kept", RunOpen},
      {"version", "print the version", RunVersion},
  };
  return commands;
}

}  // namespace supercluster::cli
