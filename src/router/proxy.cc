#include "router/proxy.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <boost/container/small_vector.hpp>
#include <charconv>
#include <list>
#include <mutex>
#include <string_view>

#include "base/coarse_clock.h"
#include "net/sse.h"

namespace supercluster::router {
namespace {

using Clock = std::chrono::steady_clock;

// Error bodies of upstreams are kept (to pass on if nothing else answers) up to this size.
constexpr size_t kMaxHeldErrorBytes = 64 * 1024;
// A collected answer's buffer is reserved for its Content-Length up to this; beyond, it
// grows as the body arrives.
constexpr size_t kMaxReservedBodyBytes = 64 * 1024;

using net::EqualsLowerIgnoreCase;

// What a field's name says about where it ends.
enum class Hop {
  kEndToEnd,    // goes on
  kHopByHop,    // ends at this hop
  kConnection,  // the Connection field: ends here, and may name more fields that do
};

// The length picks the one or two names a field could be, so that most fields are told
// apart after one comparison of lengths.
Hop HopOf(std::string_view name) {
  bool hop_by_hop = false;
  switch (name.size()) {
    case 2: hop_by_hop = EqualsLowerIgnoreCase(name, "te"); break;
    case 4: hop_by_hop = EqualsLowerIgnoreCase(name, "host"); break;
    case 7:
      hop_by_hop =
          EqualsLowerIgnoreCase(name, "trailer") || EqualsLowerIgnoreCase(name, "upgrade");
      break;
    case 10:
      if (EqualsLowerIgnoreCase(name, "connection")) return Hop::kConnection;
      hop_by_hop = EqualsLowerIgnoreCase(name, "keep-alive");
      break;
    case 14: hop_by_hop = EqualsLowerIgnoreCase(name, "content-length"); break;
    case 16: hop_by_hop = EqualsLowerIgnoreCase(name, "proxy-connection"); break;
    case 17: hop_by_hop = EqualsLowerIgnoreCase(name, "transfer-encoding"); break;
    default: break;
  }
  return hop_by_hop ? Hop::kHopByHop : Hop::kEndToEnd;
}

// The field names a Connection field lists (RFC 9110 7.6.1: more fields that end at this
// hop, which a proxy removes too), other than the hop-by-hop ones HopOf knows. Read
// while the hop-by-hop fields are filtered out, when the Connection field comes by, and
// the fields it names are then removed in a second pass: nearly every Connection field
// says only "keep-alive" or "close", and one pass of the filter costs least. Copies,
// since the Connection field goes in the first pass.
using ListedNames = boost::container::small_vector<std::string, 2>;

void AddListedNames(std::string_view connection_value, ListedNames& listed) {
  if (EqualsLowerIgnoreCase(connection_value, "keep-alive") ||
      EqualsLowerIgnoreCase(connection_value, "close")) {
    return;
  }
  std::string_view rest = connection_value;
  while (!rest.empty()) {
    const size_t comma = rest.find(',');
    std::string_view option = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    while (!option.empty() && (option.front() == ' ' || option.front() == '\t')) {
      option.remove_prefix(1);
    }
    while (!option.empty() && (option.back() == ' ' || option.back() == '\t')) {
      option.remove_suffix(1);
    }
    if (!option.empty() && HopOf(option) == Hop::kEndToEnd &&
        !EqualsLowerIgnoreCase(option, "close")) {
      listed.emplace_back(option);
    }
  }
}

bool IsListed(const ListedNames& listed, std::string_view name) {
  return std::any_of(listed.begin(), listed.end(), [name](const std::string& option) {
    return net::EqualsIgnoreCase(name, option);
  });
}

// Whether `field` is hop-by-hop; a Connection field adds the names it lists to `listed`.
bool EndsAtThisHop(net::Headers::Field field, ListedNames& listed) {
  switch (HopOf(field.first)) {
    case Hop::kEndToEnd: return false;
    case Hop::kHopByHop: return true;
    case Hop::kConnection:
      AddListedNames(field.second, listed);
      return true;
  }
  return true;
}

// The second pass: the fields the Connection fields listed.
void RemoveListed(net::Headers& headers, const ListedNames& listed) {
  if (listed.empty()) return;
  headers.RemoveIf(
      [&listed](net::Headers::Field field) { return IsListed(listed, field.first); });
}

// An upstream's answer fields as they go on to the client: without the hop-by-hop ones
// (those its Connection field names among them) and without a request id (ours replaces
// it).
net::Headers AnswerFields(net::Headers&& headers) {
  ListedNames listed;
  headers.RemoveIf([&listed](net::Headers::Field field) {
    return EndsAtThisHop(field, listed) ||
           EqualsLowerIgnoreCase(field.first, "x-supercluster-request-id");
  });
  RemoveListed(headers, listed);
  return std::move(headers);
}

// What decides how an answer goes on to the client, read in one look at each field. (Read
// in the same pass as AnswerFields' filter, it cost more: callgrind, 1,078 against 1,213
// instructions for Try::OnHead.)
struct Framing {
  // The first Content-Length, when numeric (the upstream client's parser has already
  // refused a malformed or conflicting one).
  std::optional<uint64_t> content_length;
  bool event_stream = false;  // the first Content-Type's media type is text/event-stream
};

// Whether a Content-Type value names the media type text/event-stream (in any case, with
// or without parameters). Not a substring: "application/json; x=text/event-stream" is
// JSON, and taken for a stream a broken answer of it would end with an error event and a
// clean last chunk, a short body that looks whole.
bool IsEventStream(std::string_view content_type) {
  std::string_view media_type = content_type.substr(0, content_type.find(';'));
  while (!media_type.empty() && (media_type.back() == ' ' || media_type.back() == '\t')) {
    media_type.remove_suffix(1);
  }
  while (!media_type.empty() && (media_type.front() == ' ' || media_type.front() == '\t')) {
    media_type.remove_prefix(1);
  }
  return EqualsLowerIgnoreCase(media_type, "text/event-stream");
}

Framing FramingOf(const net::Headers& headers) {
  Framing framing;
  bool length_seen = false;
  bool type_seen = false;
  for (auto [name, value] : headers) {
    if (!length_seen && EqualsLowerIgnoreCase(name, "content-length")) {
      length_seen = true;
      uint64_t length = 0;
      auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), length);
      if (error == std::errc() && end == value.data() + value.size()) {
        framing.content_length = length;
      }
    } else if (!type_seen && EqualsLowerIgnoreCase(name, "content-type")) {
      type_seen = true;
      framing.event_stream = IsEventStream(value);
    }
  }
  return framing;
}

