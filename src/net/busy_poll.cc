#include "net/busy_poll.h"

namespace supercluster::net::internal {

void RunIoContext(boost::asio::io_context& io_context, std::chrono::microseconds busy_poll) {
  if (busy_poll <= std::chrono::microseconds::zero()) {
    io_context.run();
    return;
  }
  using Clock = std::chrono::steady_clock;
  Clock::time_point last_handler = Clock::now();
  while (!io_context.stopped()) {
    // poll() runs the reactor without waiting and every handler that is ready. It returns
    // 0 (and the io_context stops) when there is no work left at all.
    if (io_context.poll() > 0) {
      last_handler = Clock::now();
      continue;
    }
    if (Clock::now() - last_handler < busy_poll) continue;
    // The window passed with nothing to do: sleep in epoll_wait until a handler runs.
    if (io_context.run_one() == 0) return;  // stopped, or out of work
    last_handler = Clock::now();
  }
}

}  // namespace supercluster::net::internal
