#include "router/worker_directory.h"

#include <algorithm>
#include <set>

#include "base/base64.h"

namespace supercluster::router {

WorkerDirectory::WorkerDirectory(const store::PrefixCache& instances, std::string region,
                                 attest::AttestationPolicy policy, WorkerDirectoryOptions options)
    : cache_(&instances),
      region_(std::move(region)),
      policy_(std::move(policy)),
      options_(std::move(options)),
      eligible_(std::make_shared<std::vector<WorkerInfo>>()) {}

WorkerDirectory::WorkerDirectory(std::string region, std::vector<WorkerInfo> static_workers)
    : region_(std::move(region)),
      eligible_(std::make_shared<std::vector<WorkerInfo>>(std::move(static_workers))) {}

WorkerDirectory::~WorkerDirectory() = default;

base::Result<std::unique_ptr<WorkerDirectory>> WorkerDirectory::Static(
    std::string region, const std::vector<std::string>& addresses) {
  std::vector<WorkerInfo> workers;
  for (size_t i = 0; i < addresses.size(); ++i) {
    base::Result<net::Endpoint> endpoint = net::ParseEndpoint(addresses[i]);
    if (!endpoint.ok()) {
      return base::InvalidArgument("--static-worker " + addresses[i] + ": " +
                                   endpoint.status().message());
    }
    WorkerInfo worker;
    worker.instance = "static-" + std::to_string(i + 1);
    worker.region = region;
    worker.id = region + "/" + worker.instance;
    worker.endpoint = *endpoint;
    worker.capacity = 1;
    workers.push_back(std::move(worker));
  }
  return std::unique_ptr<WorkerDirectory>(new WorkerDirectory(region, std::move(workers)));
}

std::chrono::steady_clock::time_point WorkerDirectory::Now() const {
  return options_.clock ? options_.clock() : std::chrono::steady_clock::now();
}

base::Status WorkerDirectory::VerdictLocked(const std::string& attestation_b64,
                                            std::chrono::steady_clock::time_point now) {
  auto it = verdicts_.find(attestation_b64);
  if (it != verdicts_.end() && now - it->second.checked_at < options_.reverify_interval) {
    return it->second.status;
  }
  base::Status status;
  base::Result<std::string> document = base::Base64Decode(attestation_b64);
  if (!document.ok()) {
    status = base::InvalidArgument("attestation_b64 is not base64");
  } else if (document->empty()) {
    status = base::InvalidArgument("no attestation document");
  } else {
    auto verified = attest::VerifyAttestation(attest::AsByteView(*document), policy_);
    status = verified.ok() ? base::Status::Ok() : verified.status();
  }
  verdicts_[attestation_b64] = Verdict{status, now};
  return status;
}

void WorkerDirectory::RefreshLocked() {
  std::shared_ptr<const store::PrefixSnapshot> snapshot = cache_->Snapshot();
  auto now = Now();
  if (snapshot->revision == evaluated_revision_ &&
      now - evaluated_at_ < options_.reverify_interval) {
    return;
  }
  auto eligible = std::make_shared<std::vector<WorkerInfo>>();
  std::set<std::string> models;
  std::map<std::string, std::string> rejections;
  std::set<std::string> documents_in_use;
  for (const auto& [key, kv] : snapshot->entries) {
    base::Result<store::Instance> instance = store::DecodeInstance(kv.value, key);
    if (!instance.ok()) {
      rejections[key] = instance.status().message();
      continue;
    }
    if (!instance->model.empty()) models.insert(instance->model);
    if (instance->region != region_) {
      rejections[instance->id] = "region " + instance->region + " is not " + region_;
      continue;
    }
    if (instance->state != store::InstanceState::kServing) {
      rejections[instance->id] = std::string("state ") + store::InstanceStateName(instance->state);
      continue;
    }
    base::Result<net::Endpoint> endpoint = net::ParseEndpoint(instance->address);
    if (!endpoint.ok()) {
      rejections[instance->id] = "address: " + endpoint.status().message();
      continue;
    }
    documents_in_use.insert(instance->attestation_b64);
    base::Status verdict = VerdictLocked(instance->attestation_b64, now);
    if (!verdict.ok()) {
      rejections[instance->id] = verdict.message();
      continue;
    }
    WorkerInfo worker;
    worker.id = instance->region + "/" + instance->id;
    worker.instance = instance->id;
    worker.region = instance->region;
    worker.model = instance->model;
    worker.endpoint = *endpoint;
    worker.attestation_b64 = instance->attestation_b64;
    worker.capacity = instance->capacity;
    eligible->push_back(std::move(worker));
  }
  // Forget verdicts on documents no record carries any more.
  for (auto it = verdicts_.begin(); it != verdicts_.end();) {
    it = documents_in_use.count(it->first) ? std::next(it) : verdicts_.erase(it);
  }
  eligible_ = std::move(eligible);
  known_models_.assign(models.begin(), models.end());
  rejections_ = std::move(rejections);
  evaluated_revision_ = snapshot->revision;
  evaluated_at_ = now;
}

std::shared_ptr<const std::vector<WorkerInfo>> WorkerDirectory::Eligible() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (cache_ != nullptr) RefreshLocked();
  return eligible_;
}

std::vector<std::string> WorkerDirectory::KnownModels() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (cache_ != nullptr) RefreshLocked();
  return known_models_;
}

void WorkerDirectory::SetPolicy(attest::AttestationPolicy policy) {
  std::lock_guard lock(mutex_);
  policy_ = std::move(policy);
  verdicts_.clear();
  evaluated_revision_ = -1;  // the next Eligible() evaluates every record again
}

std::map<std::string, std::string> WorkerDirectory::Rejections() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (cache_ != nullptr) RefreshLocked();
  return rejections_;
}

}  // namespace supercluster::router
