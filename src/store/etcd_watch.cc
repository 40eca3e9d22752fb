#include "store/etcd_watch.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <iterator>
#include <mutex>
#include <system_error>
#include <thread>

#include "store/etcd_json.h"

namespace supercluster::store::etcd {

using nlohmann::json;

namespace {

std::atomic<int> running_watch_threads{0};

constexpr std::chrono::milliseconds kFirstBackoff{50};
// Of a non-200 answer to the watch request, only this much is kept for the error message.
constexpr size_t kMaxErrorBodyBytes = 4096;

bool Contains(std::string_view text, std::string_view part) {
  return text.find(part) != std::string_view::npos;
}

// How one stream (one connection) ended.
struct StreamEnd {
  bool final = false;       // the watch is over: `status` goes to the callback
  base::Status status;      // why it ended
  bool progressed = false;  // etcd accepted the watch or events were delivered
};

// Shared by the Watch handle and the thread: whichever goes last frees it.
class WatchRunner : public std::enable_shared_from_this<WatchRunner> {
 public:
  WatchRunner(std::shared_ptr<Client> client, WatchTarget target, WatchCallback callback)
      : client_(std::move(client)),
        target_(std::move(target)),
        callback_(std::move(callback)),
        next_revision_(target_.start_revision) {}

  base::Status StartThread() {
    running_watch_threads.fetch_add(1);
    try {
      std::thread([self = shared_from_this()] {
        self->Run();
        running_watch_threads.fetch_sub(1);
      }).detach();
    } catch (const std::system_error& error) {
      running_watch_threads.fetch_sub(1);
      return base::ResourceExhausted(std::string("cannot start a watch thread: ") + error.what());
    }
    return base::Status::Ok();
  }

  void Cancel() {
    cancelled_.store(true);
    // Inside the callback this thread holds the mutex already; elsewhere, taking it waits
    // for a running callback to return, so none runs after Cancel() does.
    if (std::this_thread::get_id() == thread_id_.load()) return;
    std::lock_guard lock(mutex_);
    wakeup_.notify_all();
  }

 private:
  void Run() {
    // Set before any callback can run, for Cancel() from inside one.
    thread_id_.store(std::this_thread::get_id());
    try {
      RunStreams();
    } catch (const std::exception& error) {
      Deliver({}, base::Internal(std::string("etcd watch thread failed: ") + error.what()));
    }
  }

  // Opens streams until the watch ends: a failed stream is followed by the next member
  // after a backoff; one that made progress by the current member at once.
  void RunStreams() {
    size_t failures = 0;
    std::chrono::milliseconds backoff = kFirstBackoff;
    while (!cancelled_.load()) {
      size_t index = (client_->current_endpoint() + failures) % client_->endpoint_count();
      StreamEnd end = Stream(index);
      if (cancelled_.load()) return;
      if (end.final) {
        Deliver({}, end.status);
        return;
      }
      if (end.progressed) {
        failures = 0;
        backoff = kFirstBackoff;
      } else {
        ++failures;
      }
      if (!SleepUnlessCancelled(backoff)) return;
      if (!end.progressed) backoff = std::min(backoff * 2, client_->options().watch_max_backoff);
    }
  }

  std::string CreateRequest() const {
    json create = {{"key", Base64Encode(PrefixRangeStart(target_.prefix))},
                   {"range_end", Base64Encode(PrefixRangeEnd(target_.prefix))},
                   {"start_revision", std::to_string(next_revision_)},
                   // Periodic empty responses keep an idle stream inside watch_idle_timeout.
                   {"progress_notify", true}};
    return json{{"create_request", create}}.dump();
  }

