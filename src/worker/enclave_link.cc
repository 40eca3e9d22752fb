#include "worker/enclave_link.h"

#include <utility>

namespace supercluster::worker {
namespace {

enclave::EnclaveClientOptions ClientOptions(std::chrono::milliseconds reply_timeout) {
  enclave::EnclaveClientOptions options;
  options.reply_timeout = reply_timeout;
  return options;
}

// Codes after which the connection may be out of step with the enclave (a lost or garbled
// reply); it is dropped and reopened. Refusals of the request itself (a replayed or
// malformed envelope) leave it in use.
bool ConnectionSuspect(const base::Status& status) {
  switch (status.code()) {
    case base::StatusCode::kUnavailable:
    case base::StatusCode::kDeadlineExceeded:
    case base::StatusCode::kInternal:
      return true;
    default:
      return false;
  }
}

}  // namespace

EnclaveLink::EnclaveLink(enclave::EnclaveAddress address, int connections,
                         std::chrono::milliseconds reply_timeout)
    : address_(std::move(address)), reply_timeout_(reply_timeout) {
  for (int i = 0; i < connections; ++i) slots_.push_back(std::make_unique<Slot>());
}

base::Result<std::unique_ptr<EnclaveLink>> EnclaveLink::Connect(
    const enclave::EnclaveAddress& address, int connections,
    std::chrono::milliseconds reply_timeout) {
  std::unique_ptr<EnclaveLink> link(new EnclaveLink(address, connections, reply_timeout));
  auto first = enclave::EnclaveClient::Connect(address, ClientOptions(reply_timeout));
  if (!first.ok()) return first.status();  // it names the address
  link->slots_[0]->client = std::move(*first);
  return link;
}

template <typename Call>
auto EnclaveLink::OnConnection(Call&& call)
    -> decltype(call(std::declval<enclave::EnclaveClient&>())) {
  Slot& slot = *slots_[next_.fetch_add(1) % slots_.size()];
  std::lock_guard lock(slot.mutex);
  // The enclave may have closed this connection while it sat idle (to make room for a new
  // one, or on a restart): reconnect now rather than fail the call.
  if (slot.client && slot.client->Closed()) slot.client.reset();
  if (!slot.client) {
    auto connected = enclave::EnclaveClient::Connect(address_, ClientOptions(reply_timeout_));
    if (!connected.ok()) {
      return base::Unavailable("the enclave at " + address_.ToString() +
                               " cannot be reached: " + connected.status().message());
    }
    slot.client = std::move(*connected);
  }
  auto result = call(*slot.client);
  base::Status status;
  if constexpr (std::is_same_v<decltype(result), base::Status>) {
    status = result;
  } else {
    status = result.status();
  }
  if (ConnectionSuspect(status)) slot.client.reset();
  return result;
}

base::Result<enclave::Bytes> EnclaveLink::Attest(enclave::ByteView nonce,
                                                 enclave::ByteView user_data) {
  return OnConnection(
      [&](enclave::EnclaveClient& client) { return client.Attest(nonce, user_data); });
}

base::Result<enclave::EnclaveClient::Opened> EnclaveLink::Open(enclave::ByteView envelope) {
  return OnConnection([&](enclave::EnclaveClient& client) {
    return client.Open(enclave::SealedFormat::kMultiRecipient, envelope);
  });
}

base::Result<enclave::Bytes> EnclaveLink::Seal(uint64_t context_id, enclave::ByteView chunk,
                                               bool final) {
  return OnConnection(
      [&](enclave::EnclaveClient& client) { return client.Seal(context_id, chunk, final); });
}

base::Status EnclaveLink::Close(uint64_t context_id) {
  return OnConnection([&](enclave::EnclaveClient& client) { return client.Close(context_id); });
}

}  // namespace supercluster::worker
