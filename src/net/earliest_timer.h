// Internal to net: a timer for deadlines that move often but rarely fire, for the HTTP
// server's connections. (The upstream client's connections use a variant, DeadlineWatch in
// upstream_client.cc, whose wait holds its owner only weakly: pooled connections are
// dropped on other threads with the wait pending.)
//
// FireBy(deadline) makes sure the timer fires no later than `deadline`. It re-arms the timer
// only when it is not armed or is armed for a later time; a later deadline only needs the
// owner to remember it and check again when the timer fires (early). A keep-alive
// connection that sets its deadlines on every request thus touches the timer about once
// per timeout instead of several times per request: each arming takes the reactor's lock
// and often a timerfd_settime (docs/performance.md).
//
// Not thread-safe: use it from its executor only (a strand, or the single io thread).
#pragma once

#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <utility>

namespace supercluster::net::internal {

class EarliestTimer {
 public:
  using Clock = std::chrono::steady_clock;

  explicit EarliestTimer(const boost::asio::any_io_executor& executor) : timer_(executor) {}

  // `on_fire` runs once when the timer fires, not when it is re-armed or cancelled. It must
  // keep the EarliestTimer's owner alive (capture a shared_ptr to it).
  template <class OnFire>
  void FireBy(Clock::time_point deadline, OnFire on_fire) {
    if (FiresBy(deadline)) return;
    armed_ = true;
    expiry_ = deadline;
    timer_.expires_at(deadline);  // cancels an earlier wait, if any
    timer_.async_wait([this, on_fire = std::move(on_fire)](boost::system::error_code error) {
      if (error == boost::asio::error::operation_aborted) return;
      armed_ = false;
      on_fire();
    });
  }

  // Whether the timer is armed to fire no later than `deadline`: FireBy(deadline, ...)
  // would then change nothing. A caller whose on_fire is costly to make (a copy of a
  // shared_ptr to its owner is a locked read-modify-write, and one more to drop it) asks
  // first, since that is the usual answer.
  bool FiresBy(Clock::time_point deadline) const { return armed_ && expiry_ <= deadline; }

  // Cancels a pending wait (its on_fire does not run).
  void Cancel() {
    if (!armed_) return;
    armed_ = false;
    timer_.cancel();
  }

 private:
  boost::asio::steady_timer timer_;
  bool armed_ = false;       // a wait is pending ...
  Clock::time_point expiry_;  // ... that fires at this time
};

}  // namespace supercluster::net::internal
