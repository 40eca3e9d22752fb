// The worker's connections to its enclave: a few EnclaveClient connections used in turn, so
// that several streams can open and seal at once, each reopened after a transport failure
// (the enclave restarted, a reply timed out), or before use if the enclave closed it while
// idle (to make room for another connection). Response contexts live in the enclave, not in
// a connection, so any connection may seal any context. Every call blocks: call from the
// worker's task threads, never from an io thread or the engine's scheduler thread.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <vector>

#include "base/status.h"
#include "enclave/enclave_client.h"
#include "enclave/socket_address.h"

namespace supercluster::worker {

class EnclaveLink {
 public:
  // Connects the first connection now (so a wrong address fails at start); the others on
  // first use. Precondition: connections >= 1.
  static base::Result<std::unique_ptr<EnclaveLink>> Connect(
      const enclave::EnclaveAddress& address, int connections,
      std::chrono::milliseconds reply_timeout);

  base::Result<enclave::Bytes> Attest(enclave::ByteView nonce, enclave::ByteView user_data);
  // Opens a multi-recipient envelope: the response context and the body (the created-at
  // prefix already checked and removed by the enclave).
  base::Result<enclave::EnclaveClient::Opened> Open(enclave::ByteView envelope);
  base::Result<enclave::Bytes> Seal(uint64_t context_id, enclave::ByteView chunk, bool final);
  base::Status Close(uint64_t context_id);

 private:
  struct Slot {
    std::mutex mutex;
    std::unique_ptr<enclave::EnclaveClient> client;  // null: connect on next use
  };
  EnclaveLink(enclave::EnclaveAddress address, int connections,
              std::chrono::milliseconds reply_timeout);

  // Runs `call` on the next connection, reconnecting it first if needed.
  template <typename Call>
  auto OnConnection(Call&& call) -> decltype(call(std::declval<enclave::EnclaveClient&>()));

  const enclave::EnclaveAddress address_;
  const std::chrono::milliseconds reply_timeout_;
  std::vector<std::unique_ptr<Slot>> slots_;
  std::atomic<size_t> next_{0};
};

}  // namespace supercluster::worker
