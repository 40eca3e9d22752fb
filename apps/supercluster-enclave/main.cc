// supercluster-enclave: the process inside the attested boundary. It holds the node's HPKE
// key, opens sealed requests, seals streamed answers, attests and signs wipe receipts
// (src/enclave/enclave_core.h), and talks only to its worker over a Unix socket or vsock.
// It links base, crypto and attest, and nothing that serves HTTP: it is what PCR0 measures.
#include <pthread.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include <spdlog/spdlog.h>

#include "attest/dev_attestor.h"
#include "attest/nsm_attestor.h"
#include "base/data_dir.h"
#include "base/flags.h"
#include "base/service_flags.h"
#include "enclave/enclave_core.h"
#include "enclave/enclave_server.h"

namespace supercluster {
namespace {

struct Flags {
  base::ServiceFlags service;
  std::string data_dir = base::DefaultDataDir();
  std::string listen;
  std::string worker_binary;
};

// PCR1 measures the configuration the enclave runs with: the file's bytes, or nothing.
base::Result<std::string> ConfigurationBytes(const std::string& path) {
  if (path.empty()) return std::string();
  std::ifstream file(path, std::ios::binary);
  if (!file) return base::NotFound("cannot read " + path);
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

base::Result<std::unique_ptr<attest::Attestor>> MakeAttestor(const base::Config& config,
                                                             const Flags& flags) {
  if (config.GetString("enclave.attestor") == "nitro") {
    SC_ASSIGN_OR_RETURN(auto nsm, attest::NsmAttestor::Open());
    return std::unique_ptr<attest::Attestor>(std::move(nsm));
  }
  auto ca = attest::DevCa::Load(std::filesystem::path(flags.data_dir) / "dev-ca");
  if (!ca.ok()) {
    return ca.status().WithContext("the dev attestor needs a development CA (run "
                                   "`supercluster dev-ca init --data-dir " +
                                   flags.data_dir + "`)");
  }
  SC_ASSIGN_OR_RETURN(std::string configuration, ConfigurationBytes(flags.service.config_file));
  std::string worker = flags.worker_binary.empty() ? "/proc/self/exe" : flags.worker_binary;
  SC_ASSIGN_OR_RETURN(auto measurements,
                      attest::DevMeasurements::Measure(
                          "/proc/self/exe", crypto::AsBytes(configuration), worker));
  return std::unique_ptr<attest::Attestor>(
      std::make_unique<attest::DevAttestor>(std::move(*ca), std::move(measurements)));
}

int Run(int argc, char** argv) {
  Flags flags;
  base::FlagSet flag_set("supercluster-enclave [flags]");
  flags.service.Register(flag_set);
  flag_set.AddString("data-dir", &flags.data_dir, "the local cluster's data directory (dev CA)");
  flag_set.AddString("listen", &flags.listen,
                     "unix:///path or vsock://CID:PORT (overrides enclave.listen)");
  flag_set.AddString("worker-binary", &flags.worker_binary,
                     "the worker binary measured into PCR2 (dev attestor)");
  base::Status parsed = flag_set.Parse(std::vector<std::string>(argv + 1, argv + argc));
  if (flag_set.help_requested()) {
    std::cout << flag_set.Help();
    return 0;
  }
  if (!parsed.ok()) {
    std::cerr << "supercluster-enclave: " << parsed.message() << "\n";
    return 2;
  }
  auto config = flags.service.LoadConfig("enclave");
  if (!config.ok()) {
    std::cerr << "supercluster-enclave: " << config.status().message() << "\n";
    return 1;
  }
  std::string listen = !flags.listen.empty() ? flags.listen : config->GetString("enclave.listen");
  if (listen.empty()) listen = "unix://" + flags.data_dir + "/enclave.sock";
  auto address = enclave::EnclaveAddress::Parse(listen);
  if (!address.ok()) {
    std::cerr << "supercluster-enclave: " << address.status().message() << "\n";
    return 2;
  }

  auto attestor = MakeAttestor(*config, flags);
  if (!attestor.ok()) {
    spdlog::error("{}", attestor.status().message());
    return 1;
  }
  enclave::EnclaveOptions options;
  options.freshness_window = config->GetDuration("enclave.freshness_window");
  options.max_contexts = static_cast<size_t>(config->GetInt("enclave.max_contexts"));
  options.context_idle_timeout = config->GetDuration("enclave.context_idle_timeout");
  options.max_replay_entries = static_cast<size_t>(config->GetInt("enclave.max_replay_entries"));
  options.key_id = static_cast<uint8_t>(config->GetInt("enclave.key_id"));
  auto core = enclave::EnclaveCore::Create(options, std::move(*attestor));
  if (!core.ok()) {
    spdlog::error("{}", core.status().message());
    return 1;
  }

  // Block the stop signals before any thread starts, then wait for one here.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  enclave::EnclaveServerOptions server_options;
  server_options.listen = *address;
  server_options.max_frame_bytes = static_cast<size_t>(config->GetInt("enclave.max_frame_bytes"));
  server_options.max_connections = static_cast<size_t>(config->GetInt("enclave.max_connections"));
  server_options.frame_timeout = config->GetDuration("enclave.frame_timeout");
  server_options.peer_log_lines_per_minute =
      static_cast<int>(config->GetInt("enclave.peer_log_lines_per_minute"));
  auto server = enclave::EnclaveServer::Start(server_options, core->get());
  if (!server.ok()) {
    spdlog::error("{}", server.status().message());
    return 1;
  }
  spdlog::info("enclave listening on {} (attestor {}, key id {})", address->ToString(),
               config->GetString("enclave.attestor"), options.key_id);
  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  spdlog::info("enclave stopping on signal {}", signal_number);
  (*server)->Stop();
  return 0;
}

}  // namespace
}  // namespace supercluster

int main(int argc, char** argv) { return supercluster::Run(argc, argv); }
