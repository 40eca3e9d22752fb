// The worker's side of the enclave link: one connection, one request at a time (calls from
// several threads are serialised). The worker hands sealed requests in and gets plaintext
// out, and hands answer chunks in and gets sealed chunks out; it never holds a key.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>

#include "base/status.h"
#include "enclave/protocol.h"
#include "enclave/socket_address.h"

namespace supercluster::enclave {

struct EnclaveClientOptions {
  size_t max_frame_bytes = kDefaultMaxFrameBytes;
  std::chrono::milliseconds reply_timeout{std::chrono::seconds(10)};
};

class EnclaveClient {
 public:
  static base::Result<std::unique_ptr<EnclaveClient>> Connect(const EnclaveAddress& address,
                                                              EnclaveClientOptions options = {});
  ~EnclaveClient();

  base::Result<Bytes> Attest(ByteView nonce, ByteView user_data);
  struct Opened {
    uint64_t context_id = 0;
    Bytes payload;
  };
  base::Result<Opened> Open(SealedFormat format, ByteView sealed);
  base::Result<Bytes> Seal(uint64_t context_id, ByteView chunk, bool final);
  base::Status Close(uint64_t context_id);
  base::Result<Bytes> Wipe();

  // Sends one request and returns the reply's fields (or its error). A transport failure
  // leaves the client unusable: every later call fails.
  base::Result<std::vector<Bytes>> Call(const Request& request);

  // True if this connection can no longer be used: a call failed, or the enclave closed it
  // between calls (it restarted, or closed this idle connection to make room for another).
  // Asking before a call lets the caller reconnect instead of losing the request.
  bool Closed();

 private:
  EnclaveClient(int fd, EnclaveClientOptions options) : fd_(fd), options_(options) {}
  std::mutex mutex_;
  int fd_;
  EnclaveClientOptions options_;
  bool broken_ = false;
};

}  // namespace supercluster::enclave
