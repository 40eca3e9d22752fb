// The enclave as a real process (apps/supercluster-enclave), attested by a dev CA: attest,
// verify, seal a request, open it inside, stream a sealed multi-chunk answer and open it at
// the client; then the refusals (replay, another enclave's key, truncated, reordered or
// tampered streams, a peer sending garbage, anything after the wipe) while it keeps serving.
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "attest/dev_attestor.h"
#include "client/sealed_client.h"
#include "crypto/random.h"
#include "enclave/enclave_client.h"
#include "enclave/enclave_core.h"
#include "client/test_enclave.h"
#include "enclave/wipe_receipt.h"

namespace supercluster::enclave {
namespace {

using crypto::AsBytes;
using crypto::Bytes;
using crypto::ToString;
using namespace std::chrono_literals;

class EnclaveProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/sc-enclave-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    dir_ = pattern;
    auto ca = attest::DevCa::Init(dir_ / "dev-ca");
    ASSERT_TRUE(ca.ok()) << ca.status().ToString();
    ca_.emplace(std::move(*ca));
    socket_ = dir_ / "enclave.sock";
    worker_binary_ = std::filesystem::read_symlink("/proc/self/exe");
    StartEnclave();
    client_ = Connect();
    ASSERT_NE(client_, nullptr) << "the enclave did not start listening";
    policy_.root_certificate = ca_->root_certificate();
    auto measured = attest::DevMeasurements::Measure(SUPERCLUSTER_ENCLAVE_BINARY,
                                                     AsBytes(""), worker_binary_);
    ASSERT_TRUE(measured.ok());
    policy_.allowed_measurements = {{{0, measured->pcr0}, {1, measured->pcr1},
                                     {2, measured->pcr2}}};
  }

  void TearDown() override {
    client_.reset();
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    std::filesystem::remove_all(dir_);
  }

  void StartEnclave() {
    std::string listen = "unix://" + socket_.string();
    std::string data_dir = dir_.string();
    std::string worker = worker_binary_.string();
    pid_ = ::fork();
    ASSERT_GE(pid_, 0);
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // a crashed test leaves no enclave behind
      ::execl(SUPERCLUSTER_ENCLAVE_BINARY, SUPERCLUSTER_ENCLAVE_BINARY, "--data-dir",
              data_dir.c_str(), "--listen", listen.c_str(), "--worker-binary", worker.c_str(),
              "--log-level", "warn", static_cast<char*>(nullptr));
      ::_exit(127);
    }
  }

  // Connects once the enclave listens. The socket file appears at bind(), a moment before
  // listen(), so a connection refused right after start-up is retried (on a loaded machine
  // that moment is long enough to hit).
  std::unique_ptr<EnclaveClient> Connect() {
    auto address = *EnclaveAddress::Parse("unix://" + socket_.string());
    auto client = EnclaveClient::Connect(address);
    for (int i = 0; i < 400 && !client.ok(); ++i) {
      std::this_thread::sleep_for(25ms);
      client = EnclaveClient::Connect(address);
    }
    EXPECT_TRUE(client.ok()) << client.status().ToString();
    return client.ok() ? std::move(*client) : nullptr;
  }

  client::AcceptedEnclave AttestAndVerify() {
    auto nonce = crypto::RandomBytes(16);
    attest::AttestationPolicy policy = policy_;
    policy.expected_nonce = *nonce;
    auto document = client_->Attest(*nonce, {});
    EXPECT_TRUE(document.ok()) << document.status().ToString();
    return testing::Accept(*document, policy);
  }

  // Seals `body` to the enclave, opens it there and seals `answer` as chunks (the last
  // final); returns the sealed chunks and leaves the client's request in `request`.
  std::vector<Bytes> RoundTrip(const client::AcceptedEnclave& enclave, std::string_view body,
                               const std::vector<std::string>& answer,
                               std::optional<client::SealedRequest>* request) {
    auto sealed = client::SealRequest({enclave}, AsBytes(body), client::NowMs());
    EXPECT_TRUE(sealed.ok());
    auto opened = client_->Open(SealedFormat::kMultiRecipient, sealed->envelope);
    EXPECT_TRUE(opened.ok()) << opened.status().ToString();
    if (!opened.ok()) return {};
    EXPECT_EQ(ToString(opened->payload), body);
    std::vector<Bytes> chunks;
    for (size_t i = 0; i < answer.size(); ++i) {
      auto chunk = client_->Seal(opened->context_id, AsBytes(answer[i]), i + 1 == answer.size());
      EXPECT_TRUE(chunk.ok()) << chunk.status().ToString();
      chunks.push_back(std::move(*chunk));
    }
    request->emplace(std::move(*sealed));
    return chunks;
  }

  // Opens `chunks` at the client; returns the status and the text opened so far.
  base::Status OpenAtClient(client::SealedRequest request, const std::vector<Bytes>& chunks,
                            std::string* text) {
    crypto::ChunkedResponseOpener opener = client::OpenResponse(std::move(request));
    std::vector<Bytes> out;
    base::Status status;
    for (const Bytes& chunk : chunks) {
      status = opener.Feed(chunk, &out);
      if (!status.ok()) break;
    }
    if (status.ok()) status = opener.Finish(&out);
    for (const Bytes& piece : out) *text += ToString(piece);
    return status;
  }

  std::filesystem::path dir_, socket_, worker_binary_;
  std::optional<attest::DevCa> ca_;
  pid_t pid_ = -1;
  std::unique_ptr<EnclaveClient> client_;
  attest::AttestationPolicy policy_;
};

