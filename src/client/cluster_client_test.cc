// The cluster client against an endpoint that is a test double for the global endpoint: it
// serves a real in-process enclave's attestation document and answers sealed requests by
// opening them with that enclave and sealing answers it shapes per test, good and hostile:
// an error event, a cut stream, bad base64, a chunk that is not JSON, no finish_reason, an
// oversized event, HTTP errors.
#include "client/cluster_client.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>

#include "base/base64.h"
#include "base/config.h"
#include "client/test_enclave.h"
#include "enclave/enclave_core.h"
#include "net/http_server.h"
#include "net/sse.h"

namespace supercluster::client {
namespace {

using Json = nlohmann::json;

enum class Answer {
  kGood,
  kErrorEvent,
  kCut,
  kBadBase64,
  kNotJson,
  kNoFinishReason,
  kOversizedEvent,
  kUnknownEventFirst,
  kTooManyRequests,
  kTrickle,       // a first chunk, then a comment line every 50 ms, never an end
  kLyingHeader,   // a good answer whose X-Supercluster-Served-By names another worker
};

class ClusterClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto ca = attest::DevCa::Generate();
    ASSERT_TRUE(ca.ok());
    ca_.emplace(std::move(*ca));
    auto core = enclave::EnclaveCore::Create({}, enclave::testing::MakeDevAttestor(*ca_));
    ASSERT_TRUE(core.ok());
    core_ = std::move(*core);
    auto document = core_->Attest({}, {});
    ASSERT_TRUE(document.ok());
    document_b64_ = base::Base64Encode(crypto::AsText(*document));

    auto router = std::make_shared<net::HttpRouter>();
    router->Handle("GET", "/v1/attestation", [this](net::HttpRequest request, auto responder) {
      last_authorization_ = request.headers.Get("Authorization");
      responder->Send(net::HttpResponse::Json(200, attestation_answer_));
    });
    router->Handle("POST", "/v1/sealed", [this](net::HttpRequest request, auto responder) {
      Sealed(std::move(request), std::move(responder));
    });
    net::ServerOptions options = net::ServerOptions::FromConfig(base::Config::Defaults());
    options.io_threads = 2;
    options.max_stream_buffer_bytes = 8 << 20;  // room for the oversized event
    server_ = std::make_unique<net::HttpServer>(options, router);
    ASSERT_TRUE(server_->Listen(*net::ParseEndpoint("127.0.0.1:0")).ok());
    ASSERT_TRUE(server_->Start().ok());
    attestation_answer_ =
        Json{{"candidates",
              {{{"instance", "w1"}, {"region", "r1"}, {"document", document_b64_}},
               {{"instance", "w2"}, {"region", "r1"}, {"document", "bm90IGEgZG9jdW1lbnQ="}},
               {{"instance", "w3"}, {"region", "r2"}, {"document", "%%%"}}}}}
            .dump();
  }
  void TearDown() override {
    server_->Stop();
    if (trickler_.joinable()) trickler_.join();
  }

  ClusterClientOptions Options() {
    ClusterClientOptions options;
    options.endpoint = server_->BoundEndpoints().front().ToString();
    options.api_key = "sc-test-key";
    options.policy = enclave::testing::PolicyFor(*ca_);
    options.http = net::ClientOptions::FromConfig(base::Config::Defaults());
    return options;
  }

