#include "router/worker_directory.h"

#include <algorithm>
#include <set>

#include "base/base64.h"
#include "base/thread_slot.h"

namespace supercluster::router {
namespace {

int64_t SteadyNanoseconds(std::chrono::steady_clock::time_point time) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(time.time_since_epoch()).count();
}

}  // namespace

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

bool WorkerDirectory::RefreshDue() const {
  if (cache_ == nullptr) return false;  // static mode: the list never changes
  return cache_->Version() != evaluated_version_.load(std::memory_order_acquire) ||
         SteadyNanoseconds(Now()) >= reverify_due_ns_.load(std::memory_order_relaxed);
}

void WorkerDirectory::RefreshLocked() {
  if (!RefreshDue()) return;
  // The version first: the snapshot is then at least that new, and a change after it
  // makes RefreshDue true again.
  const uint64_t version = cache_->Version();
  std::shared_ptr<const store::PrefixSnapshot> snapshot = cache_->Snapshot();
  auto now = Now();
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
  generation_.fetch_add(1, std::memory_order_release);
  known_models_ = std::make_shared<const std::vector<std::string>>(models.begin(), models.end());
  rejections_ = std::move(rejections);
  reverify_due_ns_.store(SteadyNanoseconds(now + options_.reverify_interval),
                         std::memory_order_relaxed);
  evaluated_version_.store(version, std::memory_order_release);
}

std::shared_ptr<const std::vector<WorkerInfo>> WorkerDirectory::Eligible() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (cache_ != nullptr) RefreshLocked();
  return eligible_;
}

const WorkerDirectory::ThreadView& WorkerDirectory::ViewOnThisThread() {
  ThreadView& view = base::ThreadSlotOf<ThreadView>(thread_slot_owner_);
  if (view.workers != nullptr &&
      view.generation == generation_.load(std::memory_order_acquire) && !RefreshDue()) {
    return view;
  }
  std::lock_guard<std::mutex> lock(mutex_);
  if (cache_ != nullptr) RefreshLocked();
  view.generation = generation_.load(std::memory_order_relaxed);
  view.workers = eligible_;
  view.known_models = known_models_;
  return view;
}

const std::vector<WorkerInfo>& WorkerDirectory::EligibleOnThisThread() {
  return *ViewOnThisThread().workers;
}

bool WorkerDirectory::KnowsModelOnThisThread(const std::string& model) {
  const std::vector<std::string>& models = *ViewOnThisThread().known_models;
  return std::find(models.begin(), models.end(), model) != models.end();
}

std::vector<std::string> WorkerDirectory::KnownModels() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (cache_ != nullptr) RefreshLocked();
  return *known_models_;
}

void WorkerDirectory::SetPolicy(attest::AttestationPolicy policy) {
  std::lock_guard lock(mutex_);
  policy_ = std::move(policy);
  verdicts_.clear();
  // The next Eligible() evaluates every record again.
  evaluated_version_.store(kNotEvaluated, std::memory_order_release);
}

std::map<std::string, std::string> WorkerDirectory::Rejections() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (cache_ != nullptr) RefreshLocked();
  return rejections_;
}

}  // namespace supercluster::router