const std::vector<std::string> kAnswer = {"In the beginning ", "God created ", "the heaven ",
                                          "and the earth."};

TEST_F(EnclaveProcessTest, AttestedRoundTripStreamsASealedAnswer) {
  client::AcceptedEnclave enclave = AttestAndVerify();
  EXPECT_TRUE(enclave.attestation.dev);
  std::optional<client::SealedRequest> request;
  std::vector<Bytes> chunks = RoundTrip(enclave, "What was in the beginning?", kAnswer, &request);
  ASSERT_EQ(chunks.size(), kAnswer.size());
  std::string text;
  ASSERT_TRUE(OpenAtClient(std::move(*request), chunks, &text).ok());
  EXPECT_EQ(text, "In the beginning God created the heaven and the earth.");
}

TEST_F(EnclaveProcessTest, ReplayedRequestIsRefusedAndTheEnclaveServesOn) {
  client::AcceptedEnclave enclave = AttestAndVerify();
  auto sealed = client::SealRequest({enclave}, AsBytes("once only"), client::NowMs());
  ASSERT_TRUE(sealed.ok());
  ASSERT_TRUE(client_->Open(SealedFormat::kMultiRecipient, sealed->envelope).ok());
  auto replay = client_->Open(SealedFormat::kMultiRecipient, sealed->envelope);
  ASSERT_FALSE(replay.ok());
  EXPECT_NE(replay.status().message().find("replayed"), std::string::npos);
  std::optional<client::SealedRequest> request;
  EXPECT_EQ(RoundTrip(enclave, "next", {"ok"}, &request).size(), 1u);
}

TEST_F(EnclaveProcessTest, RequestSealedToAnotherEnclavesKeyIsRefused) {
  auto other = EnclaveCore::Create(EnclaveOptions{}, testing::MakeDevAttestor(*ca_));
  ASSERT_TRUE(other.ok());
  auto document = (*other)->Attest({}, {});
  ASSERT_TRUE(document.ok());
  client::AcceptedEnclave stranger = testing::Accept(*document, testing::PolicyFor(*ca_));
  auto sealed = client::SealRequest({stranger}, AsBytes("for the other one"), client::NowMs());
  ASSERT_TRUE(sealed.ok());
  auto refused = client_->Open(SealedFormat::kMultiRecipient, sealed->envelope);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), base::StatusCode::kNotFound) << refused.status().ToString();
}

