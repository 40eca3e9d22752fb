#include "attest/nitro_document.h"

#include <gtest/gtest.h>

#include "attest/cbor.h"
#include "attest/cose_sign1.h"
#include "attest/test_util.h"
#include "base/shared_testdata.h"

namespace supercluster::attest {
namespace {

AttestationDocument ValidDocument() {
  AttestationDocument document;
  document.module_id = "i-0123456789abcdef0-enc0123456789abcdef";
  document.timestamp_ms = 1736179625472;
  for (uint32_t k = 0; k < 16; ++k) document.pcrs[k] = Bytes(48, static_cast<uint8_t>(k));
  document.certificate = Bytes(600, 0x30);
  document.cabundle = {Bytes(500, 0x31), Bytes(700, 0x32)};
  document.public_key = Bytes(97, 4);
  document.user_data = BytesOf("user");
  document.nonce = Bytes(16, 9);
  return document;
}

TEST(NitroDocumentTest, EncodeDecodeRoundTrip) {
  AttestationDocument document = ValidDocument();
  auto encoded = EncodeAttestationDocument(document);
  ASSERT_TRUE(encoded.ok()) << encoded.status().ToString();
  auto decoded = DecodeAttestationDocument(*encoded);
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(*decoded, document);
  // Keys in AWS's order: the first is module_id.
  EXPECT_EQ(Bytes(encoded->begin(), encoded->begin() + 11), testing::Hex("a9 69 6d6f64756c655f6964"));
  document.public_key.reset();
  document.user_data.reset();
  document.nonce.reset();
  auto without_optional = DecodeAttestationDocument(*EncodeAttestationDocument(document));
  ASSERT_TRUE(without_optional.ok());
  EXPECT_EQ(*without_optional, document);
}

// Each real document's payload decodes, re-encodes to the identical bytes except for
// the optional fields AWS writes as null (which we omit).
TEST(NitroDocumentTest, RealDocumentsDecode) {
  for (const char* name : {"nitro/doc-1.cbor", "nitro/doc-2.cbor", "nitro/doc-4.cbor"}) {
    auto path = supercluster::testing::SharedTestDataFile(name);
    if (path.empty()) GTEST_SKIP() << supercluster::testing::SharedTestDataMissing(name);
    auto cose = DecodeCoseSign1(testing::ReadFileBytes(path));
    ASSERT_TRUE(cose.ok()) << cose.status().ToString();
    auto document = DecodeAttestationDocument(cose->payload);
    ASSERT_TRUE(document.ok()) << name << ": " << document.status().ToString();
    EXPECT_EQ(document->digest, "SHA384");
    EXPECT_EQ(document->pcrs.at(0).size(), 48u);
    if (document->public_key && document->user_data && document->nonce) {
      EXPECT_EQ(*EncodeAttestationDocument(*document), cose->payload) << name;
    }
  }
}

// Replaces (or with `remove`, drops) one key of a valid document's map.
Bytes WithField(const std::string& key, std::optional<CborValue> value) {
  auto decoded = DecodeCbor(*EncodeAttestationDocument(ValidDocument()));
  std::vector<CborEntry> entries;
  bool replaced = false;
  for (const CborEntry& entry : decoded->entries()) {
    if (entry.key.is_text() && entry.key.text() == key) {
      replaced = true;
      if (value) entries.push_back({entry.key, *value});
    } else {
      entries.push_back(entry);
    }
  }
  if (!replaced && value) entries.push_back({CborValue::Text(key), *value});
  return EncodeCbor(CborValue::Map(entries));
}

void ExpectRejected(const Bytes& payload, const std::string& message_part) {
  auto decoded = DecodeAttestationDocument(payload);
  ASSERT_FALSE(decoded.ok()) << "accepted; wanted: " << message_part;
  EXPECT_EQ(decoded.status().code(), base::StatusCode::kInvalidArgument);
  EXPECT_NE(decoded.status().message().find(message_part), std::string::npos)
      << decoded.status().message();
}

CborValue PcrMap(std::vector<std::pair<uint64_t, size_t>> index_and_size) {
  std::vector<CborEntry> entries;
  for (auto [index, size] : index_and_size) {
    entries.push_back({CborValue::Unsigned(index), CborValue::ByteString(Bytes(size, 1))});
  }
  return CborValue::Map(entries);
}

TEST(NitroDocumentTest, EveryFieldRuleIsEnforced) {
  for (const char* required : {"module_id", "digest", "timestamp", "pcrs", "certificate", "cabundle"}) {
    ExpectRejected(WithField(required, std::nullopt), std::string("'") + required + "' is missing");
    ExpectRejected(WithField(required, CborValue::Null()), "must not be null");
  }
  ExpectRejected(WithField("module_id", CborValue::Text("")), "'module_id' must not be empty");
  ExpectRejected(WithField("module_id", CborValue::ByteString(Bytes{1})), "'module_id' must be a text string");
  ExpectRejected(WithField("digest", CborValue::Text("SHA256")), "must be \"SHA384\"");
  ExpectRejected(WithField("digest", CborValue::Text("sha384")), "must be \"SHA384\"");
  ExpectRejected(WithField("timestamp", CborValue::Unsigned(0)), "'timestamp' must be greater than 0");
  ExpectRejected(WithField("timestamp", CborValue::Int(-5)), "'timestamp' must be an unsigned integer");
  ExpectRejected(WithField("pcrs", CborValue::Map({})), "has 0 entries, must have 1..32");
  ExpectRejected(WithField("pcrs", PcrMap({{32, 48}})), "not an integer 0..31");
  ExpectRejected(WithField("pcrs", PcrMap({{0, 47}})), "'pcrs[0]' is 47 bytes, must be 32, 48 or 64");
  ExpectRejected(WithField("pcrs", PcrMap({{3, 0}})), "'pcrs[3]' is 0 bytes");
  ExpectRejected(WithField("pcrs", CborValue::Map({{CborValue::Text("0"), CborValue::ByteString(Bytes(48))}})),
                 "not an integer 0..31");
  ExpectRejected(WithField("pcrs", CborValue::Map({{CborValue::Int(-1), CborValue::ByteString(Bytes(48))}})),
                 "not an integer 0..31");
  EXPECT_TRUE(DecodeAttestationDocument(WithField("pcrs", PcrMap({{0, 32}, {31, 64}}))).ok());
  ExpectRejected(WithField("certificate", CborValue::ByteString(Bytes())), "'certificate' is 0 bytes, must be 1..1024");
  ExpectRejected(WithField("certificate", CborValue::ByteString(Bytes(1025, 1))), "is 1025 bytes");
  EXPECT_TRUE(DecodeAttestationDocument(WithField("certificate", CborValue::ByteString(Bytes(1024, 1)))).ok());
  ExpectRejected(WithField("cabundle", CborValue::Array({})), "'cabundle' must not be empty");
  ExpectRejected(WithField("cabundle", CborValue::Array({CborValue::ByteString(Bytes(10)), CborValue::ByteString(Bytes())})),
                 "'cabundle[1]' is 0 bytes");
  ExpectRejected(WithField("cabundle", CborValue::Array({CborValue::ByteString(Bytes(1025))})), "'cabundle[0]' is 1025 bytes");
  ExpectRejected(WithField("cabundle", CborValue::Array({CborValue::Text("cert")})), "'cabundle[0]' must be a byte string");
  ExpectRejected(WithField("cabundle", CborValue::ByteString(Bytes(5))), "'cabundle' must be an array");
  ExpectRejected(WithField("public_key", CborValue::ByteString(Bytes(1025))), "'public_key' is 1025 bytes");
  ExpectRejected(WithField("user_data", CborValue::ByteString(Bytes(513))), "'user_data' is 513 bytes, must be 0..512");
  ExpectRejected(WithField("nonce", CborValue::ByteString(Bytes(513))), "'nonce' is 513 bytes, must be 0..512");
  ExpectRejected(WithField("nonce", CborValue::Text("n")), "'nonce' must be a byte string");
  EXPECT_TRUE(DecodeAttestationDocument(WithField("user_data", CborValue::ByteString(Bytes(512)))).ok());
  EXPECT_TRUE(DecodeAttestationDocument(WithField("nonce", CborValue::ByteString(Bytes()))).ok());
  ExpectRejected(WithField("extra", CborValue::Unsigned(1)), "unknown key 'extra'");
  ExpectRejected(testing::Hex("a1 01 02"), "keys must be text");
  ExpectRejected(testing::Hex("80"), "must be a map");
  ExpectRejected(Bytes(), "payload is 0 bytes");
  ExpectRejected(Bytes(16385, 0), "payload is 16385 bytes");
}

TEST(NitroDocumentTest, NullOptionalFieldsMeanAbsent) {
  Bytes payload = WithField("nonce", CborValue::Null());
  auto decoded = DecodeAttestationDocument(payload);
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_FALSE(decoded->nonce.has_value());
  EXPECT_TRUE(decoded->user_data.has_value());
}

TEST(NitroDocumentTest, EncodeRefusesInvalidDocuments) {
  AttestationDocument document = ValidDocument();
  document.pcrs[40] = Bytes(48);
  EXPECT_FALSE(EncodeAttestationDocument(document).ok());
  document = ValidDocument();
  document.user_data = Bytes(513);
  EXPECT_FALSE(EncodeAttestationDocument(document).ok());
  document = ValidDocument();
  document.cabundle.clear();
  EXPECT_FALSE(EncodeAttestationDocument(document).ok());
}

}  // namespace
}  // namespace supercluster::attest