  // Opens the request with the enclave and answers as `answer_` says.
  void Sealed(net::HttpRequest request, std::shared_ptr<net::Responder> responder) {
    last_candidates_ = request.headers.Get("X-Supercluster-Candidates");
    last_body_ = request.body;
    if (answer_ == Answer::kTooManyRequests) {
      net::HttpResponse response = net::HttpResponse::Json(
          429, R"({"error":{"message":"tenant t is over its rate","type":"rate_limited"}})");
      response.headers.Set("Retry-After", "1");
      return responder->Send(std::move(response));
    }
    auto opened = core_->Open(enclave::SealedFormat::kMultiRecipient, crypto::AsBytes(request.body));
    if (!opened.ok()) {
      return responder->Send(net::HttpResponse::Json(400, R"({"error":{"message":"no"}})"));
    }
    opened_body_ = crypto::ToString(opened->payload);
    auto seal = [&](const std::string& plaintext, bool final) {
      auto sealed = core_->Seal(opened->context_id, crypto::AsBytes(plaintext), final);
      EXPECT_TRUE(sealed.ok());
      return net::FormatSseEvent({"sealed", base::Base64Encode(crypto::AsText(*sealed)), ""});
    };
    net::Headers headers;
    headers.Set("Content-Type", "text/event-stream");
    headers.Set("X-Supercluster-Served-By",
                answer_ == Answer::kLyingHeader ? "r9/liar\nsupercluster infer: forged" : "r1/w1");
    responder->StartStream(200, headers);
    const std::string final_chunk =
        R"({"text":"lo","finish_reason":"stop","usage":{"prompt_tokens":3,"completion_tokens":2}})";
    switch (answer_) {
      case Answer::kGood:
      case Answer::kLyingHeader:
        responder->Write(seal(R"({"text":"Hel"})", false));
        responder->Write(seal(final_chunk, true));
        break;
      case Answer::kErrorEvent:
        responder->Write(seal(R"({"text":"Hel"})", false));
        responder->Write(net::FormatSseEvent(
            {"error", R"({"error":{"message":"worker r1/w1 failed","type":"upstream_error"}})", ""}));
        break;
      case Answer::kCut:
        responder->Write(seal(R"({"text":"Hel"})", false));
        break;
      case Answer::kBadBase64:
        responder->Write(net::FormatSseEvent({"sealed", "%%%not base64", ""}));
        break;
      case Answer::kNotJson:
        responder->Write(seal("not json at all", true));
        break;
      case Answer::kNoFinishReason:
        responder->Write(seal(R"({"text":"Hello"})", true));
        break;
      case Answer::kOversizedEvent:
        responder->Write(net::FormatSseEvent({"sealed", std::string(2 << 20, 'A'), ""}));
        break;
      case Answer::kUnknownEventFirst:
        responder->Write(net::FormatSseEvent({"progress", "{}", ""}));
        responder->Write(seal(R"({"text":"Hel"})", false));
        responder->Write(seal(final_chunk, true));
        break;
      case Answer::kTooManyRequests:
        break;
      case Answer::kTrickle:
        responder->Write(seal(R"({"text":"Hel"})", false));
        trickler_ = std::thread([responder] {
          for (int i = 0; i < 200 && !responder->Closed(); ++i) {
            responder->Write(": still here\n\n");
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
          }
          responder->Finish();
        });
        return;
    }
    responder->Finish();
  }

  base::Result<InferenceResult> InferWith(Answer answer) {
    answer_ = answer;
    ClusterClient client(Options());
    return client.FetchAndInfer("kjv", R"({"model":"kjv","prompt":"secret prompt"})", nullptr);
  }

  std::optional<attest::DevCa> ca_;
  std::unique_ptr<enclave::EnclaveCore> core_;
  std::string document_b64_;
  std::unique_ptr<net::HttpServer> server_;
  std::string attestation_answer_;
  std::atomic<Answer> answer_{Answer::kGood};
  std::thread trickler_;
  std::string last_authorization_, last_candidates_, last_body_, opened_body_;
};

TEST_F(ClusterClientTest, VerifiesCandidatesSealsAndOpensTheStreamedAnswer) {
  ClusterClient client(Options());
  auto candidates = client.FetchCandidates("kjv");
  ASSERT_TRUE(candidates.ok()) << candidates.status().ToString();
  ASSERT_EQ(candidates->accepted.size(), 1u);
  EXPECT_EQ(candidates->accepted[0].instance, "w1");
  ASSERT_EQ(candidates->rejections.size(), 2u);  // not a document; not base64
  EXPECT_EQ(last_authorization_, "Bearer sc-test-key");

  std::string streamed;
  auto result = client.Infer(candidates->accepted, "kjv",
                             R"({"model":"kjv","prompt":"secret prompt"})",
                             [&](std::string_view text) { streamed += text; });
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->text, "Hello");
  EXPECT_EQ(streamed, "Hello");
  EXPECT_EQ(result->finish_reason, "stop");
  EXPECT_EQ(result->prompt_tokens, 3);
  EXPECT_EQ(result->completion_tokens, 2);
  EXPECT_EQ(result->served_by, "r1/w1");
  EXPECT_EQ(last_candidates_, "r1/w1");
  // What travelled was sealed; only the enclave read the prompt.
  EXPECT_EQ(last_body_.find("secret prompt"), std::string::npos);
  EXPECT_EQ(opened_body_, R"({"model":"kjv","prompt":"secret prompt"})");
}