  // One stream on member `index`, read until it breaks, the watch ends or is cancelled.
  StreamEnd Stream(size_t index) {
    auto token = client_->Token(index);
    if (!token.ok()) {
      bool refused = token.status().code() == base::StatusCode::kPermissionDenied ||
                     token.status().code() == base::StatusCode::kInvalidArgument;
      return {refused, token.status().WithContext(Describe()), false};
    }
    net::HttpRequest request;
    request.method = "POST";
    request.target = "/v3/watch";
    request.headers.Set("Content-Type", "application/json");
    if (!token->empty()) request.headers.Set("Authorization", *token);
    request.body = CreateRequest();

    StreamEnd end;
    bool ended = false;  // `end` was decided while reading
    int http_status = 0;
    std::string error_body;
    JsonObjectSplitter splitter(client_->options().max_response_bytes);
    std::vector<std::string> objects;
    auto on_head = [&](const net::ResponseHead& head) { http_status = head.status; };
    auto on_data = [&](std::string_view bytes) {
      if (cancelled_.load()) return false;
      if (http_status != 200) {
        error_body.append(bytes.substr(0, kMaxErrorBodyBytes - error_body.size()));
        return error_body.size() < kMaxErrorBodyBytes;
      }
      objects.clear();
      base::Status fed = splitter.Feed(bytes, &objects);
      for (const std::string& object : objects) {
        if (!HandleObject(index, object, *token, &end)) {
          ended = true;
          return false;
        }
      }
      if (!fed.ok()) {
        end = {true, Malformed(index, fed), end.progressed};
        ended = true;
        return false;
      }
      return true;
    };
    net::HttpClient http(client_->endpoint(index), client_->StreamClientOptions());
    auto head = http.Stream(request, on_head, on_data);
    if (ended) return end;
    if (!head.ok()) return {false, head.status(), end.progressed};
    if (http_status != 200) return ErrorAnswer(http_status, error_body, *token);
    return {false, base::Unavailable("etcd ended the watch stream"), end.progressed};
  }

  // A non-200 answer to the watch request itself.
  StreamEnd ErrorAnswer(int http_status, const std::string& body, const std::string& token) {
    std::optional<GatewayError> error = ParseGatewayError(body);
    if (!error || http_status >= 500) {
      return {false,
              base::Unavailable("watch request answered HTTP " + std::to_string(http_status)),
              false};
    }
    if (client_->uses_auth() && IsInvalidToken(*error)) return TokenRejected(token, error->message);
    return {true, StatusFromGatewayError(*error).WithContext(Describe()), false};
  }

  // Handles one response of the stream; false when the stream must stop (`*end` says how).
  bool HandleObject(size_t index, const std::string& text, const std::string& token,
                    StreamEnd* end) {
    std::optional<GatewayError> stream_error;
    auto result = ParseStreamResult(text, &stream_error);
    if (stream_error) {
      // etcd failed the stream (stopping, lost its leader): reopen it.
      if (client_->uses_auth() && IsInvalidToken(*stream_error)) client_->InvalidateToken(token);
      *end = {false, result.status(), end->progressed};
      return false;
    }
    if (!result.ok()) {
      *end = {true, Malformed(index, result.status()), end->progressed};
      return false;
    }
    auto response = ParseWatchResponse(*result);
    if (!response.ok()) {
      *end = {true, Malformed(index, response.status()), end->progressed};
      return false;
    }
    if (response->compact_revision > 0) {
      *end = {true, Compacted(response->compact_revision), end->progressed};
      return false;
    }
    if (response->canceled) {
      bool progressed = end->progressed;
      *end = Cancelled(response->cancel_reason, token);
      end->progressed = progressed;
      return false;
    }
    if (response->created) {
      end->progressed = true;
      token_rejections_ = 0;
    }
    return DeliverEvents(std::move(response->events), end);
  }

  // Delivers the events one revision at a time. etcd keeps a revision's events in one
  // response (it splits only when asked to fragment, which we do not), and never repeats
  // one within a stream; a stream reopened at next_revision_ does not either. Events below
  // next_revision_ are skipped all the same, so nothing is delivered twice.
  bool DeliverEvents(std::vector<WatchEvent> events, StreamEnd* end) {
    size_t begin = 0;
    while (begin < events.size()) {
      int64_t revision = events[begin].kv.mod_revision;
      size_t stop = begin + 1;
      while (stop < events.size() && events[stop].kv.mod_revision == revision) ++stop;
      if (revision >= next_revision_) {
        std::vector<WatchEvent> group(std::make_move_iterator(events.begin() + begin),
                                      std::make_move_iterator(events.begin() + stop));
        if (!Deliver(group, base::Status::Ok())) return false;
        next_revision_ = revision + 1;
        end->progressed = true;
      }
      begin = stop;
    }
    return true;
  }

