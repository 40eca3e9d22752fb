#include "attest/cose_sign1.h"

namespace supercluster::attest {
namespace {

// COSE labels and values (RFC 9052 section 3.1, RFC 9053 section 2.1).
constexpr int64_t kHeaderAlgorithm = 1;
constexpr int64_t kAlgorithmEs384 = -35;

// Large enough for any attestation document (AWS: payload at most 16 KiB), small enough
// that a hostile message cannot make the decoder allocate much.
const CborLimits kCoseLimits = {.max_depth = 16, .max_string_bytes = 64 * 1024, .max_items = 4096};

base::Status Malformed(const std::string& what) {
  return base::InvalidArgument("COSE_Sign1: " + what);
}

}  // namespace

const Bytes& Es384ProtectedHeader() {
  static const Bytes header = EncodeCbor(CborValue::Map(
      {{CborValue::Int(kHeaderAlgorithm), CborValue::Int(kAlgorithmEs384)}}));
  return header;
}

base::Result<CoseSign1> DecodeCoseSign1(ByteView message) {
  auto decoded = DecodeCbor(message, kCoseLimits);
  if (!decoded.ok()) return Malformed(decoded.status().message());
  const CborValue* array = &*decoded;
  if (array->is_tag()) {
    if (array->number() != kCoseSign1Tag) {
      return Malformed("tag " + std::to_string(array->number()) + " is not COSE_Sign1 (18)");
    }
    array = &array->items()[0];
  }
  if (!array->is_array() || array->items().size() != 4) {
    return Malformed("expected an array of 4 items, got " +
                     (array->is_array() ? "an array of " + std::to_string(array->items().size()) +
                                              " items"
                                        : "a " + array->TypeName()));
  }
  const std::vector<CborValue>& items = array->items();
  if (!items[0].is_bytes()) return Malformed("protected header is not a byte string");
  if (items[0].bytes() != Es384ProtectedHeader()) {
    return Malformed("protected header must be exactly {1: -35} (ES384), got " +
                     HexOf(items[0].bytes()));
  }
  if (!items[1].is_map()) return Malformed("unprotected header is not a map");
  if (items[1].FindInt(kHeaderAlgorithm) != nullptr) {
    return Malformed("the algorithm must not appear in the unprotected header");
  }
  if (!items[2].is_bytes()) return Malformed("payload is not a byte string (detached payloads are not supported)");
  if (!items[3].is_bytes()) return Malformed("signature is not a byte string");
  if (items[3].bytes().size() != kEs384SignatureSize) {
    return Malformed("an ES384 signature is 96 bytes, got " +
                     std::to_string(items[3].bytes().size()));
  }
  return CoseSign1{items[0].bytes(), items[1], items[2].bytes(), items[3].bytes()};
}

Bytes CoseSign1SigStructure(ByteView protected_header, ByteView payload) {
  return EncodeCbor(CborValue::Array({CborValue::Text("Signature1"),
                                      CborValue::ByteString(protected_header),
                                      CborValue::ByteString(Bytes()),
                                      CborValue::ByteString(payload)}));
}

base::Status VerifyCoseSign1(const CoseSign1& message, const EcP384Key& public_key) {
  return public_key.Verify(CoseSign1SigStructure(message.protected_header, message.payload),
                           message.signature);
}

base::Result<Bytes> SignCoseSign1(ByteView payload, const EcP384Key& private_key, bool tagged) {
  const Bytes& header = Es384ProtectedHeader();
  SC_ASSIGN_OR_RETURN(Bytes signature,
                      private_key.Sign(CoseSign1SigStructure(header, payload)));
  CborValue array = CborValue::Array({CborValue::ByteString(header), CborValue::Map({}),
                                      CborValue::ByteString(payload),
                                      CborValue::ByteString(std::move(signature))});
  return EncodeCbor(tagged ? CborValue::Tag(kCoseSign1Tag, std::move(array)) : array);
}

}  // namespace supercluster::attest
