#include "worker/registration.h"

#include <algorithm>

#include "base/logging.h"
#include "base/base64.h"

namespace supercluster::worker {
namespace {

int64_t NowUnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

Registration::Registration(store::Store& store, store::Instance record, Attest attest,
                           OnDocument on_document, RegistrationOptions options)
    : store_(store),
      attest_(std::move(attest)),
      on_document_(std::move(on_document)),
      options_(options),
      record_(std::move(record)) {}

base::Result<std::unique_ptr<Registration>> Registration::Start(store::Store& store,
                                                                store::Instance record,
                                                                Attest attest,
                                                                OnDocument on_document,
                                                                RegistrationOptions options) {
  record.state = store::InstanceState::kServing;
  std::unique_ptr<Registration> registration(new Registration(
      store, std::move(record), std::move(attest), std::move(on_document), options));
  SC_RETURN_IF_ERROR(registration->Refresh());
  registration->thread_ = std::thread([raw = registration.get()] { raw->Run(); });
  return registration;
}

Registration::~Registration() { Stop(); }

base::Status Registration::Refresh() {
  auto document = attest_();
  if (!document.ok()) return document.status().WithContext("attesting the enclave");
  on_document_(*document);
  std::lock_guard lock(mutex_);
  record_.attestation_b64 = base::Base64Encode(crypto::AsText(*document));
  return WriteRecordLocked();
}

base::Status Registration::WriteRecordLocked() {
  if (lease_ == 0) {
    auto lease = store_.GrantLease(options_.lease_ttl);
    if (!lease.ok()) return lease.status().WithContext("granting the registration lease");
    lease_ = *lease;
  }
  record_.updated_unix_ms = NowUnixMs();
  std::string key = store::keys::Instance(record_.region, record_.id);
  auto written = store_.Put(key, store::Encode(record_), lease_);
  if (!written.ok() && written.status().code() == base::StatusCode::kNotFound) {
    lease_ = 0;  // the lease expired; take a new one next time
  }
  if (!written.ok()) return written.status().WithContext("writing " + key);
  return base::Status::Ok();
}

base::Status Registration::MarkDraining() {
  std::lock_guard lock(mutex_);
  record_.state = store::InstanceState::kDraining;
  return WriteRecordLocked();
}

void Registration::Stop() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return;
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  std::lock_guard lock(mutex_);
  if (lease_ != 0) {
    if (base::Status revoked = store_.RevokeLease(lease_); !revoked.ok()) {
      spdlog::warn("deregistering: {} (the record vanishes when the lease expires)",
                   revoked.message());
    }
    lease_ = 0;
  }
}

void Registration::Run() {
  using Clock = std::chrono::steady_clock;
  const auto renew_every = std::max<std::chrono::milliseconds>(
      std::chrono::milliseconds(100),
      std::chrono::duration_cast<std::chrono::milliseconds>(options_.lease_ttl) / 3);
  Clock::time_point next_refresh = Clock::now() + options_.attestation_refresh;
  Clock::time_point next_renew = Clock::now() + renew_every;
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    wake_.wait_until(lock, std::min(next_renew, next_refresh), [this] { return stopping_; });
    if (stopping_) return;
    if (Clock::now() >= next_refresh) {
      lock.unlock();
      base::Status refreshed = Refresh();
      lock.lock();
      if (!refreshed.ok()) {
        spdlog::warn("refreshing the registration: {}", refreshed.message());
        next_refresh = Clock::now() + renew_every;  // try again soon
      } else {
        next_refresh = Clock::now() + options_.attestation_refresh;
      }
    }
    if (Clock::now() < next_renew) continue;
    next_renew = Clock::now() + renew_every;
    base::Status renewed = lease_ == 0 ? base::NotFound("no lease") : store_.KeepAlive(lease_);
    if (renewed.code() == base::StatusCode::kNotFound) {
      // The lease expired (the store was away longer than the TTL): register again.
      lease_ = 0;
      renewed = WriteRecordLocked();
      if (renewed.ok()) spdlog::info("registration lease lost; registered again");
    }
    if (!renewed.ok()) spdlog::warn("renewing the registration: {}", renewed.message());
  }
}

}  // namespace supercluster::worker
