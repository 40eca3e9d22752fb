// The worker-enclave wire protocol: round trips, and every malformed frame is refused.
#include "enclave/protocol.h"

#include <gtest/gtest.h>

namespace supercluster::enclave {
namespace {

TEST(ProtocolTest, RequestsAndRepliesRoundTrip) {
  Request request{Op::kSeal, {EncodeContextId(0x0102030405060708), Bytes{1}, Bytes{'h', 'i'}}};
  auto decoded = DecodeRequest(EncodeRequest(request));
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(decoded->op, Op::kSeal);
  EXPECT_EQ(decoded->fields, request.fields);
  EXPECT_EQ(*DecodeContextId(decoded->fields[0]), 0x0102030405060708u);

  Reply ok{base::Status::Ok(), {Bytes{9, 9}, Bytes{}}};
  auto decoded_ok = DecodeReply(EncodeReply(ok));
  ASSERT_TRUE(decoded_ok.ok());
  EXPECT_TRUE(decoded_ok->status.ok());
  EXPECT_EQ(decoded_ok->fields, ok.fields);

  Reply error{base::PermissionDenied("replayed request"), {}};
  auto decoded_error = DecodeReply(EncodeReply(error));
  ASSERT_TRUE(decoded_error.ok());
  EXPECT_EQ(decoded_error->status.code(), base::StatusCode::kPermissionDenied);
  EXPECT_NE(decoded_error->status.message().find("replayed request"), std::string::npos);
}

TEST(ProtocolTest, MalformedRequestsAreRefused) {
  EXPECT_FALSE(DecodeRequest(Bytes{}).ok());
  EXPECT_FALSE(DecodeRequest(Bytes{0}).ok()) << "op 0";
  EXPECT_FALSE(DecodeRequest(Bytes{6}).ok()) << "op 6";
  EXPECT_FALSE(DecodeRequest(Bytes{static_cast<uint8_t>(Op::kAttest)}).ok()) << "no fields";
  // Wrong field counts for every op.
  for (uint8_t op = 1; op <= 5; ++op) {
    Request request{static_cast<Op>(op), std::vector<Bytes>(FieldCount(static_cast<Op>(op)) + 1)};
    EXPECT_FALSE(DecodeRequest(EncodeRequest(request)).ok()) << OpName(request.op);
  }
  Bytes good = EncodeRequest({Op::kAttest, {Bytes{1, 2, 3}, Bytes{4}}});
  for (size_t length = 1; length < good.size(); ++length) {
    EXPECT_FALSE(DecodeRequest(crypto::ByteView(good).first(length)).ok()) << length;
  }
  // A field claiming more bytes than the frame holds (4 GiB).
  Bytes huge{static_cast<uint8_t>(Op::kWipe), 0xFF, 0xFF, 0xFF, 0xFF, 0};
  auto refused = DecodeRequest(huge);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("claims"), std::string::npos);
}

TEST(ProtocolTest, MalformedRepliesAreRefused) {
  EXPECT_FALSE(DecodeReply(Bytes{}).ok());
  EXPECT_FALSE(DecodeReply(Bytes{200}).ok()) << "unknown status";
  EXPECT_FALSE(DecodeReply(Bytes{static_cast<uint8_t>(base::StatusCode::kInternal)}).ok())
      << "an error needs its message";
  EXPECT_FALSE(DecodeReply(Bytes{0, 0, 0, 0, 9, 1}).ok()) << "truncated field";
}

TEST(ProtocolTest, FrameHeadersAreBounded) {
  EXPECT_EQ(*ParseFrameHeader(FrameHeader(1000), 4096), 1000u);
  EXPECT_FALSE(ParseFrameHeader(FrameHeader(0), 4096).ok());
  auto over = ParseFrameHeader(FrameHeader(4097), 4096);
  ASSERT_FALSE(over.ok());
  EXPECT_NE(over.status().message().find("over the limit"), std::string::npos);
  EXPECT_FALSE(ParseFrameHeader(Bytes{0, 0, 1}, 4096).ok());
  EXPECT_FALSE(DecodeContextId(Bytes{1, 2, 3}).ok());
}

}  // namespace
}  // namespace supercluster::enclave
