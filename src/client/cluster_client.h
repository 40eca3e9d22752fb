// The client of a running cluster's confidential API (docs/data-plane.md): what
// `supercluster infer` and the integration tests use. One inference is
//   1. GET /v1/attestation?model=M&k=N from the endpoint: a few candidate workers' documents,
//   2. VerifyCandidates() under the client's own policy (the endpoint is not trusted),
//   3. SealRequest() to every accepted candidate, POST /v1/sealed naming them in
//      X-Supercluster-Candidates,
//   4. the answer's server-sent events opened piece by piece as they arrive.
// The routers on the way see the tenant, the model and sizes, never the prompt or answer.
//
// Blocking; use one ClusterClient per thread.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "attest/verifier.h"
#include "base/status.h"
#include "client/sealed_client.h"
#include "net/http_client.h"

namespace supercluster::client {

struct ClusterClientOptions {
  std::string endpoint;  // the global endpoint (or a regional router), "http://HOST:PORT"
  std::string api_key;   // sent as "Authorization: Bearer KEY"
  attest::AttestationPolicy policy;
  int candidates = 4;    // k: how many workers to seal each request to (1..16)
  net::ClientOptions http;
};

// A worker the endpoint offered and this client's verifier accepted.
struct Candidate {
  std::string instance;
  std::string region;
  AcceptedEnclave enclave;
};

struct CandidateList {
  std::vector<Candidate> accepted;
  std::vector<std::string> rejections;  // why each refused document was refused
};

// How a sealed inference ended.
struct InferenceResult {
  std::string text;           // everything generated
  std::string finish_reason;  // "stop", "length", ...
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  // "region/instance" of the candidate whose enclave answered: the recipient whose keys
  // opened the answer (the routers' X-Supercluster-Served-By is not trusted for it).
  std::string served_by;
};

class ClusterClient {
 public:
  explicit ClusterClient(ClusterClientOptions options);
  ~ClusterClient();
  ClusterClient(const ClusterClient&) = delete;
  ClusterClient& operator=(const ClusterClient&) = delete;

  // Steps 1 and 2. Fails when the endpoint answers an error or no document is accepted.
  base::Result<CandidateList> FetchCandidates(const std::string& model);

  // Steps 3 and 4 for an OpenAI-shaped completion request `request_json` (its "model" must
  // be `model`). `on_text` gets each piece of the answer as soon as it opens. An error
  // answer before the stream keeps its HTTP meaning in the status code (401
  // kUnauthenticated, 403 kPermissionDenied, 429 kResourceExhausted, 400/413
  // kInvalidArgument, 404 kNotFound, 5xx kUnavailable); an `event: error` or a stream that
  // ends early is kUnavailable (or kDataLoss for an answer that does not open); an answer
  // that has not ended within options.http.request_timeout is kDeadlineExceeded.
  // `on_start` (optional) runs when the answer's stream begins (a 200 head arrived), with
  // the worker the routers say serves it ("region/instance", escaped). That is only their
  // claim, to watch a request as it goes; InferenceResult::served_by is the verified one.
  base::Result<InferenceResult> Infer(
      const std::vector<Candidate>& candidates, const std::string& model,
      std::string_view request_json, const std::function<void(std::string_view)>& on_text,
      const std::function<void(const std::string& claimed_by)>& on_start = {});

  // FetchCandidates then Infer.
  base::Result<InferenceResult> FetchAndInfer(
      const std::string& model, std::string_view request_json,
      const std::function<void(std::string_view)>& on_text);

 private:
  ClusterClientOptions options_;
  std::unique_ptr<net::HttpClient> http_;
};

// The status an HTTP error answer maps to, with the server's message when its body is the
// usual {"error":{"message":...}}.
base::Status StatusFromHttpError(int status, const std::string& body);

}  // namespace supercluster::client
