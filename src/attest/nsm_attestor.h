// The `nitro` attestor: asks the Nitro Secure Module for an attestation document through
// the Linux NSM driver (/dev/nsm, ioctl NSM_IOCTL_RAW from include/uapi/linux/nsm.h).
// Runs only inside a Nitro Enclave; elsewhere Open() fails with kUnavailable.
//
// The NSM speaks CBOR: the request is {"Attestation": {"user_data": bstr/null, "nonce":
// bstr/null, "public_key": bstr/null}} and the answer {"Attestation": {"document": bstr}}
// or {"Error": "<ErrorCode>"}. The encoding and decoding are separate functions so tests
// can check them without the device.
#pragma once

#include <memory>
#include <string>

#include "attest/attestor.h"

namespace supercluster::attest {

inline constexpr const char* kNsmDevicePath = "/dev/nsm";
inline constexpr size_t kNsmMaxRequestBytes = 0x1000;   // NSM_REQUEST_MAX_SIZE
inline constexpr size_t kNsmMaxResponseBytes = 0x3000;  // NSM_RESPONSE_MAX_SIZE

// CBOR of the NSM Attestation request.
base::Result<Bytes> EncodeNsmAttestationRequest(const std::optional<Bytes>& user_data,
                                                const std::optional<Bytes>& nonce,
                                                const std::optional<Bytes>& public_key);

// The document from an NSM Attestation response. {"Error": code} becomes kUnavailable for
// "Busy", else kInternal naming the code; anything else is kDataLoss.
base::Result<Bytes> DecodeNsmAttestationResponse(ByteView response);

class NsmAttestor final : public Attestor {
 public:
  // Opens the NSM device. kUnavailable if it does not exist (not inside an enclave).
  static base::Result<std::unique_ptr<NsmAttestor>> Open(const std::string& device_path = kNsmDevicePath);
  ~NsmAttestor() override;

  base::Result<Bytes> Attest(const std::optional<Bytes>& user_data,
                             const std::optional<Bytes>& nonce,
                             const std::optional<Bytes>& public_key) override;
  std::string_view Kind() const override { return "nitro"; }

 private:
  NsmAttestor(int fd, std::string device_path) : fd_(fd), device_path_(std::move(device_path)) {}

  int fd_;
  std::string device_path_;
};

}  // namespace supercluster::attest
