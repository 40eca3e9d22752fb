// libFuzzer target for everything that parses sealed messages from the network or a peer:
// OHTTP decapsulation (crypto/ohttp.h), multi-recipient envelopes (crypto/multi_recipient.h),
// sealed response streams (crypto/chunked_response.h), key config lists, the enclave's frame
// bodies (enclave/protocol.h) and enclave identities (enclave/identity.h).
//
// The first input byte picks the parser; the rest is its input. The keys are derived from
// fixed bytes, so a seed sealed to them opens and mutations start past the cryptography's
// front door. Seeds (corpus/sealed_message/) are written by running this binary with
// SUPERCLUSTER_FUZZ_WRITE_SEEDS=DIR set: it writes one valid input per parser and exits.
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

#include "crypto/aead.h"
#include "crypto/chunked_response.h"
#include "crypto/multi_recipient.h"
#include "crypto/ohttp.h"
#include "enclave/identity.h"
#include "enclave/protocol.h"

namespace {

using namespace supercluster;
using crypto::ByteView;
using crypto::Bytes;

enum Parser : uint8_t {
  kOhttpRequest = 0,
  kMultiRecipientRequest,
  kResponseStream,
  kKeyConfigList,
  kEnclaveRequest,
  kEnclaveReply,
  kEnclaveIdentity,
  kParserCount,
};

struct Fixture {
  std::optional<crypto::HpkeKeyPair> key;
  crypto::OhttpKeyConfig config;
  std::optional<crypto::RecipientResponseSecret> response_secret;
};

const Fixture& TheFixture() {
  static const Fixture fixture = [] {
    Fixture built;
    Bytes ikm(32, 0x5C);
    built.key.emplace(crypto::HpkeKeyPair::Derive(crypto::HpkeKem::kX25519Sha256, ikm).value());
    built.config.key_id = 1;
    built.config.public_key = built.key->public_key();
    built.config.suites = {{crypto::HpkeKdf::kHkdfSha256, crypto::HpkeAead::kAes128Gcm}};
    crypto::RecipientResponseSecret secret;
    secret.enc = Bytes(32, 0x11);
    secret.secret = crypto::SecretBytes(Bytes(16, 0x22));
    built.response_secret.emplace(std::move(secret));
    return built;
  }();
  return fixture;
}

void OpenResponseStream(ByteView input) {
  const Fixture& fixture = TheFixture();
  std::vector<crypto::RecipientResponseSecret> secrets;
  secrets.push_back({fixture.response_secret->kdf, fixture.response_secret->aead,
                     fixture.response_secret->enc, fixture.response_secret->secret.Copy()});
  crypto::ChunkedResponseOpener opener =
      crypto::OpenMultiRecipientResponse(std::move(secrets), /*max_chunk_bytes=*/4096);
  std::vector<Bytes> out;
  // Feed in two parts split at a point the input chooses, then finish.
  size_t split = input.empty() ? 0 : input[0] % (input.size() + 1);
  if (opener.Feed(input.first(split), &out).ok() && opener.Feed(input.subspan(split), &out).ok()) {
    (void)opener.Finish(&out);
  }
}

void Run(Parser parser, ByteView input) {
  const Fixture& fixture = TheFixture();
  switch (parser) {
    case kOhttpRequest:
      (void)crypto::OhttpDecapsulateRequest(fixture.config, *fixture.key, crypto::kInferenceLabels,
                                            input);
      break;
    case kMultiRecipientRequest:
      (void)crypto::OpenAsRecipient(fixture.config, *fixture.key, crypto::kInferenceLabels, input);
      break;
    case kResponseStream:
      OpenResponseStream(input);
      break;
    case kKeyConfigList:
      (void)crypto::ParseKeyConfigList(input);
      break;
    case kEnclaveRequest:
      (void)enclave::DecodeRequest(input);
      break;
    case kEnclaveReply:
      (void)enclave::DecodeReply(input);
      break;
    case kEnclaveIdentity:
      (void)enclave::EnclaveIdentity::Parse(input);
      break;
    case kParserCount:
      break;
  }
}

// One valid input per parser (see the header comment).
std::vector<std::pair<std::string, Bytes>> Seeds() {
  const Fixture& fixture = TheFixture();
  crypto::HpkeSuite suite{crypto::HpkeKem::kX25519Sha256, crypto::HpkeKdf::kHkdfSha256,
                          crypto::HpkeAead::kAes128Gcm};
  auto ohttp = crypto::OhttpEncapsulateRequest(fixture.config, suite, crypto::kInferenceLabels,
                                               crypto::AsBytes("a sealed prompt"));
  auto multi = crypto::SealForRecipients({fixture.config, fixture.config},
                                         crypto::HpkeAead::kAes128Gcm, crypto::kInferenceLabels,
                                         crypto::AsBytes("a sealed prompt"));
  // A response stream under the fixed secret: derive keys the way the opener will.
  Bytes response_nonce(16, 0x33);
  auto keys = crypto::OhttpResponseKeysFromSecret(
      fixture.response_secret->kdf, fixture.response_secret->aead,
      fixture.response_secret->secret.view(), fixture.response_secret->enc, response_nonce);
  Bytes stream{0};  // recipient index 0
  stream.insert(stream.end(), response_nonce.begin(), response_nonce.end());
  for (int counter = 0; counter < 3; ++counter) {
    Bytes nonce(keys->nonce.view().begin(), keys->nonce.view().end());
    nonce.back() ^= static_cast<uint8_t>(counter);
    bool final = counter == 2;
    auto sealed = crypto::AeadSeal(crypto::HpkeAead::kAes128Gcm, keys->key.view(), nonce,
                                   final ? crypto::AsBytes("final") : ByteView{},
                                   crypto::AsBytes("chunk"));
    stream.push_back(final ? 0 : static_cast<uint8_t>(sealed->size()));
    stream.insert(stream.end(), sealed->begin(), sealed->end());
  }
  enclave::EnclaveIdentity identity;
  identity.key_config = fixture.config;
  identity.receipt_key_point = Bytes(97, 0x07);
  identity.receipt_key_point[0] = 0x04;
  return {
      {"ohttp-request", ohttp->encapsulated},
      {"multi-recipient-request", multi->sealed},
      {"response-stream", stream},
      {"key-config-list", crypto::EncodeKeyConfigList({fixture.config, fixture.config})},
      {"enclave-request",
       enclave::EncodeRequest({enclave::Op::kSeal,
                               {enclave::EncodeContextId(7), Bytes{1}, Bytes{'h', 'i'}}})},
      {"enclave-reply", enclave::EncodeReply({supercluster::base::Status::Ok(), {Bytes{1, 2}}})},
      {"enclave-identity", identity.Encode()},
  };
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const char* directory = std::getenv("SUPERCLUSTER_FUZZ_WRITE_SEEDS");
  if (directory == nullptr) return 0;
  std::filesystem::create_directories(directory);
  uint8_t parser = 0;
  for (const auto& [name, bytes] : Seeds()) {
    std::ofstream file(std::filesystem::path(directory) / (name + ".bin"), std::ios::binary);
    file.put(static_cast<char>(parser++));
    file.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  }
  std::exit(0);
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  Run(static_cast<Parser>(data[0] % kParserCount), ByteView(data + 1, size - 1));
  return 0;
}
