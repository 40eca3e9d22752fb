#include "enclave/enclave_client.h"

#include <poll.h>
#include <unistd.h>

#include "crypto/secret.h"
#include "enclave/frame_io.h"

namespace supercluster::enclave {

base::Result<std::unique_ptr<EnclaveClient>> EnclaveClient::Connect(const EnclaveAddress& address,
                                                                    EnclaveClientOptions options) {
  SC_ASSIGN_OR_RETURN(int fd, ConnectTo(address));
  return std::unique_ptr<EnclaveClient>(new EnclaveClient(fd, options));
}

EnclaveClient::~EnclaveClient() { ::close(fd_); }

base::Result<std::vector<Bytes>> EnclaveClient::Call(const Request& request) {
  std::lock_guard lock(mutex_);
  if (broken_) return base::Unavailable("the connection to the enclave failed earlier");
  Bytes body = EncodeRequest(request);
  base::Status written = WriteFrame(fd_, body, options_.reply_timeout);
  crypto::Zeroize(body.data(), body.size());
  if (!written.ok()) {
    broken_ = true;
    return written.WithContext("enclave " + std::string(OpName(request.op)));
  }
  auto frame = ReadReplyFrame(fd_, options_.max_frame_bytes, options_.reply_timeout);
  if (!frame.ok()) {
    broken_ = true;
    return base::Unavailable("enclave " + std::string(OpName(request.op)) +
                             ": no reply: " + frame.status().message());
  }
  auto reply = DecodeReply(*frame);
  if (!reply.ok()) {
    broken_ = true;
    return reply.status();
  }
  if (!reply->status.ok()) return reply->status;
  return std::move(reply->fields);
}

bool EnclaveClient::Closed() {
  std::lock_guard lock(mutex_);
  if (broken_) return true;
  // Between calls the enclave sends nothing, so anything to read is its hang-up (or bytes
  // out of step with the protocol, just as fatal).
  pollfd poll_fd{fd_, POLLIN, 0};
  if (::poll(&poll_fd, 1, 0) != 0) broken_ = true;
  return broken_;
}

namespace {
base::Status ExpectFields(const std::vector<Bytes>& fields, size_t count, const char* op) {
  if (fields.size() != count) {
    return base::DataLoss(std::string("enclave ") + op + " reply has " +
                          std::to_string(fields.size()) + " fields, expected " +
                          std::to_string(count));
  }
  return base::Status::Ok();
}
}  // namespace

base::Result<Bytes> EnclaveClient::Attest(ByteView nonce, ByteView user_data) {
  SC_ASSIGN_OR_RETURN(auto fields, Call({Op::kAttest, {Bytes(nonce.begin(), nonce.end()),
                                                       Bytes(user_data.begin(), user_data.end())}}));
  SC_RETURN_IF_ERROR(ExpectFields(fields, 1, "attest"));
  return std::move(fields[0]);
}

base::Result<EnclaveClient::Opened> EnclaveClient::Open(SealedFormat format, ByteView sealed) {
  SC_ASSIGN_OR_RETURN(auto fields, Call({Op::kOpen, {Bytes{static_cast<uint8_t>(format)},
                                                     Bytes(sealed.begin(), sealed.end())}}));
  SC_RETURN_IF_ERROR(ExpectFields(fields, 2, "open"));
  SC_ASSIGN_OR_RETURN(uint64_t id, DecodeContextId(fields[0]));
  return Opened{id, std::move(fields[1])};
}

base::Result<Bytes> EnclaveClient::Seal(uint64_t context_id, ByteView chunk, bool final) {
  SC_ASSIGN_OR_RETURN(auto fields,
                      Call({Op::kSeal, {EncodeContextId(context_id), Bytes{final ? uint8_t{1} : uint8_t{0}},
                                        Bytes(chunk.begin(), chunk.end())}}));
  SC_RETURN_IF_ERROR(ExpectFields(fields, 1, "seal"));
  return std::move(fields[0]);
}

base::Status EnclaveClient::Close(uint64_t context_id) {
  auto fields = Call({Op::kClose, {EncodeContextId(context_id)}});
  if (!fields.ok()) return fields.status();
  return ExpectFields(*fields, 0, "close");
}

base::Result<Bytes> EnclaveClient::Wipe() {
  SC_ASSIGN_OR_RETURN(auto fields, Call({Op::kWipe, {}}));
  SC_RETURN_IF_ERROR(ExpectFields(fields, 1, "wipe"));
  return std::move(fields[0]);
}

}  // namespace supercluster::enclave
