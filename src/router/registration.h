// A router's entry in the store: a store::RouterEndpoint at keys::Router(region, id) under
// a lease, kept alive from a thread of its own, so that the record vanishes when the router
// dies and other routers (spills, the global tier) stop sending to it. If the lease is lost
// (the store was unreachable longer than the TTL) a new one is granted and the record
// written again. Revoke() (on drain) removes the record at once.
//
// Callers: `supercluster router`. Threading: Revoke and the destructor from one thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

#include "base/status.h"
#include "store/records.h"
#include "store/store.h"

namespace supercluster::router {

class RouterRegistration {
 public:
  // Grants the lease and writes the record; fails if the store does not answer.
  // Precondition: `store` outlives the registration.
  static base::Result<std::unique_ptr<RouterRegistration>> Start(store::Store& store,
                                                                 store::RouterEndpoint record,
                                                                 std::chrono::seconds ttl);
  ~RouterRegistration();  // Revoke()

  void Revoke();

 private:
  RouterRegistration(store::Store& store, store::RouterEndpoint record, std::chrono::seconds ttl);
  base::Status Register();  // grant + put
  void Run();

  store::Store& store_;
  const store::RouterEndpoint record_;
  const std::chrono::seconds ttl_;
  store::LeaseId lease_ = 0;  // touched by the keep-alive thread, and by Revoke after joining it

  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace supercluster::router
