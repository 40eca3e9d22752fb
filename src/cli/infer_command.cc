// `supercluster infer`: the confidential client from the command line. It fetches candidate
// workers' attestation documents from the endpoint, verifies them itself, seals the prompt
// to the accepted ones, and prints the answer as it opens. Against a local cluster
// (`supercluster up`) every setting comes from DATA_DIR/cluster/cluster.json; against
// another cluster give --endpoint, --api-key-file and the policy (--root, --pcr). Its HTTP
// connection to the endpoint follows the client.* keys (--config, --set).
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "base/config.h"
#include "base/data_dir.h"
#include "base/flags.h"
#include "base/service_flags.h"
#include "cli/cli_files.h"
#include "cli/command.h"
#include "cli/commands.h"
#include "cli/policy_flags.h"
#include "client/cluster_client.h"
#include "controller/local_cluster.h"

namespace supercluster::cli {
namespace {

using Json = nlohmann::json;

int Usage(const std::string& why) {
  std::cerr << "supercluster infer: " << why << "\n";
  return kExitUsage;
}

int Fail(const std::string& why) {
  std::cerr << "supercluster infer: " << why << "\n";
  return kExitFailure;
}

std::string FirstLine(const std::string& text) {
  size_t end = text.find_first_of("\r\n");
  return text.substr(0, end);
}

}  // namespace

int RunInfer(const std::vector<std::string>& args) {
  std::string data_dir = base::DefaultDataDir();
  std::string endpoint, api_key_file, model, prompt, system;
  int64_t max_tokens = 64, seed = -1, candidates = 4;
  double temperature = 0;
  bool chat = false, json = false;
  PolicyFlags policy_flags;
  // A live worker refreshes its document every minute (worker.attestation_refresh); one
  // much older than that belongs to an enclave that may be gone or wiped. `--max-age 0`
  // accepts any age.
  policy_flags.max_age_seconds = 600;
  base::ServiceFlags service_flags;
  base::FlagSet flags("supercluster infer --prompt TEXT [flags]");
  service_flags.Register(flags);
  flags.AddString("data-dir", &data_dir, "the local cluster to use when --endpoint is not given");
  flags.AddString("endpoint", &endpoint, "the global endpoint, http://HOST:PORT");
  flags.AddString("api-key-file", &api_key_file, "a file holding the tenant's API key");
  flags.AddString("model", &model, "the model to run (default: the local cluster's)");
  flags.AddString("prompt", &prompt, "the prompt (sealed before it leaves this process)");
  flags.AddBool("chat", &chat, "send the prompt as a chat message (the model's chat template)");
  flags.AddString("system", &system, "a system message (with --chat)");
  flags.AddInt("max-tokens", &max_tokens, "the most tokens to generate");
  flags.AddDouble("temperature", &temperature, "sampling temperature (0: greedy)");
  flags.AddInt("seed", &seed, "sampling seed (-1: random)");
  flags.AddInt("candidates", &candidates, "workers to seal the request to (1..16)");
  flags.AddBool("json", &json, "print the result as one JSON object instead of streaming");
  policy_flags.Register(flags);
  if (base::Status parsed = flags.Parse(args); !parsed.ok()) return Usage(parsed.message());
  if (flags.help_requested()) {
    std::cout << flags.Help();
    return kExitOk;
  }
  if (prompt.empty()) return Usage("--prompt is required");
  if (max_tokens < 1) return Usage("--max-tokens must be at least 1");
  if (candidates < 1 || candidates > 16) return Usage("--candidates must be 1..16");
  auto config = service_flags.LoadConfig("infer");
  if (!config.ok()) return Fail(config.status().message());

  client::ClusterClientOptions options;
  options.candidates = static_cast<int>(candidates);
  options.http = net::ClientOptions::FromConfig(*config);
  options.endpoint = endpoint;
  if (endpoint.empty() || policy_flags.root_path.empty() || api_key_file.empty() ||
      model.empty()) {
    auto local = controller::LoadClusterInfo(data_dir);
    if (!local.ok()) {
      return Fail(local.status().message() +
                  "; or give --endpoint, --api-key-file, --model and --root");
    }
    if (endpoint.empty()) options.endpoint = local->global_endpoint;
    if (api_key_file.empty()) api_key_file = local->demo_api_key_file;
    if (model.empty()) model = local->model_name;
    if (policy_flags.root_path.empty()) {
      policy_flags.root_path = local->dev_root;
      if (policy_flags.pcrs.empty()) policy_flags.pcrs.push_back("0=" + local->enclave_pcr0_hex);
      std::cerr << "supercluster infer: trusting the local cluster's dev attestation root "
                   "(INSECURE, for local use)\n";
    }
  }
  auto policy = policy_flags.Build();
  if (!policy.ok()) {
    if (policy.status().code() == base::StatusCode::kInvalidArgument) {
      return Usage(policy.status().message());
    }
    return Fail(policy.status().message());
  }
  options.policy = std::move(*policy);
  auto key = ReadWholeFile(api_key_file, kApiKeyFileLimit);
  if (!key.ok()) return Fail(key.status().message());
  options.api_key = FirstLine(*key);

  Json request = {{"model", model}, {"max_tokens", max_tokens}, {"temperature", temperature}};
  if (seed >= 0) request["seed"] = seed;
  if (chat) {
    Json messages = Json::array();
    if (!system.empty()) messages.push_back({{"role", "system"}, {"content", system}});
    messages.push_back({{"role", "user"}, {"content", prompt}});
    request["messages"] = messages;
  } else {
    request["prompt"] = prompt;
  }

  client::ClusterClient cluster(std::move(options));
  auto candidates_list = cluster.FetchCandidates(model);
  if (!candidates_list.ok()) return Fail(candidates_list.status().message());
  for (const std::string& rejection : candidates_list->rejections) {
    std::cerr << "supercluster infer: refused " << rejection << "\n";
  }
  std::string sealed_to;
  for (const client::Candidate& candidate : candidates_list->accepted) {
    sealed_to += (sealed_to.empty() ? "" : ", ") + candidate.region + "/" + candidate.instance;
  }
  std::cerr << "supercluster infer: sealed to " << sealed_to << "\n";
  if (!json) std::cout << prompt;
  auto result = cluster.Infer(candidates_list->accepted, model, request.dump(),
                              [json](std::string_view text) {
                                if (json) return;
                                std::cout << text;
                                std::cout.flush();
                              });
  if (!json) std::cout << "\n";
  if (!result.ok()) return Fail(result.status().message());
  if (json) {
    std::cout << Json{{"text", result->text},
                      {"finish_reason", result->finish_reason},
                      {"served_by", result->served_by},
                      {"usage",
                       {{"prompt_tokens", result->prompt_tokens},
                        {"completion_tokens", result->completion_tokens}}}}
                     .dump()
              << "\n";
  } else {
    std::cerr << "supercluster infer: served by " << result->served_by << ", "
              << result->completion_tokens << " tokens, finished: " << result->finish_reason
              << "\n";
  }
  return kExitOk;
}

}  // namespace supercluster::cli
