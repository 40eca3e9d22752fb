// The enclave's operations in process: attest, open, seal, close, wipe, and every refusal
// (replay, stale, future, another enclave's key, after the wipe, over the limits).
#include "enclave/enclave_core.h"

#include <gtest/gtest.h>

#include <atomic>

#include "client/sealed_client.h"
#include "crypto/chunked_response.h"
#include "enclave/identity.h"
#include "client/test_enclave.h"
#include "enclave/wipe_receipt.h"

namespace supercluster::enclave {
namespace {

using crypto::AsBytes;
using crypto::ToString;

constexpr int64_t kStartMs = 1'800'000'000'000;  // 2027-01-15

class EnclaveCoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto ca = attest::DevCa::Generate();
    ASSERT_TRUE(ca.ok());
    ca_.emplace(std::move(*ca));
    core_ = MakeCore(EnclaveOptions{});
    policy_ = testing::PolicyFor(*ca_);
  }

  std::unique_ptr<EnclaveCore> MakeCore(EnclaveOptions options) {
    options.clock_ms = [this] { return now_ms_.load(); };
    auto core = EnclaveCore::Create(options, testing::MakeDevAttestor(*ca_));
    EXPECT_TRUE(core.ok()) << core.status().ToString();
    return std::move(*core);
  }

  client::AcceptedEnclave AcceptedOf(EnclaveCore& core) {
    auto document = core.Attest(AsBytes("nonce"), {});
    EXPECT_TRUE(document.ok()) << document.status().ToString();
    return testing::Accept(*document, policy_);
  }

  client::SealedRequest SealTo(EnclaveCore& core, std::string_view body, int64_t created_at_ms) {
    auto sealed = client::SealRequest({AcceptedOf(core)}, AsBytes(body), created_at_ms);
    EXPECT_TRUE(sealed.ok()) << sealed.status().ToString();
    return std::move(*sealed);
  }

  std::optional<attest::DevCa> ca_;
  std::atomic<int64_t> now_ms_{kStartMs};
  std::unique_ptr<EnclaveCore> core_;
  attest::AttestationPolicy policy_;
};

TEST_F(EnclaveCoreTest, AttestationCarriesTheIdentityAndTheCallersFields) {
  attest::AttestationPolicy policy = policy_;
  policy.expected_nonce = crypto::ToBytes("fresh nonce");
  auto document = core_->Attest(AsBytes("fresh nonce"), AsBytes("worker w-1"));
  ASSERT_TRUE(document.ok());
  client::AcceptedEnclave accepted = testing::Accept(*document, policy);
  EXPECT_TRUE(accepted.attestation.dev);
  EXPECT_EQ(accepted.identity.Encode(), core_->IdentityBytes());
  ASSERT_TRUE(accepted.attestation.document.user_data.has_value());
  EXPECT_EQ(ToString(*accepted.attestation.document.user_data), "worker w-1");
  policy.expected_nonce = crypto::ToBytes("another nonce");
  EXPECT_TRUE(client::VerifyCandidates({*document}, policy).accepted.empty());
}

TEST_F(EnclaveCoreTest, OpensARequestAndSealsAStreamedAnswer) {
  client::SealedRequest request = SealTo(*core_, "Who begat Enos?", kStartMs);
  auto opened = core_->Open(SealedFormat::kMultiRecipient, request.envelope);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  EXPECT_EQ(ToString(opened->payload), "Who begat Enos?");

  crypto::ChunkedResponseOpener opener = client::OpenResponse(std::move(request));
  std::vector<crypto::Bytes> out;
  for (std::string piece : {"And Seth ", "lived an hundred ", "and five years"}) {
    auto sealed = core_->Seal(opened->context_id, AsBytes(piece), piece == "and five years");
    ASSERT_TRUE(sealed.ok()) << sealed.status().ToString();
    ASSERT_TRUE(opener.Feed(*sealed, &out).ok());
  }
  ASSERT_TRUE(opener.Finish(&out).ok());
  std::string answer;
  for (const auto& piece : out) answer += ToString(piece);
  EXPECT_EQ(answer, "And Seth lived an hundred and five years");
  EnclaveStats stats = core_->Stats();
  EXPECT_EQ(stats.contexts_opened, 1u);
  EXPECT_EQ(stats.contexts_closed, 1u);
  EXPECT_EQ(stats.contexts_open, 0u);
  EXPECT_EQ(core_->Seal(opened->context_id, AsBytes("more"), false).status().code(),
            base::StatusCode::kNotFound)
      << "the final chunk ends the context";
}

