// COSE_Sign1 (RFC 9052, formerly RFC 8152) restricted to ES384, the envelope of AWS Nitro
// attestation documents and of the enclave's signed statements (wipe receipts).
//
// Decoding accepts the untagged array or tag 18, and nothing else: exactly four items
// [protected bstr, unprotected map, payload bstr, signature bstr], the protected header
// exactly the bytes of {1: -35} (alg ES384; any other header or encoding is refused so
// there is one way to read a signed message), and a 96-byte signature. The signature is
// over the Sig_structure ["Signature1", protected, external_aad = h'', payload].
#pragma once

#include "attest/bytes.h"
#include "attest/cbor.h"
#include "attest/ec_p384_key.h"
#include "base/status.h"

namespace supercluster::attest {

inline constexpr uint64_t kCoseSign1Tag = 18;

struct CoseSign1 {
  Bytes protected_header;  // the serialized {1: -35}: a1 01 38 22
  CborValue unprotected;   // a map (empty in Nitro documents)
  Bytes payload;
  Bytes signature;         // r || s, 96 bytes
};

// The serialized protected header {1: -35}.
const Bytes& Es384ProtectedHeader();

// Parses and checks the structure (not the signature). kInvalidArgument saying what is wrong.
base::Result<CoseSign1> DecodeCoseSign1(ByteView message);

// CBOR of ["Signature1", protected_header, h'', payload]: the bytes the signature covers.
Bytes CoseSign1SigStructure(ByteView protected_header, ByteView payload);

// OK if message.signature is a valid ES384 signature by `public_key` over the
// Sig_structure; kPermissionDenied otherwise.
base::Status VerifyCoseSign1(const CoseSign1& message, const EcP384Key& public_key);

// Signs `payload` with `private_key` (which must have its private part) and returns the
// encoded COSE_Sign1, untagged (as AWS's NSM produces) unless `tagged`.
base::Result<Bytes> SignCoseSign1(ByteView payload, const EcP384Key& private_key,
                                  bool tagged = false);

}  // namespace supercluster::attest
