#include "attest/nitro_document.h"

#include <set>

#include "attest/cbor.h"

namespace supercluster::attest {
namespace {

const CborLimits kDocumentLimits = {
    .max_depth = 4, .max_string_bytes = kMaxAttestationPayloadBytes, .max_items = 64};

base::Status FieldError(const std::string& field, const std::string& what) {
  return base::InvalidArgument("attestation document: '" + field + "' " + what);
}

base::Status CheckLength(const std::string& field, size_t length, size_t min, size_t max) {
  if (length < min || length > max) {
    return FieldError(field, "is " + std::to_string(length) + " bytes, must be " +
                                 std::to_string(min) + ".." + std::to_string(max));
  }
  return base::Status::Ok();
}

bool IsPcrLength(size_t length) { return length == 32 || length == 48 || length == 64; }

base::Result<Bytes> ExpectBytes(const std::string& field, const CborValue& value) {
  if (!value.is_bytes()) return FieldError(field, "must be a byte string, got " + value.TypeName());
  return value.bytes();
}

base::Status DecodeOptional(const std::string& field, const CborValue& value,
                            std::optional<Bytes>* out) {
  if (value.is_null()) return base::Status::Ok();  // real NSM documents write null for absent
  SC_ASSIGN_OR_RETURN(Bytes bytes, ExpectBytes(field, value));
  *out = std::move(bytes);
  return base::Status::Ok();
}

base::Result<std::map<uint32_t, Bytes>> DecodePcrs(const CborValue& value) {
  if (!value.is_map()) return FieldError("pcrs", "must be a map, got " + value.TypeName());
  std::map<uint32_t, Bytes> pcrs;
  for (const CborEntry& entry : value.entries()) {
    if (!entry.key.is_unsigned() || entry.key.number() >= kMaxPcrCount) {
      return FieldError("pcrs", "has a key that is not an integer 0..31");
    }
    uint32_t index = static_cast<uint32_t>(entry.key.number());
    SC_ASSIGN_OR_RETURN(Bytes pcr, ExpectBytes("pcrs[" + std::to_string(index) + "]", entry.value));
    pcrs[index] = std::move(pcr);
  }
  return pcrs;
}

base::Result<std::vector<Bytes>> DecodeCabundle(const CborValue& value) {
  if (!value.is_array()) return FieldError("cabundle", "must be an array, got " + value.TypeName());
  std::vector<Bytes> certificates;
  for (size_t k = 0; k < value.items().size(); ++k) {
    SC_ASSIGN_OR_RETURN(Bytes der,
                        ExpectBytes("cabundle[" + std::to_string(k) + "]", value.items()[k]));
    certificates.push_back(std::move(der));
  }
  return certificates;
}

}  // namespace

base::Status ValidateAttestationDocument(const AttestationDocument& document) {
  if (document.module_id.empty()) return FieldError("module_id", "must not be empty");
  if (document.digest != "SHA384") {
    return FieldError("digest", "must be \"SHA384\", got \"" + document.digest + "\"");
  }
  if (document.timestamp_ms == 0) return FieldError("timestamp", "must be greater than 0");
  if (document.pcrs.empty() || document.pcrs.size() > kMaxPcrCount) {
    return FieldError("pcrs", "has " + std::to_string(document.pcrs.size()) +
                                  " entries, must have 1..32");
  }
  for (const auto& [index, value] : document.pcrs) {
    std::string field = "pcrs[" + std::to_string(index) + "]";
    if (index >= kMaxPcrCount) return FieldError(field, "index must be 0..31");
    if (!IsPcrLength(value.size())) {
      return FieldError(field, "is " + std::to_string(value.size()) + " bytes, must be 32, 48 or 64");
    }
  }
  SC_RETURN_IF_ERROR(CheckLength("certificate", document.certificate.size(), 1, kMaxCertificateBytes));
  if (document.cabundle.empty()) return FieldError("cabundle", "must not be empty");
  for (size_t k = 0; k < document.cabundle.size(); ++k) {
    SC_RETURN_IF_ERROR(CheckLength("cabundle[" + std::to_string(k) + "]",
                                   document.cabundle[k].size(), 1, kMaxCertificateBytes));
  }
  if (document.public_key) {
    SC_RETURN_IF_ERROR(CheckLength("public_key", document.public_key->size(), 0, kMaxPublicKeyBytes));
  }
  if (document.user_data) {
    SC_RETURN_IF_ERROR(CheckLength("user_data", document.user_data->size(), 0, kMaxUserDataBytes));
  }
  if (document.nonce) {
    SC_RETURN_IF_ERROR(CheckLength("nonce", document.nonce->size(), 0, kMaxNonceBytes));
  }
  return base::Status::Ok();
}

base::Result<AttestationDocument> DecodeAttestationDocument(ByteView payload) {
  if (payload.empty() || payload.size() > kMaxAttestationPayloadBytes) {
    return base::InvalidArgument("attestation document: payload is " +
                                 std::to_string(payload.size()) + " bytes, must be 1..16384");
  }
  auto decoded = DecodeCbor(payload, kDocumentLimits);
  if (!decoded.ok()) return decoded.status().WithContext("attestation document");
  const CborValue& map = *decoded;
  if (!map.is_map()) {
    return base::InvalidArgument("attestation document: must be a map, got " + map.TypeName());
  }
  AttestationDocument document;
  std::set<std::string> seen;
  for (const CborEntry& entry : map.entries()) {
    if (!entry.key.is_text()) {
      return base::InvalidArgument("attestation document: a key is a " + entry.key.TypeName() +
                                   ", keys must be text");
    }
    const std::string& key = entry.key.text();
    const CborValue& value = entry.value;
    seen.insert(key);
    if (key == "public_key" || key == "user_data" || key == "nonce") {
      std::optional<Bytes>* target = key == "public_key" ? &document.public_key
                                     : key == "user_data" ? &document.user_data
                                                          : &document.nonce;
      SC_RETURN_IF_ERROR(DecodeOptional(key, value, target));
      continue;
    }
    if (value.is_null()) return FieldError(key, "must not be null");
    if (key == "module_id") {
      if (!value.is_text()) return FieldError(key, "must be a text string, got " + value.TypeName());
      document.module_id = value.text();
    } else if (key == "digest") {
      if (!value.is_text()) return FieldError(key, "must be a text string, got " + value.TypeName());
      document.digest = value.text();
    } else if (key == "timestamp") {
      if (!value.is_unsigned()) return FieldError(key, "must be an unsigned integer, got " + value.TypeName());
      document.timestamp_ms = value.number();
    } else if (key == "pcrs") {
      SC_ASSIGN_OR_RETURN(document.pcrs, DecodePcrs(value));
    } else if (key == "certificate") {
      SC_ASSIGN_OR_RETURN(document.certificate, ExpectBytes(key, value));
    } else if (key == "cabundle") {
      SC_ASSIGN_OR_RETURN(document.cabundle, DecodeCabundle(value));
    } else {
      return base::InvalidArgument("attestation document: unknown key '" + key + "'");
    }
  }
  for (const char* required : {"module_id", "digest", "timestamp", "pcrs", "certificate", "cabundle"}) {
    if (!seen.count(required)) return FieldError(required, "is missing");
  }
  SC_RETURN_IF_ERROR(ValidateAttestationDocument(document));
  return document;
}

base::Result<Bytes> EncodeAttestationDocument(const AttestationDocument& document) {
  SC_RETURN_IF_ERROR(ValidateAttestationDocument(document));
  std::vector<CborEntry> pcrs;
  for (const auto& [index, value] : document.pcrs) {
    pcrs.push_back({CborValue::Unsigned(index), CborValue::ByteString(value)});
  }
  std::vector<CborValue> cabundle;
  for (const Bytes& der : document.cabundle) cabundle.push_back(CborValue::ByteString(der));
  std::vector<CborEntry> entries = {
      {CborValue::Text("module_id"), CborValue::Text(document.module_id)},
      {CborValue::Text("digest"), CborValue::Text(document.digest)},
      {CborValue::Text("timestamp"), CborValue::Unsigned(document.timestamp_ms)},
      {CborValue::Text("pcrs"), CborValue::Map(std::move(pcrs))},
      {CborValue::Text("certificate"), CborValue::ByteString(document.certificate)},
      {CborValue::Text("cabundle"), CborValue::Array(std::move(cabundle))},
  };
  if (document.public_key) {
    entries.push_back({CborValue::Text("public_key"), CborValue::ByteString(*document.public_key)});
  }
  if (document.user_data) {
    entries.push_back({CborValue::Text("user_data"), CborValue::ByteString(*document.user_data)});
  }
  if (document.nonce) {
    entries.push_back({CborValue::Text("nonce"), CborValue::ByteString(*document.nonce)});
  }
  Bytes encoded = EncodeCbor(CborValue::Map(std::move(entries)));
  if (encoded.size() > kMaxAttestationPayloadBytes) {
    return base::InvalidArgument("attestation document: encodes to " +
                                 std::to_string(encoded.size()) + " bytes, more than 16384");
  }
  return encoded;
}

}  // namespace supercluster::attest