TEST_F(EnclaveCoreTest, PlainOhttpRequestsOpenToo) {
  client::AcceptedEnclave accepted = AcceptedOf(*core_);
  const crypto::OhttpKeyConfig& config = accepted.identity.key_config;
  crypto::HpkeSuite suite{config.kem, config.suites[0].first, config.suites[0].second};
  auto request = crypto::OhttpEncapsulateRequest(
      config, suite, crypto::kInferenceLabels, TimestampedPayload(kStartMs, AsBytes("plain ohttp")));
  ASSERT_TRUE(request.ok());
  auto opened = core_->Open(SealedFormat::kOhttp, request->encapsulated);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  EXPECT_EQ(ToString(opened->payload), "plain ohttp");
  auto sealed = core_->Seal(opened->context_id, AsBytes("answer"), true);
  ASSERT_TRUE(sealed.ok());
  auto opener = crypto::ChunkedResponseOpener::ForRequest(request->context,
                                                          crypto::kInferenceLabels, request->enc);
  std::vector<crypto::Bytes> out;
  ASSERT_TRUE(opener.Feed(*sealed, &out).ok());
  ASSERT_TRUE(opener.Finish(&out).ok());
  EXPECT_EQ(ToString(out.at(0)), "answer");
  EXPECT_FALSE(core_->Open(SealedFormat::kMultiRecipient, request->encapsulated).ok())
      << "an OHTTP request is not a multi-recipient envelope";
}

TEST_F(EnclaveCoreTest, ReplayedRequestIsRefusedAndOthersStillOpen) {
  client::SealedRequest request = SealTo(*core_, "once", kStartMs);
  ASSERT_TRUE(core_->Open(SealedFormat::kMultiRecipient, request.envelope).ok());
  auto replay = core_->Open(SealedFormat::kMultiRecipient, request.envelope);
  ASSERT_FALSE(replay.ok());
  EXPECT_EQ(replay.status().code(), base::StatusCode::kPermissionDenied);
  EXPECT_NE(replay.status().message().find("replayed"), std::string::npos);
  client::SealedRequest next = SealTo(*core_, "twice", kStartMs);
  EXPECT_TRUE(core_->Open(SealedFormat::kMultiRecipient, next.envelope).ok());
  EXPECT_EQ(core_->Stats().requests_refused, 1u);
}

TEST_F(EnclaveCoreTest, StaleAndFutureRequestsAreRefused) {
  int64_t window = EnclaveOptions{}.freshness_window.count();
  client::SealedRequest stale = SealTo(*core_, "old", kStartMs - window - 1000);
  auto refused = core_->Open(SealedFormat::kMultiRecipient, stale.envelope);
  EXPECT_NE(refused.status().message().find("stale"), std::string::npos)
      << refused.status().ToString();
  client::SealedRequest future = SealTo(*core_, "new", kStartMs + window + 1000);
  refused = core_->Open(SealedFormat::kMultiRecipient, future.envelope);
  EXPECT_NE(refused.status().message().find("future"), std::string::npos)
      << refused.status().ToString();
  client::SealedRequest edge = SealTo(*core_, "edge", kStartMs - window + 1000);
  EXPECT_TRUE(core_->Open(SealedFormat::kMultiRecipient, edge.envelope).ok());
  // Long after, the replay cache has forgotten it, but it is stale by then.
  now_ms_ += 3 * window;
  refused = core_->Open(SealedFormat::kMultiRecipient, edge.envelope);
  EXPECT_NE(refused.status().message().find("stale"), std::string::npos);
}