TEST_F(EnclaveProcessTest, DamagedStreamsAreDetectedAtTheClient) {
  client::AcceptedEnclave enclave = AttestAndVerify();
  struct Damage {
    const char* name;
    std::function<void(std::vector<Bytes>&)> apply;
  };
  std::vector<Damage> damages = {
      {"truncated (final chunk dropped)", [](std::vector<Bytes>& c) { c.pop_back(); }},
      {"reordered", [](std::vector<Bytes>& c) { std::swap(c[1], c[2]); }},
      {"tampered", [](std::vector<Bytes>& c) { c[2][c[2].size() / 2] ^= 0x20; }},
      {"chunk replayed",
       [](std::vector<Bytes>& c) {
         Bytes again = c[1];
         c.insert(c.begin() + 2, std::move(again));
       }},
  };
  for (const Damage& damage : damages) {
    std::optional<client::SealedRequest> request;
    std::vector<Bytes> chunks = RoundTrip(enclave, "q", kAnswer, &request);
    ASSERT_EQ(chunks.size(), kAnswer.size());
    damage.apply(chunks);
    std::string text;
    base::Status status = OpenAtClient(std::move(*request), chunks, &text);
    EXPECT_FALSE(status.ok()) << damage.name;
    EXPECT_NE(text, "In the beginning God created the heaven and the earth.") << damage.name;
  }
}

TEST_F(EnclaveProcessTest, PeerSendingGarbageIsDisconnectedOthersAreServed) {
  client::AcceptedEnclave enclave = AttestAndVerify();
  auto address = *EnclaveAddress::Parse("unix://" + socket_.string());
  const std::string garbage[] = {
      std::string("\xFF\xFF\xFF\xFF\x01\x02\x03", 7),  // a 4 GiB frame
      std::string("\x00\x00\x00\x03" "ccc", 7),            // unknown op 0x63
      std::string("\x00\x00\x00\x02\x02\x00", 6),        // open with a truncated field
  };
  for (const std::string& bytes : garbage) {
    auto fd = ConnectTo(address);
    ASSERT_TRUE(fd.ok());
    ASSERT_EQ(::send(*fd, bytes.data(), bytes.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(bytes.size()));
    char buffer[16];
    EXPECT_EQ(::recv(*fd, buffer, sizeof(buffer), 0), 0) << "the enclave should hang up";
    ::close(*fd);
  }
  std::optional<client::SealedRequest> request;
  std::vector<Bytes> chunks = RoundTrip(enclave, "still there?", {"yes"}, &request);
  std::string text;
  ASSERT_TRUE(OpenAtClient(std::move(*request), chunks, &text).ok());
  EXPECT_EQ(text, "yes");
}

TEST_F(EnclaveProcessTest, WipeReceiptVerifiesAndNothingIsServedAfter) {
  client::AcceptedEnclave enclave = AttestAndVerify();
  std::optional<client::SealedRequest> request;
  RoundTrip(enclave, "before", {"a", "b"}, &request);
  auto late = client::SealRequest({enclave}, AsBytes("after"), client::NowMs());
  ASSERT_TRUE(late.ok());
  auto receipt = client_->Wipe();
  ASSERT_TRUE(receipt.ok()) << receipt.status().ToString();
  auto verified = VerifyWipeReceipt(*receipt, enclave.identity.receipt_key_point);
  ASSERT_TRUE(verified.ok()) << verified.status().ToString();
  EXPECT_EQ(verified->contexts_opened, 1u);
  EXPECT_EQ(verified->contexts_closed, 1u);
  auto refused = client_->Open(SealedFormat::kMultiRecipient, late->envelope);
  EXPECT_EQ(refused.status().code(), base::StatusCode::kFailedPrecondition);
  EXPECT_NE(refused.status().message().find("wiped"), std::string::npos);
  EXPECT_FALSE(client_->Attest({}, {}).ok());
}

TEST_F(EnclaveProcessTest, SigtermStopsTheEnclaveCleanly) {
  client_.reset();
  ASSERT_EQ(::kill(pid_, SIGTERM), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(pid_, &status, 0), pid_);
  pid_ = -1;
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_FALSE(std::filesystem::exists(socket_)) << "the socket file is removed";
}

}  // namespace
}  // namespace supercluster::enclave
