#include "router/registration.h"

#include <spdlog/spdlog.h>

namespace supercluster::router {

RouterRegistration::RouterRegistration(store::Store& store, store::RouterEndpoint record,
                                       std::chrono::seconds ttl)
    : store_(store), record_(std::move(record)), ttl_(ttl) {}

base::Result<std::unique_ptr<RouterRegistration>> RouterRegistration::Start(
    store::Store& store, store::RouterEndpoint record, std::chrono::seconds ttl) {
  std::unique_ptr<RouterRegistration> registration(
      new RouterRegistration(store, std::move(record), std::max(ttl, std::chrono::seconds(1))));
  SC_RETURN_IF_ERROR(registration->Register());
  registration->thread_ = std::thread([raw = registration.get()] { raw->Run(); });
  return registration;
}

base::Status RouterRegistration::Register() {
  base::Result<store::LeaseId> lease = store_.GrantLease(ttl_);
  if (!lease.ok()) return lease.status().WithContext("router registration: lease");
  base::Result<int64_t> put = store_.Put(store::keys::Router(record_.region, record_.id),
                                         store::Encode(record_), *lease);
  if (!put.ok()) return put.status().WithContext("router registration: write record");
  lease_ = *lease;
  return base::Status::Ok();
}

void RouterRegistration::Run() {
  std::unique_lock<std::mutex> lock(mutex_);
  // A third of the TTL: two keep-alives may be lost before the record vanishes.
  auto interval = std::chrono::duration_cast<std::chrono::milliseconds>(ttl_) / 3;
  while (!wake_.wait_for(lock, interval, [this] { return stopping_; })) {
    lock.unlock();
    base::Status alive = store_.KeepAlive(lease_);
    if (!alive.ok()) {
      spdlog::warn("router registration: keep-alive failed ({}); registering again",
                   alive.message());
      if (base::Status again = Register(); !again.ok()) {
        spdlog::warn("router registration: {}", again.message());
      }
    }
    lock.lock();
  }
}

void RouterRegistration::Revoke() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) return;
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (lease_ != 0) {
    if (base::Status revoked = store_.RevokeLease(lease_); !revoked.ok()) {
      spdlog::warn("router registration: revoking the lease: {}", revoked.message());
    }
    lease_ = 0;
  }
}

RouterRegistration::~RouterRegistration() { Revoke(); }

}  // namespace supercluster::router