TEST_F(EnclaveCoreTest, RequestSealedToAnotherEnclaveIsRefused) {
  std::unique_ptr<EnclaveCore> other = MakeCore(EnclaveOptions{});
  client::SealedRequest request = SealTo(*other, "not for you", kStartMs);
  auto refused = core_->Open(SealedFormat::kMultiRecipient, request.envelope);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), base::StatusCode::kNotFound);
  EXPECT_TRUE(other->Open(SealedFormat::kMultiRecipient, request.envelope).ok());
}

TEST_F(EnclaveCoreTest, WipeDestroysEverythingAndSignsAReceipt) {
  client::AcceptedEnclave accepted = AcceptedOf(*core_);
  client::SealedRequest finished = SealTo(*core_, "a", kStartMs);
  auto first = core_->Open(SealedFormat::kMultiRecipient, finished.envelope);
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(core_->Seal(first->context_id, AsBytes("done"), true).ok());
  client::SealedRequest unfinished = SealTo(*core_, "b", kStartMs);
  auto second = core_->Open(SealedFormat::kMultiRecipient, unfinished.envelope);
  ASSERT_TRUE(second.ok());
  client::SealedRequest late = SealTo(*core_, "late", kStartMs);

  now_ms_ += 1234;
  auto receipt = core_->Wipe();
  ASSERT_TRUE(receipt.ok()) << receipt.status().ToString();
  auto verified = VerifyWipeReceipt(*receipt, accepted.identity.receipt_key_point);
  ASSERT_TRUE(verified.ok()) << verified.status().ToString();
  EXPECT_EQ(verified->wiped_at_ms, kStartMs + 1234);
  EXPECT_EQ(verified->contexts_opened, 2u);
  EXPECT_EQ(verified->contexts_closed, 1u);
  EXPECT_EQ(verified->contexts_destroyed, 1u);
  EXPECT_EQ(verified->hpke_public_key_hex, crypto::ToHex(accepted.identity.key_config.public_key));
  EXPECT_NE(std::find(verified->destroyed.begin(), verified->destroyed.end(), "hpke_private_key"),
            verified->destroyed.end());

  // Nothing is served after the wipe.
  EXPECT_EQ(core_->Seal(second->context_id, AsBytes("x"), true).status().code(),
            base::StatusCode::kFailedPrecondition);
  EXPECT_EQ(core_->Open(SealedFormat::kMultiRecipient, late.envelope).status().code(),
            base::StatusCode::kFailedPrecondition);
  EXPECT_EQ(core_->Attest({}, {}).status().code(), base::StatusCode::kFailedPrecondition);
  EXPECT_FALSE(core_->Wipe().ok());
  EXPECT_TRUE(core_->Stats().wiped);
}

TEST_F(EnclaveCoreTest, ForgedOrAlteredReceiptsDoNotVerify) {
  client::AcceptedEnclave accepted = AcceptedOf(*core_);
  auto receipt = core_->Wipe();
  ASSERT_TRUE(receipt.ok());
  // Every single flipped byte.
  for (size_t i = 0; i < receipt->size(); ++i) {
    crypto::Bytes altered = *receipt;
    altered[i] ^= 0x01;
    EXPECT_FALSE(VerifyWipeReceipt(altered, accepted.identity.receipt_key_point).ok()) << i;
  }
  // A receipt with the same content signed by some other key.
  auto forger = attest::EcP384Key::Generate();
  ASSERT_TRUE(forger.ok());
  WipeReceipt claim;
  claim.hpke_public_key_hex = crypto::ToHex(accepted.identity.key_config.public_key);
  claim.destroyed = {"hpke_private_key"};
  auto forged = SignWipeReceipt(claim, *forger);
  ASSERT_TRUE(forged.ok());
  auto refused = VerifyWipeReceipt(*forged, accepted.identity.receipt_key_point);
  EXPECT_EQ(refused.status().code(), base::StatusCode::kPermissionDenied);
  // The real receipt against another enclave's key.
  std::unique_ptr<EnclaveCore> other = MakeCore(EnclaveOptions{});
  EXPECT_FALSE(
      VerifyWipeReceipt(*receipt, AcceptedOf(*other).identity.receipt_key_point).ok());
}

