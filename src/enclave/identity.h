// What an enclave puts in its attestation document's public_key field: its OHTTP key
// configuration (the HPKE key clients seal requests to) and the public half of the key that
// signs its wipe receipts. Both are thereby bound to the enclave's measurements.
//
//   identity = "SCE1" || u16 length || key config (RFC 9458 section 3.1)
//                     || u16 length || receipt key (X9.62 uncompressed P-384 point)
//
// The client library reads it from a verified document; the enclave writes it.
#pragma once

#include "base/status.h"
#include "crypto/bytes.h"
#include "crypto/ohttp.h"

namespace supercluster::enclave {

struct EnclaveIdentity {
  crypto::OhttpKeyConfig key_config;
  crypto::Bytes receipt_key_point;  // 97 bytes

  crypto::Bytes Encode() const;
  // Strict: wrong magic, lengths or trailing bytes are kInvalidArgument.
  static base::Result<EnclaveIdentity> Parse(crypto::ByteView bytes);
};

}  // namespace supercluster::enclave