class ProxyCall : public std::enable_shared_from_this<ProxyCall> {
 public:
  ProxyCall(net::HttpRequest&& request, ProxyRequest&& proxy,
            std::shared_ptr<net::Responder> responder, net::UpstreamClient& client,
            RouterMetrics& metrics)
      : request_(std::move(request)),
        proxy_(std::move(proxy)),
        responder_(std::move(responder)),
        client_(client),
        metrics_(metrics) {
    // Done once, not on every attempt: the client's hop-by-hop fields (those its Connection
    // field names among them) end at this hop (a client's tenant field is gone already: see
    // StartProxy). Two kinds of the client's fields depend on the target, so they are kept
    // aside and added back for each attempt: its credentials go on to another router (which
    // authenticates the client again) but never to a worker, and its spill mark goes on
    // unless this router spills the request and marks it itself.
    net::Headers& headers = request_.headers;
    ListedNames listed;
    headers.RemoveIf([this, &listed](net::Headers::Field field) {
      const auto [name, value] = field;
      if (EndsAtThisHop(field, listed)) return true;
      if (EqualsLowerIgnoreCase(name, "authorization")) {
        if (!client_authorization_) client_authorization_.emplace(value);
        return true;
      }
      if (EqualsLowerIgnoreCase(name, "x-supercluster-spilled")) {
        if (!client_spilled_ && proxy_.keeps_spill_mark) client_spilled_.emplace(value);
        return true;
      }
      return false;
    });
    // The two kept aside are this router's to pass on or not, whatever the client's
    // Connection field says of them.
    RemoveListed(headers, listed);
    client_field_count_ = headers.size();
  }

