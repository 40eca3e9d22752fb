#include "attest/nsm_attestor.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cstring>

#include "attest/cbor.h"
#include "attest/nitro_document.h"

namespace supercluster::attest {
namespace {

// The NSM driver's user ABI (Linux include/uapi/linux/nsm.h): two {address, length}
// buffers; on return the response length is the bytes the NSM wrote.
struct NsmIovec {
  uint64_t address;
  uint64_t length;
};
struct NsmRaw {
  NsmIovec request;
  NsmIovec response;
};
constexpr unsigned kNsmMagic = 0x0A;
constexpr unsigned long kNsmIoctlRaw = _IOWR(kNsmMagic, 0x0, NsmRaw);

CborValue OptionalBytes(const std::optional<Bytes>& value) {
  return value ? CborValue::ByteString(*value) : CborValue::Null();
}

}  // namespace

base::Result<Bytes> EncodeNsmAttestationRequest(const std::optional<Bytes>& user_data,
                                                const std::optional<Bytes>& nonce,
                                                const std::optional<Bytes>& public_key) {
  SC_RETURN_IF_ERROR(CheckAttestationRequest(user_data, nonce, public_key));
  CborValue body = CborValue::Map({
      {CborValue::Text("user_data"), OptionalBytes(user_data)},
      {CborValue::Text("nonce"), OptionalBytes(nonce)},
      {CborValue::Text("public_key"), OptionalBytes(public_key)},
  });
  return EncodeCbor(CborValue::Map({{CborValue::Text("Attestation"), std::move(body)}}));
}

base::Result<Bytes> DecodeNsmAttestationResponse(ByteView response) {
  auto decoded = DecodeCbor(response, {.max_depth = 4, .max_string_bytes = kNsmMaxResponseBytes,
                                       .max_items = 16});
  if (!decoded.ok()) return base::DataLoss("NSM response: " + decoded.status().message());
  if (!decoded->is_map() || decoded->entries().size() != 1) {
    return base::DataLoss("NSM response: expected a map with one entry");
  }
  if (const CborValue* error = decoded->FindText("Error")) {
    std::string code = error->is_text() ? error->text() : "(" + error->TypeName() + ")";
    if (code == "Busy") return base::Unavailable("NSM is busy (Error: Busy); retry");
    return base::Internal("NSM refused the attestation request: Error " + code);
  }
  const CborValue* attestation = decoded->FindText("Attestation");
  if (attestation == nullptr || !attestation->is_map() || attestation->entries().size() != 1) {
    return base::DataLoss("NSM response: expected {\"Attestation\": {\"document\": bstr}}");
  }
  const CborValue* document = attestation->FindText("document");
  if (document == nullptr || !document->is_bytes() || document->bytes().empty()) {
    return base::DataLoss("NSM response: 'document' is missing or not a non-empty byte string");
  }
  return document->bytes();
}

base::Result<std::unique_ptr<NsmAttestor>> NsmAttestor::Open(const std::string& device_path) {
  int fd = ::open(device_path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    int error = errno;
    std::string why = device_path + ": " + std::strerror(error);
    if (error == ENOENT || error == ENODEV || error == ENXIO) {
      return base::Unavailable("the nitro attestor needs the Nitro Secure Module (" + why +
                               "); it runs only inside an AWS Nitro Enclave (use the dev "
                               "attestor elsewhere)");
    }
    return base::PermissionDenied("opening the Nitro Secure Module: " + why);
  }
  return std::unique_ptr<NsmAttestor>(new NsmAttestor(fd, device_path));
}

NsmAttestor::~NsmAttestor() { ::close(fd_); }

base::Result<Bytes> NsmAttestor::Attest(const std::optional<Bytes>& user_data,
                                        const std::optional<Bytes>& nonce,
                                        const std::optional<Bytes>& public_key) {
  SC_ASSIGN_OR_RETURN(Bytes request, EncodeNsmAttestationRequest(user_data, nonce, public_key));
  if (request.size() > kNsmMaxRequestBytes) {
    return base::InvalidArgument("NSM request of " + std::to_string(request.size()) +
                                 " bytes exceeds the driver's 4096");
  }
  Bytes response(kNsmMaxResponseBytes);
  NsmRaw raw = {{reinterpret_cast<uint64_t>(request.data()), request.size()},
                {reinterpret_cast<uint64_t>(response.data()), response.size()}};
  if (::ioctl(fd_, kNsmIoctlRaw, &raw) != 0) {
    return base::Unavailable("NSM ioctl on " + device_path_ + ": " + std::strerror(errno));
  }
  if (raw.response.length > response.size()) {
    return base::DataLoss("NSM reported a response longer than its buffer");
  }
  response.resize(raw.response.length);
  return DecodeNsmAttestationResponse(response);
}

}  // namespace supercluster::attest
