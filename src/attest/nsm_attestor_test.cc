#include "attest/nsm_attestor.h"

#include <gtest/gtest.h>

#include "attest/test_util.h"
#include "base/shared_testdata.h"

namespace supercluster::attest {
namespace {

using testing::Hex;

// The bytes the NSM expects, written out by hand from the request's CBOR shape
// {"Attestation": {"user_data": ..., "nonce": ..., "public_key": ...}}.
TEST(NsmAttestorTest, EncodesTheAttestationRequest) {
  Bytes with_all = *EncodeNsmAttestationRequest(Bytes{0xaa}, Bytes{0xbb, 0xcc}, Bytes{0x04});
  EXPECT_EQ(with_all, Hex("a1 6b 4174746573746174696f6e"        // {"Attestation":
                          "a3 69 757365725f64617461 41 aa"      //  {"user_data": h'aa',
                          "65 6e6f6e6365 42 bbcc"               //   "nonce": h'bbcc',
                          "6a 7075626c69635f6b6579 41 04"));    //   "public_key": h'04'}}
  Bytes with_none = *EncodeNsmAttestationRequest(std::nullopt, std::nullopt, std::nullopt);
  EXPECT_EQ(with_none, Hex("a1 6b 4174746573746174696f6e"
                           "a3 69 757365725f64617461 f6"
                           "65 6e6f6e6365 f6"
                           "6a 7075626c69635f6b6579 f6"));
  EXPECT_EQ(EncodeNsmAttestationRequest(Bytes(513), std::nullopt, std::nullopt).status().code(),
            base::StatusCode::kInvalidArgument);
}

TEST(NsmAttestorTest, DecodesAnAttestationResponse) {
  // {"Attestation": {"document": h'84010203'}}
  Bytes response = Hex("a1 6b 4174746573746174696f6e a1 68 646f63756d656e74 44 84010203");
  auto document = DecodeNsmAttestationResponse(response);
  ASSERT_TRUE(document.ok()) << document.status().ToString();
  EXPECT_EQ(*document, Hex("84010203"));
}

TEST(NsmAttestorTest, WrapsARealDocument) {
  const char* name = "nitro/doc-2.cbor";
  auto path = supercluster::testing::SharedTestDataFile(name);
  if (path.empty()) GTEST_SKIP() << supercluster::testing::SharedTestDataMissing(name);
  Bytes real = testing::ReadFileBytes(path);
  ASSERT_EQ(real.size(), 4445u);
  // 4445 = 0x115d bytes: a byte string head 59 115d.
  Bytes response = Hex("a1 6b 4174746573746174696f6e a1 68 646f63756d656e74 59 115d");
  response.insert(response.end(), real.begin(), real.end());
  auto document = DecodeNsmAttestationResponse(response);
  ASSERT_TRUE(document.ok()) << document.status().ToString();
  EXPECT_EQ(*document, real);
}

TEST(NsmAttestorTest, DecodesErrorsAndRejectsNonsense) {
  // {"Error": "InvalidArgument"}
  auto invalid = DecodeNsmAttestationResponse(Hex("a1 65 4572726f72 6f 496e76616c6964417267756d656e74"));
  EXPECT_EQ(invalid.status().code(), base::StatusCode::kInternal);
  EXPECT_NE(invalid.status().message().find("InvalidArgument"), std::string::npos);
  // {"Error": "Busy"}
  EXPECT_EQ(DecodeNsmAttestationResponse(Hex("a1 65 4572726f72 64 42757379")).status().code(),
            base::StatusCode::kUnavailable);
  const char* nonsense[] = {
      "",
      "a0",                                                           // {}
      "a1 6b 4174746573746174696f6e a0",                              // {"Attestation": {}}
      "a1 6b 4174746573746174696f6e a1 68 646f63756d656e74 40",       // empty document
      "a1 6b 4174746573746174696f6e a1 68 646f63756d656e74 61 78",    // document as text
      "a1 6b 4174746573746174696f6e a1 68 646f63756d656e74 44 8401",  // truncated
      "a1 6b 4174746573746174696f6e a1 68 646f63756d656e74 41 00 00", // trailing
      "a1 68 446f63756d656e74 41 00",                                 // {"Document": ...}
  };
  for (const char* hex : nonsense) {
    auto decoded = DecodeNsmAttestationResponse(Hex(hex));
    EXPECT_EQ(decoded.status().code(), base::StatusCode::kDataLoss) << hex;
  }
}

TEST(NsmAttestorTest, OpenWithoutTheDeviceIsUnavailable) {
  auto attestor = NsmAttestor::Open("/nonexistent/nsm");
  ASSERT_FALSE(attestor.ok());
  EXPECT_EQ(attestor.status().code(), base::StatusCode::kUnavailable);
  EXPECT_NE(attestor.status().message().find("Nitro Enclave"), std::string::npos);
}

}  // namespace
}  // namespace supercluster::attest