  void Start() {
    std::weak_ptr<ProxyCall> weak = weak_from_this();  // no shared_ptr made and dropped
    responder_->OnClose([weak] {
      if (auto self = weak.lock()) self->OnClientGone();
    });
    Attempt();
  }

 private:
  // How an upstream's answer goes on to the client.
  enum class Delivery {
    kStream,   // piece by piece as it arrives (chunked), with backpressure
    kWhole,    // collected (a Content-Length within the limit), then sent with its length
    kHeld,     // a 5xx kept back: maybe another upstream does better; decided in OnDone
  };

  // One try on one upstream, and the handler of its exchange: it hands each event to the
  // call. Tries live inside the call, and the handler pointer an exchange holds shares the
  // call's ownership (it keeps the call alive), so a try costs no allocation of its own.
  struct Try final : net::UpstreamHandler {
    void OnHead(net::ResponseHead head) override { call->OnHead(*this, std::move(head)); }
    void OnData(std::string_view data, std::function<void()> resume) override {
      call->OnData(*this, data, std::move(resume));
    }
    void OnDone(const net::UpstreamResult& result) override { call->OnDone(*this, result); }

    ProxyCall* call = nullptr;
    ProxyTarget target;
    Clock::time_point started;
    std::chrono::nanoseconds time_to_head{0};
    int status = 0;
    Delivery delivery = Delivery::kStream;
    net::Headers headers;  // kWhole and kHeld: the head, until it is sent
    std::string body;      // kWhole: the body; kHeld: its first kMaxHeldErrorBytes
    bool body_cut = false;  // kHeld: the body was longer than kMaxHeldErrorBytes
    bool too_slow = false;  // kWhole, kHeld: cancelled for running past collect_timeout
  };

