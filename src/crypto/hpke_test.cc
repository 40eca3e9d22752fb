#include "crypto/hpke.h"

#include <gtest/gtest.h>

#include <utility>

#include "crypto/hpke_internal.h"

namespace supercluster::crypto {
namespace {

using base::StatusCode;

Bytes Hex(std::string_view hex) {
  Bytes out;
  EXPECT_TRUE(FromHex(hex, &out)) << hex;
  return out;
}

HpkeKeyPair MustGenerate() {
  auto pair = HpkeKeyPair::Generate(HpkeKem::kX25519Sha256);
  EXPECT_TRUE(pair.ok()) << pair.status().ToString();
  return std::move(pair).value();
}

HpkeSuite Suite(HpkeKdf kdf, HpkeAead aead) {
  HpkeSuite suite;
  suite.kdf = kdf;
  suite.aead = aead;
  return suite;
}

// RFC 9180 Appendix A.1.1: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM, base
// mode. Values copied from the RFC's appendix (the same vector is the first mode-0 entry
// for kem 0x20/kdf 1/aead 1 in the shared test-vectors.json), so that the KEM, key
// schedule, AEAD and exporter are checked even where the shared folder is absent.
TEST(HpkeRfcVectorTest, A11BaseX25519Sha256Aes128Gcm) {
  Bytes info = Hex("4f6465206f6e2061204772656369616e2055726e");
  Bytes ikm_e = Hex("7268600d403fce431561aef583ee1613527cff655c1343f29812e66706df3234");
  Bytes ikm_r = Hex("6db9df30aa07dd42ee5e8181afdb977e538f5e1fec8a06223f33f7013e525037");
  const char* pk_em = "37fda3567bdbd628e88668c3c8d7e97d1d1253b6d4ea6d44c150f741f1bf4431";
  const char* sk_em = "52c4a758a802cd8b936eceea314432798d5baf2d7e9235dc084ab1b9cfa2f736";
  const char* pk_rm = "3948cfe0ad1ddb695d780e59077195da6c56506b027329794ab02bca80815c4d";
  const char* sk_rm = "4612c550263fc8ad58375df3f557aac531d26850903e55a9f23f21d8534e8ac8";
  const char* shared_secret =
      "fe0e18c9f024ce43799ae393c7e8fe8fce9d218875e8227b0187c04e7d2ea1fc";
  const char* key = "4531685d41d65f03dc48f6b8302c05b0";
  const char* base_nonce = "56d890e5accaaf011cff4b7d";
  const char* exporter_secret =
      "45ff1c2e220db587171952c0592d5f5ebe103f1561a2614e38f2ffd47e99e3f8";
  // sequence number 0
  Bytes aad = Hex("436f756e742d30");
  Bytes plaintext = Hex("4265617574792069732074727574682c20747275746820626561757479");
  const char* ciphertext =
      "f938558b5d72f1a23810b4be2ab4f84331acc02fc97babc53a52ae8218a355a96d8770ac83d07bea87e13c"
      "512a";
  // exporter_context "", L = 32
  const char* exported = "3853fe2b4035195a573ffc53856e77058e15d9ea064de3e59f4961d0095250ee";

  auto ephemeral = HpkeKeyPair::Derive(HpkeKem::kX25519Sha256, ikm_e);
  ASSERT_TRUE(ephemeral.ok()) << ephemeral.status().ToString();
  EXPECT_EQ(ToHex(ephemeral->public_key()), pk_em);
  EXPECT_EQ(ToHex(ephemeral->private_key().view()), sk_em);
  auto recipient = HpkeKeyPair::Derive(HpkeKem::kX25519Sha256, ikm_r);
  ASSERT_TRUE(recipient.ok());
  EXPECT_EQ(ToHex(recipient->public_key()), pk_rm);
  EXPECT_EQ(ToHex(recipient->private_key().view()), sk_rm);

  auto encapsulation =
      internal::Encap(HpkeKem::kX25519Sha256, recipient->public_key(), nullptr, ikm_e);
  ASSERT_TRUE(encapsulation.ok());
  EXPECT_EQ(ToHex(encapsulation->shared_secret.view()), shared_secret);

  HpkeSuite suite;  // the defaults are this vector's suite
  HpkeSenderOptions options;
  options.ephemeral_ikm = ikm_e;
  auto sender = HpkeSetupSender(suite, recipient->public_key(), info, options);
  ASSERT_TRUE(sender.ok()) << sender.status().ToString();
  EXPECT_EQ(ToHex(sender->enc), pk_em);  // enc = SerializePublicKey(pkE)
  EXPECT_EQ(sender->context.mode(), HpkeMode::kBase);
  EXPECT_EQ(ToHex(HpkeContextBuilder::KeyForTesting(sender->context)), key);
  EXPECT_EQ(ToHex(HpkeContextBuilder::BaseNonceForTesting(sender->context)), base_nonce);
  EXPECT_EQ(ToHex(HpkeContextBuilder::ExporterSecretForTesting(sender->context)),
            exporter_secret);
  auto sealed = sender->context.Seal(aad, plaintext);
  ASSERT_TRUE(sealed.ok());
  EXPECT_EQ(ToHex(*sealed), ciphertext);

  auto receiver = HpkeSetupRecipient(suite, sender->enc, *recipient, info);
  ASSERT_TRUE(receiver.ok()) << receiver.status().ToString();
  auto opened = receiver->Open(aad, *sealed);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  EXPECT_EQ(*opened, plaintext);

  for (const HpkeContext* context : {&sender->context, &*receiver}) {
    auto value = context->Export({}, 32);
    ASSERT_TRUE(value.ok());
    EXPECT_EQ(ToHex(value->view()), exported);
  }

  auto single = HpkeOpen(suite, Hex(pk_em), *recipient, info, aad, Hex(ciphertext));
  ASSERT_TRUE(single.ok()) << single.status().ToString();
  EXPECT_EQ(*single, plaintext);
}

// --- round trips ----------------------------------------------------------------------

struct ModeCase {
  HpkeMode mode;
  bool psk;
  bool auth;
};
constexpr ModeCase kModes[] = {{HpkeMode::kBase, false, false},
                               {HpkeMode::kPsk, true, false},
                               {HpkeMode::kAuth, false, true},
                               {HpkeMode::kAuthPsk, true, true}};

TEST(HpkeTest, EveryModeKdfAndAeadRoundTripsSeveralMessages) {
  HpkeKeyPair recipient = MustGenerate();
  HpkeKeyPair sender_key = MustGenerate();
  Bytes psk(32, 0x42);
  Bytes psk_id = ToBytes("psk id");
  for (HpkeKdf kdf : {HpkeKdf::kHkdfSha256, HpkeKdf::kHkdfSha384, HpkeKdf::kHkdfSha512}) {
    for (HpkeAead aead :
         {HpkeAead::kAes128Gcm, HpkeAead::kAes256Gcm, HpkeAead::kChaCha20Poly1305}) {
      for (const ModeCase& mode : kModes) {
        SCOPED_TRACE(testing::Message() << "kdf " << static_cast<int>(kdf) << " aead "
                                        << static_cast<int>(aead) << " mode "
                                        << static_cast<int>(mode.mode));
        HpkeSuite suite = Suite(kdf, aead);
        HpkeSenderOptions send_options;
        HpkeRecipientOptions receive_options;
        if (mode.psk) {
          send_options.psk = receive_options.psk = psk;
          send_options.psk_id = receive_options.psk_id = psk_id;
        }
        if (mode.auth) {
          send_options.sender_key = &sender_key;
          receive_options.sender_public_key = sender_key.public_key();
        }
        auto sender = HpkeSetupSender(suite, recipient.public_key(), ToBytes("info"),
                                      send_options);
        ASSERT_TRUE(sender.ok()) << sender.status().ToString();
        EXPECT_EQ(sender->context.mode(), mode.mode);
        EXPECT_EQ(sender->context.suite(), suite);
        auto receiver = HpkeSetupRecipient(suite, sender->enc, recipient, ToBytes("info"),
                                           receive_options);
        ASSERT_TRUE(receiver.ok()) << receiver.status().ToString();
        EXPECT_EQ(receiver->mode(), mode.mode);
        for (int i = 0; i < 3; ++i) {
          Bytes message = ToBytes("message " + std::to_string(i));
          auto sealed = sender->context.Seal(ToBytes("aad"), message);
          ASSERT_TRUE(sealed.ok());
          auto opened = receiver->Open(ToBytes("aad"), *sealed);
          ASSERT_TRUE(opened.ok()) << opened.status().ToString();
          EXPECT_EQ(*opened, message);
        }
        auto exported_by_sender = sender->context.Export(ToBytes("ctx"), 40);
        auto exported_by_receiver = receiver->Export(ToBytes("ctx"), 40);
        ASSERT_TRUE(exported_by_sender.ok() && exported_by_receiver.ok());
        EXPECT_TRUE(ConstantTimeEquals(exported_by_sender->view(), exported_by_receiver->view()));
      }
    }
  }
}

TEST(HpkeTest, SingleShotRoundTripsAndUsesAFreshEphemeralKey) {
  HpkeKeyPair recipient = MustGenerate();
  HpkeSuite suite = Suite(HpkeKdf::kHkdfSha256, HpkeAead::kChaCha20Poly1305);
  Bytes request(4096, 0x61);
  auto first = HpkeSeal(suite, recipient.public_key(), ToBytes("info"), ToBytes("aad"), request);
  auto second = HpkeSeal(suite, recipient.public_key(), ToBytes("info"), ToBytes("aad"), request);
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_NE(first->enc, second->enc);
  EXPECT_NE(first->ciphertext, second->ciphertext);
  auto opened = HpkeOpen(suite, first->enc, recipient, ToBytes("info"), ToBytes("aad"),
                         first->ciphertext);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  EXPECT_EQ(*opened, request);
  // A different info is a different key schedule.
  EXPECT_FALSE(HpkeOpen(suite, first->enc, recipient, ToBytes("other"), ToBytes("aad"),
                        first->ciphertext)
                   .ok());
}

// --- keys -----------------------------------------------------------------------------

TEST(HpkeKeyPairTest, FromPrivateKeyRebuildsThePublicKeyAndChecksLength) {
  HpkeKeyPair pair = MustGenerate();
  EXPECT_EQ(pair.public_key().size(), 32u);
  EXPECT_EQ(pair.private_key().size(), 32u);
  auto rebuilt = HpkeKeyPair::FromPrivateKey(HpkeKem::kX25519Sha256, pair.private_key().view());
  ASSERT_TRUE(rebuilt.ok());
  EXPECT_EQ(rebuilt->public_key(), pair.public_key());
  for (size_t size : {0, 31, 33}) {
    auto bad = HpkeKeyPair::FromPrivateKey(HpkeKem::kX25519Sha256, Bytes(size, 1));
    ASSERT_FALSE(bad.ok());
    EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  }
  EXPECT_FALSE(HpkeKeyPair::Generate(static_cast<HpkeKem>(0x10)).ok());
}

TEST(HpkeSuiteTest, FromIdsAcceptsSupportedAndNamesUnsupported) {
  auto suite = HpkeSuite::FromIds(0x20, 3, 0xFFFF);
  ASSERT_TRUE(suite.ok());
  EXPECT_EQ(suite->kdf, HpkeKdf::kHkdfSha512);
  EXPECT_EQ(suite->aead, HpkeAead::kExportOnly);
  auto p256 = HpkeSuite::FromIds(0x10, 1, 1);
  ASSERT_FALSE(p256.ok());
  EXPECT_EQ(p256.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(p256.status().message().find("KEM id 16"), std::string::npos);
  EXPECT_FALSE(HpkeSuite::FromIds(0x20, 0, 1).ok());
  EXPECT_FALSE(HpkeSuite::FromIds(0x20, 4, 1).ok());
  EXPECT_FALSE(HpkeSuite::FromIds(0x20, 1, 0).ok());
  EXPECT_FALSE(HpkeSuite::FromIds(0x20, 1, 4).ok());
  // A suite assembled by hand with an unknown id is refused at setup.
  HpkeKeyPair recipient = MustGenerate();
  HpkeSuite bad_aead;
  bad_aead.aead = static_cast<HpkeAead>(7);
  EXPECT_EQ(HpkeSetupSender(bad_aead, recipient.public_key(), {}).status().code(),
            StatusCode::kInvalidArgument);
  HpkeSuite bad_kdf;
  bad_kdf.kdf = static_cast<HpkeKdf>(2 + 7);
  EXPECT_EQ(HpkeSetupRecipient(bad_kdf, recipient.public_key(), recipient, {}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(HpkeEncSize(HpkeKem::kX25519Sha256), 32u);
  EXPECT_EQ(HpkeAeadKeySize(HpkeAead::kAes256Gcm), 32u);
  EXPECT_EQ(HpkeAeadNonceSize(HpkeAead::kExportOnly), 0u);
  EXPECT_EQ(HpkeAeadTagSize(HpkeAead::kChaCha20Poly1305), 16u);
}

// --- refusals -------------------------------------------------------------------------

class HpkeRefusalTest : public ::testing::Test {
 protected:
  HpkeKeyPair recipient_ = MustGenerate();
  HpkeSuite suite_;
  Bytes info_ = ToBytes("info");
};

TEST_F(HpkeRefusalTest, TamperedCiphertextAadOrTagIsDeniedAndDoesNotAdvance) {
  auto sender = HpkeSetupSender(suite_, recipient_.public_key(), info_);
  ASSERT_TRUE(sender.ok());
  auto receiver = HpkeSetupRecipient(suite_, sender->enc, recipient_, info_);
  ASSERT_TRUE(receiver.ok());
  Bytes aad = ToBytes("aad");
  auto sealed = sender->context.Seal(aad, ToBytes("hello"));
  ASSERT_TRUE(sealed.ok());

  Bytes body_flipped = *sealed;
  body_flipped[0] ^= 1;
  Bytes tag_flipped = *sealed;
  tag_flipped.back() ^= 1;
  for (const auto& [bad_aad, bad_ciphertext] :
       {std::pair(aad, body_flipped), std::pair(aad, tag_flipped),
        std::pair(ToBytes("aaD"), *sealed), std::pair(aad, Bytes(sealed->begin(), sealed->end() - 1))}) {
    auto opened = receiver->Open(bad_aad, bad_ciphertext);
    ASSERT_FALSE(opened.ok());
    EXPECT_EQ(opened.status().code(), StatusCode::kPermissionDenied);
    EXPECT_EQ(HpkeContextBuilder::SequenceNumberForTesting(*receiver), 0u);
  }
  // Still at sequence 0, so the genuine message opens.
  auto opened = receiver->Open(aad, *sealed);
  ASSERT_TRUE(opened.ok());
  EXPECT_EQ(ToString(*opened), "hello");
  EXPECT_EQ(HpkeContextBuilder::SequenceNumberForTesting(*receiver), 1u);
  // Replaying it now fails: the recipient expects sequence 1.
  EXPECT_FALSE(receiver->Open(aad, *sealed).ok());
}

TEST_F(HpkeRefusalTest, WrongRecipientKeyIsDenied) {
  auto sealed = HpkeSeal(suite_, recipient_.public_key(), info_, {}, ToBytes("x"));
  ASSERT_TRUE(sealed.ok());
  HpkeKeyPair other = MustGenerate();
  auto opened = HpkeOpen(suite_, sealed->enc, other, info_, {}, sealed->ciphertext);
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.status().code(), StatusCode::kPermissionDenied);
}

TEST_F(HpkeRefusalTest, EncOfWrongLengthIsInvalidArgument) {
  for (size_t size : {0, 1, 31, 33, 64}) {
    auto context = HpkeSetupRecipient(suite_, Bytes(size, 9), recipient_, info_);
    ASSERT_FALSE(context.ok()) << size;
    EXPECT_EQ(context.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(context.status().message().find("enc"), std::string::npos);
  }
  auto sender = HpkeSetupSender(suite_, Bytes(31, 9), info_);
  ASSERT_FALSE(sender.ok());
  EXPECT_EQ(sender.status().code(), StatusCode::kInvalidArgument);
}

TEST_F(HpkeRefusalTest, SmallOrderPointsAreRefused) {
  // u = 0 and u = 1 are points of small order: X25519 with them is all zeros.
  Bytes zero(32, 0);
  Bytes one(32, 0);
  one[0] = 1;
  for (const Bytes& point : {zero, one}) {
    auto context = HpkeSetupRecipient(suite_, point, recipient_, info_);
    ASSERT_FALSE(context.ok());
    EXPECT_EQ(context.status().code(), StatusCode::kPermissionDenied)
        << context.status().ToString();
    auto sender = HpkeSetupSender(suite_, point, info_);
    ASSERT_FALSE(sender.ok());
    EXPECT_EQ(sender.status().code(), StatusCode::kPermissionDenied);
    // As the auth sender's key on the recipient side too.
    auto good = HpkeSetupSender(suite_, recipient_.public_key(), info_);
    ASSERT_TRUE(good.ok());
    HpkeRecipientOptions options;
    options.sender_public_key = point;
    auto auth = HpkeSetupRecipient(suite_, good->enc, recipient_, info_, options);
    ASSERT_FALSE(auth.ok());
    EXPECT_EQ(auth.status().code(), StatusCode::kPermissionDenied);
  }
}

TEST_F(HpkeRefusalTest, PskAndPskIdMustComeTogether) {
  Bytes psk(32, 1);
  Bytes psk_id = ToBytes("id");
  HpkeSenderOptions psk_only;
  psk_only.psk = psk;
  HpkeSenderOptions id_only;
  id_only.psk_id = psk_id;
  for (const HpkeSenderOptions& options : {psk_only, id_only}) {
    auto sender = HpkeSetupSender(suite_, recipient_.public_key(), info_, options);
    ASSERT_FALSE(sender.ok());
    EXPECT_EQ(sender.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(sender.status().message().find("psk"), std::string::npos);
  }
  auto good = HpkeSetupSender(suite_, recipient_.public_key(), info_);
  ASSERT_TRUE(good.ok());
  HpkeRecipientOptions receive_psk_only;
  receive_psk_only.psk = psk;
  HpkeRecipientOptions receive_id_only;
  receive_id_only.psk_id = psk_id;
  for (const HpkeRecipientOptions& options : {receive_psk_only, receive_id_only}) {
    auto context = HpkeSetupRecipient(suite_, good->enc, recipient_, info_, options);
    ASSERT_FALSE(context.ok());
    EXPECT_EQ(context.status().code(), StatusCode::kInvalidArgument);
  }
}

TEST(VerifyPskInputsTest, FollowsRfc9180Section51) {
  Bytes psk(32, 1);
  Bytes id = ToBytes("id");
  EXPECT_TRUE(internal::VerifyPskInputs(HpkeMode::kBase, {}, {}).ok());
  EXPECT_TRUE(internal::VerifyPskInputs(HpkeMode::kAuth, {}, {}).ok());
  EXPECT_TRUE(internal::VerifyPskInputs(HpkeMode::kPsk, psk, id).ok());
  EXPECT_TRUE(internal::VerifyPskInputs(HpkeMode::kAuthPsk, psk, id).ok());
  EXPECT_FALSE(internal::VerifyPskInputs(HpkeMode::kPsk, psk, {}).ok());
  EXPECT_FALSE(internal::VerifyPskInputs(HpkeMode::kPsk, {}, id).ok());
  EXPECT_FALSE(internal::VerifyPskInputs(HpkeMode::kBase, psk, id).ok());
  EXPECT_FALSE(internal::VerifyPskInputs(HpkeMode::kAuth, psk, id).ok());
  EXPECT_FALSE(internal::VerifyPskInputs(HpkeMode::kPsk, {}, {}).ok());
  EXPECT_FALSE(internal::VerifyPskInputs(HpkeMode::kAuthPsk, {}, {}).ok());
}

TEST_F(HpkeRefusalTest, PskModeOpenedWithoutOrWithAnotherPskFails) {
  HpkeSenderOptions options;
  Bytes psk(32, 7);
  Bytes psk_id = ToBytes("tenant-7");  // options only view it: it must outlive them
  options.psk = psk;
  options.psk_id = psk_id;
  auto sealed = HpkeSeal(suite_, recipient_.public_key(), info_, {}, ToBytes("x"), options);
  ASSERT_TRUE(sealed.ok());
  auto without = HpkeOpen(suite_, sealed->enc, recipient_, info_, {}, sealed->ciphertext);
  ASSERT_FALSE(without.ok());
  EXPECT_EQ(without.status().code(), StatusCode::kPermissionDenied);
  HpkeRecipientOptions wrong;
  Bytes other_psk(32, 8);
  wrong.psk = other_psk;
  wrong.psk_id = psk_id;
  EXPECT_FALSE(
      HpkeOpen(suite_, sealed->enc, recipient_, info_, {}, sealed->ciphertext, wrong).ok());
  HpkeRecipientOptions right;
  right.psk = psk;
  right.psk_id = psk_id;
  EXPECT_TRUE(
      HpkeOpen(suite_, sealed->enc, recipient_, info_, {}, sealed->ciphertext, right).ok());
}

TEST_F(HpkeRefusalTest, AuthModeNeedsTheRightSenderKey) {
  HpkeKeyPair sender_key = MustGenerate();
  HpkeSenderOptions options;
  options.sender_key = &sender_key;
  auto sealed = HpkeSeal(suite_, recipient_.public_key(), info_, {}, ToBytes("x"), options);
  ASSERT_TRUE(sealed.ok());
  EXPECT_FALSE(HpkeOpen(suite_, sealed->enc, recipient_, info_, {}, sealed->ciphertext).ok());
  HpkeKeyPair impostor = MustGenerate();
  HpkeRecipientOptions wrong;
  wrong.sender_public_key = impostor.public_key();
  EXPECT_FALSE(
      HpkeOpen(suite_, sealed->enc, recipient_, info_, {}, sealed->ciphertext, wrong).ok());
  HpkeRecipientOptions short_key;
  Bytes short_bytes(31, 1);
  short_key.sender_public_key = short_bytes;
  auto malformed =
      HpkeOpen(suite_, sealed->enc, recipient_, info_, {}, sealed->ciphertext, short_key);
  ASSERT_FALSE(malformed.ok());
  EXPECT_EQ(malformed.status().code(), StatusCode::kInvalidArgument);
  HpkeRecipientOptions right;
  right.sender_public_key = sender_key.public_key();
  EXPECT_TRUE(
      HpkeOpen(suite_, sealed->enc, recipient_, info_, {}, sealed->ciphertext, right).ok());
}

TEST_F(HpkeRefusalTest, ExportOnlyContextExportsButRefusesSealAndOpen) {
  HpkeSuite suite = Suite(HpkeKdf::kHkdfSha256, HpkeAead::kExportOnly);
  auto sender = HpkeSetupSender(suite, recipient_.public_key(), info_);
  ASSERT_TRUE(sender.ok()) << sender.status().ToString();
  auto sealed = sender->context.Seal({}, ToBytes("x"));
  ASSERT_FALSE(sealed.ok());
  EXPECT_EQ(sealed.status().code(), StatusCode::kFailedPrecondition);
  auto receiver = HpkeSetupRecipient(suite, sender->enc, recipient_, info_);
  ASSERT_TRUE(receiver.ok());
  EXPECT_EQ(receiver->Open({}, Bytes(32, 0)).status().code(), StatusCode::kFailedPrecondition);
  auto a = sender->context.Export(ToBytes("label"), 32);
  auto b = receiver->Export(ToBytes("label"), 32);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_TRUE(ConstantTimeEquals(a->view(), b->view()));
  auto single = HpkeSeal(suite, recipient_.public_key(), info_, {}, ToBytes("x"));
  ASSERT_FALSE(single.ok());
  EXPECT_EQ(single.status().code(), StatusCode::kFailedPrecondition);
}

TEST_F(HpkeRefusalTest, ExportLengthIsLimitedTo255TimesNh) {
  for (HpkeKdf kdf : {HpkeKdf::kHkdfSha256, HpkeKdf::kHkdfSha512}) {
    HpkeSuite suite = Suite(kdf, HpkeAead::kAes128Gcm);
    auto sender = HpkeSetupSender(suite, recipient_.public_key(), info_);
    ASSERT_TRUE(sender.ok());
    size_t limit = 255 * (kdf == HpkeKdf::kHkdfSha256 ? 32 : 64);
    auto at_limit = sender->context.Export({}, limit);
    ASSERT_TRUE(at_limit.ok()) << at_limit.status().ToString();
    EXPECT_EQ(at_limit->size(), limit);
    auto over = sender->context.Export({}, limit + 1);
    ASSERT_FALSE(over.ok());
    EXPECT_EQ(over.status().code(), StatusCode::kInvalidArgument);
    EXPECT_FALSE(sender->context.Export({}, 70000).ok());
  }
}

TEST_F(HpkeRefusalTest, EachRoleOnlyDoesItsOwnHalf) {
  auto sender = HpkeSetupSender(suite_, recipient_.public_key(), info_);
  ASSERT_TRUE(sender.ok());
  auto receiver = HpkeSetupRecipient(suite_, sender->enc, recipient_, info_);
  ASSERT_TRUE(receiver.ok());
  EXPECT_EQ(receiver->Seal({}, ToBytes("x")).status().code(), StatusCode::kFailedPrecondition);
  auto sealed = sender->context.Seal({}, ToBytes("x"));
  ASSERT_TRUE(sealed.ok());
  EXPECT_EQ(sender->context.Open({}, *sealed).status().code(), StatusCode::kFailedPrecondition);
  HpkeContext moved = std::move(sender->context);
  EXPECT_EQ(sender->context.Seal({}, ToBytes("x")).status().code(),  // NOLINT: moved-from
            StatusCode::kFailedPrecondition);
  EXPECT_TRUE(moved.Seal({}, ToBytes("x")).ok());
}

TEST_F(HpkeRefusalTest, MovedFromKeyPairIsRefusedNotUsed) {
  auto sealed = HpkeSeal(suite_, recipient_.public_key(), info_, {}, ToBytes("x"));
  ASSERT_TRUE(sealed.ok());
  HpkeKeyPair moved = std::move(recipient_);
  auto refused = HpkeOpen(suite_, sealed->enc, recipient_, info_, {}, sealed->ciphertext);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(HpkeOpen(suite_, sealed->enc, moved, info_, {}, sealed->ciphertext).ok());
  HpkeSenderOptions options;
  options.sender_key = &recipient_;  // moved from
  EXPECT_EQ(HpkeSetupSender(suite_, moved.public_key(), info_, options).status().code(),
            StatusCode::kFailedPrecondition);
}

TEST_F(HpkeRefusalTest, SequenceNumberOverflowStopsTheContext) {
  auto sender = HpkeSetupSender(suite_, recipient_.public_key(), info_);
  ASSERT_TRUE(sender.ok());
  auto receiver = HpkeSetupRecipient(suite_, sender->enc, recipient_, info_);
  ASSERT_TRUE(receiver.ok());
  HpkeContextBuilder::SetSequenceNumberForTesting(sender->context, internal::kMaxSequenceNumber - 1);
  HpkeContextBuilder::SetSequenceNumberForTesting(*receiver, internal::kMaxSequenceNumber - 1);
  auto last = sender->context.Seal({}, ToBytes("last"));
  ASSERT_TRUE(last.ok());
  auto opened = receiver->Open({}, *last);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  EXPECT_EQ(ToString(*opened), "last");
  auto refused = sender->context.Seal({}, ToBytes("one too many"));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(receiver->Open({}, *last).status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(HpkeContextBuilder::SequenceNumberForTesting(sender->context),
            internal::kMaxSequenceNumber);
}

TEST(ComputeNonceTest, XorsTheBigEndianSequenceIntoTheLastBytes) {
  Bytes zeros(12, 0);
  EXPECT_EQ(ToHex(internal::ComputeNonce(zeros, 0)), "000000000000000000000000");
  EXPECT_EQ(ToHex(internal::ComputeNonce(zeros, 1)), "000000000000000000000001");
  EXPECT_EQ(ToHex(internal::ComputeNonce(zeros, 0x0102030405060708)),
            "000000000102030405060708");
  Bytes base = Hex("56d890e5accaaf011cff4b7d");
  EXPECT_EQ(ToHex(internal::ComputeNonce(base, 1)), "56d890e5accaaf011cff4b7c");
  EXPECT_EQ(ToHex(internal::ComputeNonce(base, UINT64_MAX)), "56d890e5533550fee300b482");
}

}  // namespace
}  // namespace supercluster::crypto