TEST_F(ClusterClientTest, UnknownEventTypesAreSkipped) {
  auto result = InferWith(Answer::kUnknownEventFirst);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->text, "Hello");
}

TEST_F(ClusterClientTest, BrokenOrHostileAnswersAreErrorsThatSayWhat) {
  struct Case {
    Answer answer;
    base::StatusCode code;
    std::string says;
  };
  for (const Case& test : std::vector<Case>{
           {Answer::kErrorEvent, base::StatusCode::kUnavailable, "worker r1/w1 failed"},
           {Answer::kCut, base::StatusCode::kUnavailable, "ended before its end"},
           {Answer::kBadBase64, base::StatusCode::kDataLoss, "base64"},
           {Answer::kNotJson, base::StatusCode::kDataLoss, "not a JSON object"},
           {Answer::kNoFinishReason, base::StatusCode::kDataLoss, "finish_reason"},
           {Answer::kOversizedEvent, base::StatusCode::kDataLoss, "oversized"},
           {Answer::kTooManyRequests, base::StatusCode::kResourceExhausted, "over its rate"},
       }) {
    auto result = InferWith(test.answer);
    ASSERT_FALSE(result.ok()) << static_cast<int>(test.answer);
    EXPECT_EQ(result.status().code(), test.code) << result.status().ToString();
    EXPECT_NE(result.status().message().find(test.says), std::string::npos)
        << result.status().ToString();
  }
}

TEST_F(ClusterClientTest, CandidateListsThatCannotBeUsedAreErrors) {
  ClusterClient client(Options());
  attestation_answer_ = R"({"candidates":[]})";
  EXPECT_EQ(client.FetchCandidates("kjv").status().code(), base::StatusCode::kFailedPrecondition);
  attestation_answer_ = R"({"something":"else"})";
  EXPECT_EQ(client.FetchCandidates("kjv").status().code(), base::StatusCode::kDataLoss);
  attestation_answer_ = "not json";
  EXPECT_EQ(client.FetchCandidates("kjv").status().code(), base::StatusCode::kDataLoss);
  ClusterClientOptions options = Options();
  options.candidates = 17;
  EXPECT_EQ(ClusterClient(options).FetchCandidates("kjv").status().code(),
            base::StatusCode::kInvalidArgument);
}

// The endpoint is not trusted: entries that are not objects, names that are not plain
// (they go into a header and onto the terminal), one worker offered twice or one enclave
// under two names are refused one by one, never fatal; more candidates than asked for, or
// an answer too big to parse safely, refuse the whole list.
TEST_F(ClusterClientTest, HostileCandidateListsAreRefusedEntryByEntry) {
  ClusterClientOptions options = Options();
  options.candidates = 8;
  const Json good = {{"instance", "w1"}, {"region", "r1"}, {"document", document_b64_}};
  attestation_answer_ =
      Json{{"candidates",
            {1, nullptr, {{"instance", 5}, {"region", "r1"}, {"document", document_b64_}},
             {{"instance", "w\n1"}, {"region", "r1"}, {"document", document_b64_}},
             {{"instance", "w1"}, {"region", "\x1b[31mr1"}, {"document", document_b64_}},
             good, good,
             {{"instance", "w9"}, {"region", "r1"}, {"document", document_b64_}}}}}
          .dump();
  auto list = ClusterClient(options).FetchCandidates("kjv");
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  ASSERT_EQ(list->accepted.size(), 1u);
  EXPECT_EQ(list->accepted[0].region + "/" + list->accepted[0].instance, "r1/w1");
  ASSERT_EQ(list->rejections.size(), 7u);
  for (const std::string& rejection : list->rejections) {
    EXPECT_EQ(rejection.find_first_of("\n\x1b"), std::string::npos) << rejection;
  }
  EXPECT_NE(list->rejections[5].find("offered twice"), std::string::npos) << list->rejections[5];
  EXPECT_NE(list->rejections[6].find("same enclave"), std::string::npos) << list->rejections[6];

  options.candidates = 2;
  attestation_answer_ = Json{{"candidates", {good, good, good}}}.dump();
  auto too_many = ClusterClient(options).FetchCandidates("kjv");
  EXPECT_EQ(too_many.status().code(), base::StatusCode::kDataLoss);
  EXPECT_NE(too_many.status().message().find("more than the 2 asked for"), std::string::npos);

  attestation_answer_ = std::string((1 << 19) + 1, '[') + std::string((1 << 19) + 1, ']');
  auto nested = ClusterClient(options).FetchCandidates("kjv");
  EXPECT_EQ(nested.status().code(), base::StatusCode::kDataLoss);
  EXPECT_NE(nested.status().message().find("over"), std::string::npos) << nested.status().ToString();
}