  void OnClientGone() {
    std::shared_ptr<net::UpstreamExchange> exchange;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      client_gone_ = true;
      exchange = exchange_;
    }
    if (exchange) exchange->Cancel();
  }

  bool ClientGone() const { return client_gone_; }

  // Turns the request into the one for `target`: the client's fields plus this hop's own.
  // The request is changed in place (Send serializes it at once), which spares a copy of
  // its fields and body per attempt.
  void PrepareFor(const ProxyTarget& target) {
    net::Headers& headers = request_.headers;
    headers.Truncate(client_field_count_);  // what the previous attempt added
    if (target.is_router) {
      if (client_authorization_) headers.AddKnown("Authorization", *client_authorization_);
    } else {
      headers.AddKnown("X-Supercluster-Tenant", proxy_.tenant_id);
    }
    if (target.is_router && target.spill) {
      headers.AddKnown("X-Supercluster-Spilled", proxy_.own_region);
    } else {
      if (client_spilled_) headers.AddKnown("X-Supercluster-Spilled", *client_spilled_);
    }
  }

  void Attempt() {
    if (ClientGone()) return Done(RequestOutcome::kCancelled, 499);
    std::optional<ProxyTarget> target = proxy_.route->Next(tried_);
    if (!target) {
      if (tried_.empty()) return SendFinal(proxy_.route->NoTargetResponse());
      return SendFinal(std::move(*last_error_));
    }
    if (!tried_.empty()) {
      if (last_was_failure_ && !target->balancer->TryRetry()) {
        spdlog::debug("request {}: retry budget exhausted", proxy_.request_id);
        return SendFinal(std::move(*last_error_));
      }
      metrics_.Retried();
    }
    if (target->spill) metrics_.Spilled();

    Try& attempt = NewTry();
    attempt.call = this;
    attempt.target = std::move(*target);
    tried_.push_back(attempt.target.id);  // tries stay put: the view stays valid
    attempt.started = Clock::now();
    const ProxyTarget& chosen = attempt.target;
    if (!chosen.started) {  // else the pick counted it (Balancer::PickAndStart)
      if (tried_.size() == 1) {
        chosen.balancer->OnFirstStart(chosen.id);
      } else {
        chosen.balancer->OnStart(chosen.id);
      }
    }
    const int number = attempt_number_.fetch_add(1) + 1;
    PrepareFor(chosen);
    std::shared_ptr<net::UpstreamExchange> exchange =
        client_.Send(chosen.endpoint, request_,
                     std::shared_ptr<Try>(shared_from_this(), &attempt));
    bool cancel = false;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      // The exchange may already have ended, and a later attempt started, on an io thread.
      if (!finished_ && number == attempt_number_) exchange_ = exchange;
      cancel = client_gone_;
    }
    if (cancel) exchange->Cancel();
  }

  // The first try is a member; a retry's goes in a list, where it stays put.
  Try& NewTry() {
    if (!first_try_taken_) {
      first_try_taken_ = true;
      return first_try_;
    }
    return retries_.emplace_back();
  }

  void OnHead(Try& attempt, net::ResponseHead&& head) {
    attempt.time_to_head = Clock::now() - attempt.started;
    attempt.status = head.status;
    metrics_.UpstreamLatency(attempt.target.is_router, attempt.time_to_head);
    if (head.status >= 500) {
      attempt.headers = AnswerFields(std::move(head.headers));
      attempt.delivery = Delivery::kHeld;
      return;
    }
    const Framing framing = FramingOf(head.headers);
    const std::optional<uint64_t> length = framing.content_length;
    event_stream_ = framing.event_stream;
    net::Headers headers = AnswerFields(std::move(head.headers));
    headers.AddKnown("X-Supercluster-Request-Id", proxy_.request_id);
    // A HEAD answer's Content-Length describes a body that is not there: streamed, the
    // server sends its head alone.
    const uint64_t limit = proxy_.max_collected_response_bytes;
    if (limit > 0 && length && *length <= limit && !event_stream_ &&
        request_.method != "HEAD") {
      attempt.delivery = Delivery::kWhole;
      attempt.headers = std::move(headers);
      // Not all of a large limit up front: the length is only the upstream's word so far.
      attempt.body.reserve(std::min<uint64_t>(*length, kMaxReservedBodyBytes));
      return;
    }
    streaming_ = true;
    responder_->StartStream(head.status, std::move(headers));
  }

  void OnData(Try& attempt, std::string_view data, std::function<void()> resume) {
    if (attempt.delivery == Delivery::kWhole) {
      attempt.body.append(data);  // the parser stops at Content-Length, within the limit
      if (!CollectedTooLong(attempt)) resume();
      return;
    }
    if (attempt.delivery == Delivery::kHeld || !streaming_) {
      const size_t room = kMaxHeldErrorBytes - std::min(kMaxHeldErrorBytes, attempt.body.size());
      attempt.body.append(data.substr(0, room));
      if (data.size() > room) attempt.body_cut = true;
      if (!CollectedTooLong(attempt)) resume();
      return;
    }
    bytes_out_ += data.size();
    std::weak_ptr<ProxyCall> weak = weak_from_this();  // no shared_ptr made and dropped
    responder_->Write(std::string(data), [weak, resume = std::move(resume)](base::Status status) {
      if (status.ok()) {
        resume();
      } else if (auto self = weak.lock()) {
        self->OnClientGone();
      }
    });
  }

  // Whether an answer being collected has run past collect_timeout; then its exchange is
  // cancelled (OnDone follows) and the caller does not resume it. A clock read per piece
  // (a coarse one: the limit is minutes).
  bool CollectedTooLong(Try& attempt) {
    if (proxy_.collect_timeout.count() == 0 ||
        base::CoarseNow() - attempt.started <= proxy_.collect_timeout) {
      return false;
    }
    attempt.too_slow = true;
    std::shared_ptr<net::UpstreamExchange> exchange;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      exchange = exchange_;
    }
    if (exchange) exchange->Cancel();  // posted: it ends after this callback returns
    return true;
  }

  void OnDone(Try& attempt, const net::UpstreamResult& result) {
    if (!attempt.too_slow) return OnEnded(attempt, result);
    // An exchange the proxy cancelled for its slowness failed; only the client's going
    // away is a cancellation.
    net::UpstreamResult timed_out;
    timed_out.status = base::DeadlineExceeded("upstream " + attempt.target.id +
                                              ": the answer did not end within " +
                                              std::to_string(proxy_.collect_timeout.count()) +
                                              " ms");
    timed_out.head_received = result.head_received;
    OnEnded(attempt, timed_out);
  }

  void OnEnded(Try& attempt, const net::UpstreamResult& result) {
    const ProxyTarget& target = attempt.target;
    bool cancelled = result.status.code() == base::StatusCode::kCancelled || ClientGone();
    if (streaming_) {
      if (result.status.ok()) {
        target.balancer->OnFinish(target.id, Outcome::kSuccess, attempt.time_to_head);
        responder_->Finish();
        return Done(RequestOutcome::kOk, attempt.status);
      }
      if (cancelled) {
        target.balancer->OnFinish(target.id, Outcome::kAbandoned, attempt.time_to_head);
        responder_->Finish();
        return Done(RequestOutcome::kCancelled, 499);
      }
      target.balancer->OnFinish(target.id, Outcome::kFailure, attempt.time_to_head);
      spdlog::warn("request {}: upstream {} failed mid-stream: {}", proxy_.request_id, target.id,
                   result.status.message());
      if (event_stream_) {
        net::SseEvent event;
        event.event = "error";
        event.data = net::JsonErrorBody("the upstream failed mid-stream (" + target.id + ")",
                               "upstream_error");
        // A stream cut off mid-event would swallow the error event into the partial one
        // (its first line would continue the last data line): an empty line ends whatever
        // event was open first, and between events it is ignored.
        responder_->Write("\n\n" + net::FormatSseEvent(event));
        responder_->Finish();
      } else {
        // No event to tell the client with: the response is cut off without its last
        // chunk (the responder, let go unfinished, closes the connection), so that an
        // HTTP/1.1 client never takes a truncated body for a whole one. (An HTTP/1.0 body
        // ends with the connection either way.)
        responder_.reset();
      }
      return Done(RequestOutcome::kStreamBroken, attempt.status);
    }
    if (cancelled) {
      target.balancer->OnFinish(target.id, Outcome::kAbandoned, attempt.time_to_head);
      return Done(RequestOutcome::kCancelled, 499);
    }
    if (attempt.delivery == Delivery::kWhole) {
      if (!result.status.ok()) {
        // Nothing reached the client yet, but the upstream may have acted on the request
        // (its head arrived): not retried, answered as a failure instead of a short body.
        target.balancer->OnFinish(target.id, Outcome::kFailure, attempt.time_to_head);
        spdlog::warn("request {}: upstream {} failed mid-response: {}", proxy_.request_id,
                     target.id, result.status.message());
        return SendFinal(ErrorResponse(
            502, "the upstream " + target.id + " failed mid-response: " + result.status.message(),
            "upstream_error"));
      }
      target.balancer->OnFinish(target.id, Outcome::kSuccess, attempt.time_to_head);
      bytes_out_ += attempt.body.size();
      net::HttpResponse response;
      response.status = attempt.status;
      response.headers = std::move(attempt.headers);
      response.body = std::move(attempt.body);
      responder_->Send(std::move(response));
      return Done(RequestOutcome::kOk, attempt.status);
    }
    if (attempt.delivery == Delivery::kHeld) {
      // A 503 whose answer arrived whole is a saturated upstream; one whose body broke or
      // timed out is a failing one, like any other 5xx.
      bool saturated = attempt.status == 503 && result.status.ok();
      target.balancer->OnFinish(target.id, saturated ? Outcome::kSaturated : Outcome::kFailure,
                                attempt.time_to_head);
      net::HttpResponse response;
      response.status = attempt.status;
      response.headers = std::move(attempt.headers);
      if (result.status.ok() && !attempt.body_cut) {
        response.body = std::move(attempt.body);
      } else {
        // Never a short body passed on as whole: the router's own words instead.
        response.headers.Set("Content-Type", "application/json");
        response.body = net::JsonErrorBody(
            "the upstream " + target.id + " answered " + std::to_string(attempt.status) +
                (result.status.ok() ? " with a body over " + std::to_string(kMaxHeldErrorBytes) +
                                          " bytes"
                                    : ", and its body broke off: " + result.status.message()),
            "upstream_error");
      }
      last_error_ = std::move(response);
      last_was_failure_ = !saturated;
      return Attempt();
    }
    // Nothing usable arrived: a connect error, a timeout, a connection lost.
    target.balancer->OnFinish(target.id, Outcome::kFailure, attempt.time_to_head);
    spdlog::info("request {}: upstream {} failed: {}", proxy_.request_id, target.id,
                 result.status.message());
    bool timeout = result.status.code() == base::StatusCode::kDeadlineExceeded;
    last_error_ = ErrorResponse(timeout ? 504 : 502,
                                "the upstream " + target.id + " failed: " + result.status.message(),
                                timeout ? "upstream_timeout" : "upstream_unavailable");
    last_was_failure_ = true;
    if (result.head_received) return SendFinal(std::move(*last_error_));  // not safe to retry
    Attempt();
  }

  void SendFinal(net::HttpResponse response) {
    int status = response.status;
    response.headers.Set("X-Supercluster-Request-Id", proxy_.request_id);
    if (status == 503 && !response.headers.Has("Retry-After")) {
      response.headers.Set("Retry-After", "1");
    }
    responder_->Send(std::move(response));
    RequestOutcome outcome = RequestOutcome::kUpstreamError;
    if (status == 404) outcome = RequestOutcome::kNotFound;
    if (tried_.empty() && status == 503) outcome = RequestOutcome::kNoUpstream;
    if (tried_.empty() && status == 403) outcome = RequestOutcome::kRegionForbidden;
    if (status < 400) outcome = RequestOutcome::kOk;
    Done(outcome, status);
  }

  void Done(RequestOutcome outcome, int status) {
    metrics_.RequestDone(outcome);
    // Ids, sizes and status only: never the body.
    spdlog::debug("request {} tenant {} {} -> {} status {} tries {} bytes in {} out {}",
                  proxy_.request_id, proxy_.tenant_id, request_.path(),
                  tried_.empty() ? "-" : tried_.back(), status, tried_.size(),
                  request_.body.size(), bytes_out_);
    std::shared_ptr<net::UpstreamExchange> exchange;
    std::shared_ptr<void> hold;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      finished_ = true;
      exchange = std::move(exchange_);  // breaks the exchange <-> call reference cycle
      hold = std::move(proxy_.hold);
    }
    request_.body.clear();
    // `exchange` and `hold` are released here, outside the lock.
  }

  net::HttpRequest request_;
  ProxyRequest proxy_;
  std::shared_ptr<net::Responder> responder_;
  net::UpstreamClient& client_;
  RouterMetrics& metrics_;
  // The client's Authorization and X-Supercluster-Spilled: the first of each, since both
  // are single-valued (a request with two is malformed; the first is what a router reads).
  std::optional<std::string> client_authorization_;
  std::optional<std::string> client_spilled_;
  size_t client_field_count_ = 0;  // the client's fields come first in request_

  // Touched only by the exchange's callbacks, which run one at a time.
  Try first_try_;
  bool first_try_taken_ = false;
  std::list<Try> retries_;
  // The ids of the tries, in order; room for a few inline (most requests make one try).
  boost::container::small_vector<std::string_view, 4> tried_;
  std::optional<net::HttpResponse> last_error_;
  bool last_was_failure_ = false;
  bool streaming_ = false;
  bool event_stream_ = false;
  uint64_t bytes_out_ = 0;

  std::mutex mutex_;
  std::shared_ptr<net::UpstreamExchange> exchange_;  // guarded by mutex_
  // Set under mutex_ (with exchange_ read), read anywhere: checked on every attempt and
  // answer, it costs no lock.
  std::atomic<bool> client_gone_{false};
  bool finished_ = false;  // guarded by mutex_
  // Counted without the lock; compared under it, when the exchange it numbers is stored.
  std::atomic<int> attempt_number_{0};
};

}  // namespace

net::HttpResponse ErrorResponse(int status, const std::string& message, const std::string& type) {
  net::HttpResponse response = net::HttpResponse::JsonError(status, message, type);
  if (status == 503 || status == 429) response.headers.Set("Retry-After", "1");
  return response;
}

void StartProxy(net::HttpRequest&& request, ProxyRequest&& proxy,
                std::shared_ptr<net::Responder> responder, net::UpstreamClient& client,
                RouterMetrics& metrics) {
  auto call = std::make_shared<ProxyCall>(std::move(request), std::move(proxy),
                                          std::move(responder), client, metrics);
  call->Start();
}

}  // namespace supercluster::router
