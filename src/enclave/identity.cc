#include "enclave/identity.h"

#include "crypto/wire.h"

namespace supercluster::enclave {
namespace {
constexpr std::string_view kMagic = "SCE1";
constexpr size_t kReceiptKeyPointSize = 97;
}  // namespace

crypto::Bytes EnclaveIdentity::Encode() const {
  crypto::WireWriter out;
  out.Append(crypto::AsBytes(kMagic));
  crypto::Bytes config = key_config.Encode();
  out.U16(static_cast<uint16_t>(config.size()));
  out.Append(config);
  out.U16(static_cast<uint16_t>(receipt_key_point.size()));
  out.Append(receipt_key_point);
  return out.Take();
}

base::Result<EnclaveIdentity> EnclaveIdentity::Parse(crypto::ByteView bytes) {
  crypto::WireReader reader(bytes);
  crypto::ByteView magic, config, point;
  uint16_t config_length = 0, point_length = 0;
  if (!reader.ReadBytes(kMagic.size(), &magic) || crypto::AsText(magic) != kMagic) {
    return base::InvalidArgument("enclave identity: not an SCE1 identity");
  }
  if (!reader.ReadU16(&config_length) || !reader.ReadBytes(config_length, &config) ||
      !reader.ReadU16(&point_length) || !reader.ReadBytes(point_length, &point)) {
    return base::InvalidArgument("enclave identity: truncated");
  }
  if (reader.size() != 0) return base::InvalidArgument("enclave identity: trailing bytes");
  if (point.size() != kReceiptKeyPointSize || point[0] != 0x04) {
    return base::InvalidArgument("enclave identity: receipt key is not an uncompressed P-384 point");
  }
  EnclaveIdentity identity;
  SC_ASSIGN_OR_RETURN(identity.key_config, crypto::OhttpKeyConfig::Parse(config));
  identity.receipt_key_point.assign(point.begin(), point.end());
  return identity;
}

}  // namespace supercluster::enclave