  StreamEnd Cancelled(const std::string& reason, const std::string& token) {
    if (client_->uses_auth() &&
        (Contains(reason, "invalid auth token") || Contains(reason, "user name is empty"))) {
      return TokenRejected(token, reason);
    }
    if (Contains(reason, "permission denied")) {
      return {true, base::PermissionDenied(Describe() + ": etcd refused it: " + reason), false};
    }
    return {true, base::Unavailable(Describe() + ": etcd cancelled it: " + reason), false};
  }

  // The token expired (or etcd restarted): log in again, unless a fresh token was refused
  // too, which would only repeat.
  StreamEnd TokenRejected(const std::string& token, const std::string& reason) {
    client_->InvalidateToken(token);
    if (++token_rejections_ >= 2) {
      return {true,
              base::PermissionDenied(Describe() + ": etcd rejected the auth token: " + reason),
              false};
    }
    return {false, base::Unavailable("auth token rejected"), false};
  }

  base::Status Compacted(int64_t compact_revision) const {
    return base::DataLoss(Describe() + ": revision " + std::to_string(next_revision_) +
                          " is gone (etcd compacted its history up to revision " +
                          std::to_string(compact_revision) +
                          "); re-read with Range and watch from the revision it returns");
  }

  base::Status Malformed(size_t index, const base::Status& status) const {
    return base::DataLoss(Describe() + ": " + client_->endpoint_name(index) +
                          " sent a malformed watch response: " + status.message());
  }

  std::string Describe() const {
    // Keys are bytes; keep the message printable.
    std::string printable;
    for (char c : target_.prefix.substr(0, 100)) printable += (c >= 0x20 && c < 0x7f) ? c : '?';
    return "etcd watch of prefix '" + printable + "'";
  }

  bool Deliver(const std::vector<WatchEvent>& events, const base::Status& status) {
    std::lock_guard lock(mutex_);
    if (cancelled_.load()) return false;
    callback_(events, status);
    return !cancelled_.load();
  }

  // False when cancelled meanwhile.
  bool SleepUnlessCancelled(std::chrono::milliseconds duration) {
    std::unique_lock lock(mutex_);
    return !wakeup_.wait_for(lock, duration, [&] { return cancelled_.load(); });
  }

  const std::shared_ptr<Client> client_;
  const WatchTarget target_;
  const WatchCallback callback_;
  // Only the thread touches these.
  int64_t next_revision_;
  int token_rejections_ = 0;

  std::mutex mutex_;  // held while the callback runs
  std::condition_variable wakeup_;
  std::atomic<bool> cancelled_{false};
  std::atomic<std::thread::id> thread_id_{};
};

class EtcdWatch final : public Watch {
 public:
  explicit EtcdWatch(std::shared_ptr<WatchRunner> runner) : runner_(std::move(runner)) {}
  ~EtcdWatch() override { runner_->Cancel(); }
  void Cancel() override { runner_->Cancel(); }

 private:
  std::shared_ptr<WatchRunner> runner_;
};

}  // namespace

base::Result<std::unique_ptr<Watch>> StartWatch(std::shared_ptr<Client> client, WatchTarget target,
                                                WatchCallback callback) {
  auto runner =
      std::make_shared<WatchRunner>(std::move(client), std::move(target), std::move(callback));
  SC_RETURN_IF_ERROR(runner->StartThread());
  return std::unique_ptr<Watch>(std::make_unique<EtcdWatch>(std::move(runner)));
}

int RunningWatchThreads() { return running_watch_threads.load(); }

}  // namespace supercluster::store::etcd
