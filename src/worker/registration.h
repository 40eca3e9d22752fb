// A worker's entry in the cluster state (docs/data-plane.md, "Who is who"): its
// store::Instance record at keys::Instance(region, id), written under a lease so that it
// vanishes when the worker dies. `supercluster worker` starts one once the model is loaded
// and attested, and stops it when it drains.
//
// A thread renews the lease (three times per TTL) and, every attestation_refresh, asks the
// enclave for a fresh document and rewrites the record. When the store is unreachable it
// keeps trying; when the lease was lost meanwhile (expired while the store was away) it
// takes a new one and writes the record again.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "base/status.h"
#include "crypto/bytes.h"
#include "store/records.h"
#include "store/store.h"

namespace supercluster::worker {

struct RegistrationOptions {
  std::chrono::seconds lease_ttl{10};
  std::chrono::milliseconds attestation_refresh{60000};
};

class Registration {
 public:
  // Returns a fresh attestation document of the worker's enclave.
  using Attest = std::function<base::Result<crypto::Bytes>()>;
  // Told every new document (the worker serves it at GET /v1/attestation).
  using OnDocument = std::function<void(const crypto::Bytes&)>;

  // Attests, writes `record` (state serving, the document, updated_unix_ms) under a new
  // lease, and starts the renewing thread. `store` must outlive the Registration.
  static base::Result<std::unique_ptr<Registration>> Start(store::Store& store,
                                                           store::Instance record, Attest attest,
                                                           OnDocument on_document,
                                                           RegistrationOptions options);
  ~Registration();  // Stop()s

  // Rewrites the record with state draining (routers stop choosing this worker).
  base::Status MarkDraining();
  // Stops the thread and revokes the lease, which deletes the record. Idempotent.
  void Stop();

 private:
  Registration(store::Store& store, store::Instance record, Attest attest, OnDocument on_document,
               RegistrationOptions options);
  base::Status Refresh();            // attest and rewrite
  base::Status WriteRecordLocked();  // mutex_ held
  void Run();

  store::Store& store_;
  const Attest attest_;
  const OnDocument on_document_;
  const RegistrationOptions options_;

  std::mutex mutex_;
  std::condition_variable wake_;
  store::Instance record_;
  store::LeaseId lease_ = 0;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace supercluster::worker
