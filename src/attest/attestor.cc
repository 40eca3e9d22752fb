#include "attest/attestor.h"

#include "attest/nitro_document.h"

namespace supercluster::attest {

base::Status CheckAttestationRequest(const std::optional<Bytes>& user_data,
                                     const std::optional<Bytes>& nonce,
                                     const std::optional<Bytes>& public_key) {
  if (user_data && user_data->size() > kMaxUserDataBytes) {
    return base::InvalidArgument("attestation user_data is " + std::to_string(user_data->size()) +
                                 " bytes, at most 512 allowed");
  }
  if (nonce && nonce->size() > kMaxNonceBytes) {
    return base::InvalidArgument("attestation nonce is " + std::to_string(nonce->size()) +
                                 " bytes, at most 512 allowed");
  }
  if (public_key && (public_key->empty() || public_key->size() > kMaxPublicKeyBytes)) {
    return base::InvalidArgument("attestation public_key is " + std::to_string(public_key->size()) +
                                 " bytes, must be 1..1024");
  }
  return base::Status::Ok();
}

}  // namespace supercluster::attest
