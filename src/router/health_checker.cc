#include "router/health_checker.h"

namespace supercluster::router {

HealthChecker::HealthChecker(HealthCheckOptions options,
                             std::function<std::vector<HealthTarget>()> targets,
                             std::function<void(const HealthTarget&)> on_unreachable)
    : options_(options), targets_(std::move(targets)), on_unreachable_(std::move(on_unreachable)) {
  net::UpstreamOptions upstream;
  upstream.io_threads = 1;
  upstream.max_idle_per_endpoint = 2;
  upstream.connect_timeout = options_.timeout;
  upstream.response_timeout = options_.timeout;
  client_ = std::make_unique<net::UpstreamClient>(upstream);
}

HealthChecker::~HealthChecker() {
  Stop();
  client_.reset();  // cancels the checks in flight; their callbacks run before this returns
}

void HealthChecker::Start() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (thread_.joinable()) return;
  stopping_ = false;
  thread_ = std::thread([this] { Run(); });
}

void HealthChecker::Stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
  if (thread_.joinable()) thread_.join();
}

size_t HealthChecker::StartRound() {
  std::vector<HealthTarget> targets = targets_();
  size_t started = 0;
  for (HealthTarget& target : targets) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!in_flight_.insert(target.id).second) continue;
    }
    ++started;
    net::HttpRequest request;
    request.method = "GET";
    request.target = "/readyz";
    auto status = std::make_shared<int>(0);
    net::UpstreamCallbacks callbacks;
    callbacks.on_head = [status](const net::ResponseHead& head) { *status = head.status; };
    callbacks.on_data = [](std::string_view, std::function<void()> resume) { resume(); };
    callbacks.on_done = [this, status, target, started = std::chrono::steady_clock::now()](
                            const net::UpstreamResult& result) {
      const std::string& id = target.id;
      HealthCheckResult verdict = HealthCheckResult::kFailed;
      if (result.status.ok() && *status == 200) {
        verdict = HealthCheckResult::kPassed;
      } else if (!result.head_received &&
                 result.status.code() == base::StatusCode::kUnavailable) {
        verdict = HealthCheckResult::kConnectFailed;
      }
      if (result.status.code() != base::StatusCode::kCancelled &&
          target.balancer->OnHealthCheck(id, verdict, std::chrono::steady_clock::now() - started) &&
          !result.head_received && on_unreachable_) {
        on_unreachable_(target);
      }
      {
        std::lock_guard<std::mutex> lock(mutex_);
        in_flight_.erase(id);
      }
      changed_.notify_all();
    };
    client_->Send(target.endpoint, std::move(request), std::move(callbacks));
  }
  return started;
}

void HealthChecker::CheckNow() {
  StartRound();
  std::unique_lock<std::mutex> lock(mutex_);
  changed_.wait(lock, [this] { return in_flight_.empty(); });
}

void HealthChecker::Run() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stopping_) {
    lock.unlock();
    StartRound();
    lock.lock();
    changed_.wait_for(lock, options_.interval, [this] { return stopping_; });
  }
}

}  // namespace supercluster::router
