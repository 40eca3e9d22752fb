#include "client/cluster_client.h"

#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>
#include <set>

#include "base/base64.h"
#include "base/config_value.h"
#include "base/plain_name.h"
#include "crypto/secret.h"
#include "net/sse.h"

namespace supercluster::client {
namespace {

using Json = nlohmann::json;

// An error answer's body is read for its message only; more than this is not kept.
constexpr size_t kMaxErrorBodyBytes = 64 * 1024;

// The largest /v1/attestation answer parsed: 16 candidates' documents are some 100 KB, and
// a parse holds many times its input (deeply nested JSON about 30 times).
constexpr size_t kMaxAttestationAnswerBytes = 1 << 20;

// What the endpoint says (an error message, a worker's name) reaches the terminal and, for
// names, a request header: control characters are escaped, and it is cut short.
std::string Printable(std::string_view untrusted) {
  return base::PrintableForMessage(untrusted, 300);
}

// A region or instance name as the endpoint gives it: only the characters names have, so
// that it can go into X-Supercluster-Candidates and onto the terminal as it is.
bool IsPlainName(const Json& value) {
  return value.is_string() && base::IsPlainName(value.get_ref<const std::string&>(), 128);
}

std::string PercentEncode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

// The pieces of one sealed answer as they open: each plaintext chunk is one JSON object
// (docs/data-plane.md).
class AnswerReader {
 public:
  AnswerReader(crypto::ChunkedResponseOpener opener,
               const std::function<void(std::string_view)>& on_text)
      : opener_(std::move(opener)), on_text_(on_text) {}

  // Feeds one server-sent event; false once the answer cannot go on (see status()).
  bool OnEvent(const net::SseEvent& event) {
    if (!status_.ok()) return false;
    if (event.event == "error") {
      status_ = base::Unavailable("the answer failed mid-stream: " +
                                  Printable(ErrorMessage(event.data)));
      return false;
    }
    if (event.event != "sealed") return true;  // unknown event types are for later versions
    auto bytes = base::Base64Decode(event.data);
    if (!bytes.ok()) {
      status_ = base::DataLoss("a sealed event is not base64: " + bytes.status().message());
      return false;
    }
    // The answer's first byte names the recipient whose keys seal it (crypto/
    // multi_recipient.h); once every chunk has opened with those keys, it is the enclave
    // that answered, whatever the routers' headers say.
    if (!recipient_ && !bytes->empty()) recipient_ = static_cast<uint8_t>((*bytes)[0]);
    std::vector<crypto::Bytes> opened;
    status_ = opener_.Feed(crypto::AsBytes(*bytes), &opened);
    for (const crypto::Bytes& chunk : opened) {
      if (!status_.ok()) break;
      status_ = OnChunk(crypto::AsText(chunk));
    }
    return status_.ok();
  }

  // The stream ended; the answer must be complete.
  base::Status Finish() {
    if (!status_.ok()) return status_;
    std::vector<crypto::Bytes> opened;
    base::Status finished = opener_.Finish(&opened);
    if (!finished.ok()) {
      return base::Unavailable("the answer stream ended before its end: " + finished.message());
    }
    // The final chunk runs to the end of the stream, so it opens only now.
    for (const crypto::Bytes& chunk : opened) SC_RETURN_IF_ERROR(OnChunk(crypto::AsText(chunk)));
    if (result_.finish_reason.empty()) {
      return base::DataLoss("the answer's last chunk carries no finish_reason");
    }
    return base::Status::Ok();
  }

  InferenceResult& result() { return result_; }
  // The recipient that answered; meaningful once Finish() succeeded.
  std::optional<uint8_t> recipient() const { return recipient_; }

 private:
  static std::string ErrorMessage(const std::string& data) {
    Json parsed = Json::parse(data, nullptr, /*allow_exceptions=*/false);
    if (parsed.is_object() && parsed.contains("error") && parsed["error"].is_object() &&
        parsed["error"].contains("message") && parsed["error"]["message"].is_string()) {
      return parsed["error"]["message"].get<std::string>();
    }
    return data.substr(0, 200);
  }

  base::Status OnChunk(std::string_view plaintext) {
    Json chunk = Json::parse(plaintext, nullptr, /*allow_exceptions=*/false);
    if (!chunk.is_object()) return base::DataLoss("an opened answer chunk is not a JSON object");
    if (auto text = chunk.find("text"); text != chunk.end() && text->is_string()) {
      const std::string& piece = text->get_ref<const std::string&>();
      if (!piece.empty()) {
        result_.text += piece;
        if (on_text_) on_text_(piece);
      }
    }
    if (auto reason = chunk.find("finish_reason"); reason != chunk.end() && reason->is_string()) {
      result_.finish_reason = reason->get<std::string>();
      if (auto usage = chunk.find("usage"); usage != chunk.end() && usage->is_object()) {
        result_.prompt_tokens = usage->value("prompt_tokens", int64_t{0});
        result_.completion_tokens = usage->value("completion_tokens", int64_t{0});
      }
      if (auto error = chunk.find("error"); error != chunk.end() && error->is_string()) {
        return base::Unavailable("the worker failed: " + Printable(error->get<std::string>()));
      }
    }
    return base::Status::Ok();
  }