TEST_F(EnclaveCoreTest, ContextsAreBoundedAndCanBeClosed) {
  EnclaveOptions options;
  options.max_contexts = 2;
  std::unique_ptr<EnclaveCore> core = MakeCore(options);
  std::vector<uint64_t> ids;
  for (int i = 0; i < 2; ++i) {
    client::SealedRequest request = SealTo(*core, "r", kStartMs);
    auto opened = core->Open(SealedFormat::kMultiRecipient, request.envelope);
    ASSERT_TRUE(opened.ok());
    ids.push_back(opened->context_id);
  }
  client::SealedRequest third = SealTo(*core, "r", kStartMs);
  EXPECT_EQ(core->Open(SealedFormat::kMultiRecipient, third.envelope).status().code(),
            base::StatusCode::kResourceExhausted);
  ASSERT_TRUE(core->Close(ids[0]).ok());
  EXPECT_EQ(core->Close(ids[0]).code(), base::StatusCode::kNotFound);
  client::SealedRequest fourth = SealTo(*core, "r", kStartMs);
  EXPECT_TRUE(core->Open(SealedFormat::kMultiRecipient, fourth.envelope).ok());
  EXPECT_EQ(core->Seal(12345, AsBytes("x"), false).status().code(), base::StatusCode::kNotFound);
}

// When the contexts are full, those unused for context_idle_timeout (a worker that never
// closed them) make room; one that sealed a chunk within it is kept.
TEST_F(EnclaveCoreTest, IdleContextsMakeRoomWhenTheLimitIsReached) {
  EnclaveOptions options;
  options.max_contexts = 2;
  options.context_idle_timeout = std::chrono::minutes(10);
  std::unique_ptr<EnclaveCore> core = MakeCore(options);
  auto open = [&] {
    client::SealedRequest request = SealTo(*core, "r", now_ms_.load());
    return core->Open(SealedFormat::kMultiRecipient, request.envelope);
  };
  auto abandoned = open();
  auto active = open();
  ASSERT_TRUE(abandoned.ok() && active.ok());
  EXPECT_EQ(open().status().code(), base::StatusCode::kResourceExhausted) << "none idle yet";

  now_ms_ += 9 * 60 * 1000;
  ASSERT_TRUE(core->Seal(active->context_id, AsBytes("still answering"), false).ok());
  now_ms_ += 2 * 60 * 1000;  // `abandoned` unused for 11 minutes, `active` for 2
  auto newcomer = open();
  ASSERT_TRUE(newcomer.ok()) << newcomer.status().ToString();
  EXPECT_EQ(core->Seal(abandoned->context_id, AsBytes("x"), false).status().code(),
            base::StatusCode::kNotFound);
  EXPECT_TRUE(core->Seal(active->context_id, AsBytes("more"), false).ok());
  EXPECT_EQ(core->Stats().contexts_open, 2u);
}

TEST_F(EnclaveCoreTest, HandleRefusesMalformedFields) {
  Reply reply = core_->Handle({Op::kOpen, {crypto::Bytes{2, 2}, crypto::Bytes{}}});
  EXPECT_EQ(reply.status.code(), base::StatusCode::kInvalidArgument);
  reply = core_->Handle({Op::kOpen, {crypto::Bytes{9}, crypto::Bytes{1, 2, 3}}});
  EXPECT_FALSE(reply.status.ok());
  reply = core_->Handle({Op::kSeal, {EncodeContextId(1), crypto::Bytes{2}, crypto::Bytes{}}});
  EXPECT_EQ(reply.status.code(), base::StatusCode::kInvalidArgument);
  reply = core_->Handle({Op::kClose, {crypto::Bytes{1}}});
  EXPECT_EQ(reply.status.code(), base::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace supercluster::enclave