// Who served the answer is the candidate whose keys opened it, not what a router's header
// claims (here a forged name with a line break in it).
TEST_F(ClusterClientTest, ServedByIsTheRecipientThatAnsweredNotTheHeader) {
  auto other = enclave::EnclaveCore::Create({}, enclave::testing::MakeDevAttestor(*ca_));
  ASSERT_TRUE(other.ok());
  auto other_document = (*other)->Attest({}, {});
  ASSERT_TRUE(other_document.ok());
  attestation_answer_ =
      Json{{"candidates",
            {{{"instance", "w0"},
              {"region", "r0"},
              {"document", base::Base64Encode(crypto::AsText(*other_document))}},
             {{"instance", "w1"}, {"region", "r1"}, {"document", document_b64_}}}}}
          .dump();
  auto result = InferWith(Answer::kLyingHeader);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(last_candidates_, "r0/w0,r1/w1");
  EXPECT_EQ(result->served_by, "r1/w1") << "the second recipient's enclave answered";
}

// client.request_timeout bounds the whole answer, even one that keeps sending a little.
TEST_F(ClusterClientTest, AnAnswerThatNeverEndsFailsAtTheRequestTimeout) {
  answer_ = Answer::kTrickle;
  ClusterClientOptions options = Options();
  options.http.request_timeout = std::chrono::milliseconds(500);
  ClusterClient client(options);
  auto started = std::chrono::steady_clock::now();
  auto result = client.FetchAndInfer("kjv", R"({"model":"kjv","prompt":"x"})", nullptr);
  auto took = std::chrono::steady_clock::now() - started;
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), base::StatusCode::kDeadlineExceeded) << result.status().ToString();
  EXPECT_LT(took, std::chrono::seconds(3));
}

TEST(StatusFromHttpErrorTest, KeepsTheMeaningOfTheStatusAndTheServersMessage) {
  base::Status status = StatusFromHttpError(401, R"({"error":{"message":"unknown API key"}})");
  EXPECT_EQ(status.code(), base::StatusCode::kUnauthenticated);
  EXPECT_EQ(status.message(), "HTTP 401: unknown API key");
  EXPECT_EQ(StatusFromHttpError(403, "").code(), base::StatusCode::kPermissionDenied);
  EXPECT_EQ(StatusFromHttpError(404, "").code(), base::StatusCode::kNotFound);
  EXPECT_EQ(StatusFromHttpError(413, "").code(), base::StatusCode::kInvalidArgument);
  EXPECT_EQ(StatusFromHttpError(503, "plain text").message(), "HTTP 503: plain text");
  EXPECT_EQ(StatusFromHttpError(502, "").code(), base::StatusCode::kUnavailable);
  // What the server says is escaped before it can reach a terminal.
  EXPECT_EQ(StatusFromHttpError(500, R"({"error":{"message":"a\nb\u001b[2J"}})").message(),
            "HTTP 500: a\\x0ab\\x1b[2J");
}

}  // namespace
}  // namespace supercluster::client