  crypto::ChunkedResponseOpener opener_;
  const std::function<void(std::string_view)>& on_text_;
  base::Status status_;
  InferenceResult result_;
  std::optional<uint8_t> recipient_;
};

}  // namespace

base::Status StatusFromHttpError(int status, const std::string& body) {
  std::string message = "HTTP " + std::to_string(status);
  Json parsed = Json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_object() && parsed.contains("error") && parsed["error"].is_object() &&
      parsed["error"].contains("message") && parsed["error"]["message"].is_string()) {
    message += ": " + Printable(parsed["error"]["message"].get<std::string>());
  } else if (!body.empty()) {
    message += ": " + Printable(body.substr(0, 200));
  }
  switch (status) {
    case 400:
    case 413:
      return base::InvalidArgument(message);
    case 401:
      return base::Unauthenticated(message);
    case 403:
      return base::PermissionDenied(message);
    case 404:
      return base::NotFound(message);
    case 429:
      return base::ResourceExhausted(message);
    default:
      return base::Unavailable(message);
  }
}

ClusterClient::ClusterClient(ClusterClientOptions options) : options_(std::move(options)) {}

ClusterClient::~ClusterClient() = default;

base::Result<CandidateList> ClusterClient::FetchCandidates(const std::string& model) {
  if (options_.candidates < 1 || options_.candidates > 16) {
    return base::InvalidArgument("candidates must be 1..16, got " +
                                 std::to_string(options_.candidates));
  }
  if (!http_) {
    SC_ASSIGN_OR_RETURN(net::Endpoint endpoint, net::ParseEndpoint(options_.endpoint));
    http_ = std::make_unique<net::HttpClient>(endpoint, options_.http);
  }
  net::HttpRequest request;
  request.method = "GET";
  request.target = "/v1/attestation?model=" + PercentEncode(model) +
                   "&k=" + std::to_string(options_.candidates);
  request.headers.Set("Authorization", "Bearer " + options_.api_key);
  SC_ASSIGN_OR_RETURN(net::HttpResponse response, http_->Request(request));
  if (response.status != 200) return StatusFromHttpError(response.status, response.body);

  if (response.body.size() > kMaxAttestationAnswerBytes) {
    return base::DataLoss("/v1/attestation: the answer is over " +
                          std::to_string(kMaxAttestationAnswerBytes) + " bytes");
  }
  Json parsed = Json::parse(response.body, nullptr, /*allow_exceptions=*/false);
  if (!parsed.is_object() || !parsed.contains("candidates") || !parsed["candidates"].is_array()) {
    return base::DataLoss("/v1/attestation: the answer has no 'candidates' list");
  }
  const Json& offered = parsed["candidates"];
  if (offered.size() > static_cast<size_t>(options_.candidates)) {
    return base::DataLoss("/v1/attestation: the endpoint offered " +
                          std::to_string(offered.size()) + " candidates, more than the " +
                          std::to_string(options_.candidates) + " asked for");
  }
  CandidateList list;
  std::set<std::string> names_seen;
  std::set<std::string> enclaves_seen;  // their identities, encoded
  for (size_t i = 0; i < offered.size(); ++i) {
    const Json& entry = offered[i];
    std::string label = "candidate " + std::to_string(i + 1) + ": ";
    if (!entry.is_object() || !entry.contains("instance") || !entry.contains("region") ||
        !IsPlainName(entry["instance"]) || !IsPlainName(entry["region"])) {
      list.rejections.push_back(label + "not an object with plain instance and region names");
      continue;
    }
    const std::string& instance = entry["instance"].get_ref<const std::string&>();
    const std::string& region = entry["region"].get_ref<const std::string&>();
    label = region + "/" + instance + ": ";
    if (!entry.contains("document") || !entry["document"].is_string()) {
      list.rejections.push_back(label + "entry lacks a document");
      continue;
    }
    if (!names_seen.insert(region + "/" + instance).second) {
      list.rejections.push_back(label + "offered twice");
      continue;
    }
    auto document = base::Base64Decode(entry["document"].get<std::string>());
    if (!document.ok()) {
      list.rejections.push_back(label + "document is not base64");
      continue;
    }
    CandidateVerdicts verdicts = VerifyCandidates({crypto::ToBytes(*document)}, options_.policy);
    if (verdicts.accepted.empty()) {
      list.rejections.push_back(label + Printable(verdicts.rejections.front()));
      continue;
    }
    // One enclave under two names would take two of the request's recipients for one.
    if (!enclaves_seen.insert(crypto::ToString(verdicts.accepted.front().identity.Encode()))
             .second) {
      list.rejections.push_back(label + "the same enclave as an earlier candidate");
      continue;
    }
    list.accepted.push_back({instance, region, std::move(verdicts.accepted.front())});
  }
  if (list.accepted.empty()) {
    std::string why = list.rejections.empty() ? "the endpoint offered none"
                                              : list.rejections.front();
    return base::FailedPrecondition("no candidate worker for model '" + model +
                                    "' passed attestation (" + why + ")");
  }
  return list;
}

