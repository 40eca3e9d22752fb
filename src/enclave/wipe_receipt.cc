#include "enclave/wipe_receipt.h"

#include <nlohmann/json.hpp>

#include "attest/cose_sign1.h"

namespace supercluster::enclave {
namespace {
constexpr std::string_view kReceiptType = "supercluster.wipe-receipt.v1";
}  // namespace

base::Result<crypto::Bytes> SignWipeReceipt(const WipeReceipt& receipt,
                                            const attest::EcP384Key& receipt_key) {
  nlohmann::json payload = {
      {"type", kReceiptType},
      {"hpke_public_key", receipt.hpke_public_key_hex},
      {"wiped_at_ms", receipt.wiped_at_ms},
      {"contexts_opened", receipt.contexts_opened},
      {"contexts_closed", receipt.contexts_closed},
      {"contexts_destroyed", receipt.contexts_destroyed},
      {"requests_refused", receipt.requests_refused},
      {"destroyed", receipt.destroyed},
  };
  return attest::SignCoseSign1(crypto::AsBytes(payload.dump()), receipt_key);
}

base::Result<WipeReceipt> VerifyWipeReceipt(crypto::ByteView receipt,
                                            crypto::ByteView receipt_key_point) {
  SC_ASSIGN_OR_RETURN(attest::EcP384Key key, attest::EcP384Key::FromPublicPoint(receipt_key_point));
  auto message = attest::DecodeCoseSign1(receipt);
  if (!message.ok()) return message.status().WithContext("wipe receipt");
  base::Status signature = attest::VerifyCoseSign1(*message, key);
  if (!signature.ok()) {
    return base::PermissionDenied("wipe receipt: signature does not verify with the enclave's "
                                  "receipt key: " + signature.message());
  }
  nlohmann::json payload = nlohmann::json::parse(crypto::AsText(message->payload), nullptr,
                                                 /*allow_exceptions=*/false);
  if (!payload.is_object() || payload.value("type", "") != kReceiptType) {
    return base::InvalidArgument("wipe receipt: payload is not a " + std::string(kReceiptType));
  }
  try {
    WipeReceipt parsed;
    parsed.hpke_public_key_hex = payload.at("hpke_public_key").get<std::string>();
    parsed.wiped_at_ms = payload.at("wiped_at_ms").get<int64_t>();
    parsed.contexts_opened = payload.at("contexts_opened").get<uint64_t>();
    parsed.contexts_closed = payload.at("contexts_closed").get<uint64_t>();
    parsed.contexts_destroyed = payload.at("contexts_destroyed").get<uint64_t>();
    parsed.requests_refused = payload.at("requests_refused").get<uint64_t>();
    parsed.destroyed = payload.at("destroyed").get<std::vector<std::string>>();
    return parsed;
  } catch (const nlohmann::json::exception& error) {
    return base::InvalidArgument(std::string("wipe receipt: ") + error.what());
  }
}

}  // namespace supercluster::enclave