base::Result<InferenceResult> ClusterClient::Infer(
    const std::vector<Candidate>& candidates, const std::string& model,
    std::string_view request_json, const std::function<void(std::string_view)>& on_text,
    const std::function<void(const std::string& claimed_by)>& on_start) {
  if (candidates.empty()) return base::FailedPrecondition("no candidate worker to seal to");
  if (!http_) {
    SC_ASSIGN_OR_RETURN(net::Endpoint endpoint, net::ParseEndpoint(options_.endpoint));
    http_ = std::make_unique<net::HttpClient>(endpoint, options_.http);
  }
  std::vector<AcceptedEnclave> recipients;
  std::string candidate_header;
  for (const Candidate& candidate : candidates) {
    recipients.push_back(candidate.enclave);
    if (!candidate_header.empty()) candidate_header += ",";
    candidate_header += candidate.region + "/" + candidate.instance;
  }
  SC_ASSIGN_OR_RETURN(SealedRequest sealed,
                      SealRequest(recipients, crypto::AsBytes(request_json), NowMs()));

  net::HttpRequest request;
  request.method = "POST";
  request.target = "/v1/sealed";
  request.headers.Set("Authorization", "Bearer " + options_.api_key);
  request.headers.Set("Content-Type", "application/octet-stream");
  request.headers.Set("X-Supercluster-Model", model);
  request.headers.Set("X-Supercluster-Candidates", candidate_header);
  request.body = crypto::ToString(sealed.envelope);

  AnswerReader reader(OpenResponse(std::move(sealed)), on_text);
  // client.request_timeout bounds the whole answer: the HTTP client bounds only the wait for
  // each piece, which an endpoint that trickles bytes would stretch without end.
  const bool bounded = options_.http.request_timeout.count() > 0;
  const auto deadline = std::chrono::steady_clock::now() + options_.http.request_timeout;
  bool timed_out = false;
  bool answer_failed = false;
  net::SseParser parser([&](const net::SseEvent& event) {
    if (!reader.OnEvent(event)) answer_failed = true;
  });
  int status = 0;
  std::string error_body;
  bool hostile = false;
  auto head = http_->Stream(
      request,
      [&](const net::ResponseHead& received) {
        status = received.status;
        if (status == 200 && on_start) {
          on_start(Printable(received.headers.Get("X-Supercluster-Served-By")));
        }
      },
      [&](std::string_view data) {
        if (bounded && std::chrono::steady_clock::now() > deadline) {
          timed_out = true;
          return false;
        }
        if (status != 200) {
          error_body.append(data.substr(0, kMaxErrorBodyBytes - std::min(kMaxErrorBodyBytes,
                                                                          error_body.size())));
          return error_body.size() < kMaxErrorBodyBytes;
        }
        if (!parser.Feed(data)) hostile = true;
        return !hostile && !answer_failed;
      });
  if (timed_out) {
    return base::DeadlineExceeded("the answer did not end within client.request_timeout (" +
                                  std::to_string(options_.http.request_timeout.count()) + " ms)");
  }
  if (answer_failed) return reader.Finish();  // the reason the answer failed
  if (!head.ok()) {
    if (status == 200) return base::Unavailable("the answer stream broke: " + head.status().message());
    return head.status();
  }
  if (status != 200) return StatusFromHttpError(status, error_body);
  if (hostile) return base::DataLoss("the answer stream sent an oversized event");
  SC_RETURN_IF_ERROR(reader.Finish());
  InferenceResult result = std::move(reader.result());
  const std::optional<uint8_t> recipient = reader.recipient();
  if (!recipient || *recipient >= candidates.size()) {
    return base::DataLoss("the answer names no recipient of the request");
  }
  const Candidate& answered = candidates[*recipient];
  result.served_by = answered.region + "/" + answered.instance;
  return result;
}

base::Result<InferenceResult> ClusterClient::FetchAndInfer(
    const std::string& model, std::string_view request_json,
    const std::function<void(std::string_view)>& on_text) {
  SC_ASSIGN_OR_RETURN(CandidateList candidates, FetchCandidates(model));
  return Infer(candidates.accepted, model, request_json, on_text);
}

}  // namespace supercluster::client
