// Internal to net: runs an io_context like io_context::run(), except that a thread that
// ran out of ready handlers keeps polling (non-blocking epoll_wait) for a while before it
// blocks.
//
// Why: a thread blocked in epoll_wait is woken by the kernel when a message arrives, and on
// a virtual machine whose idle virtual CPU halts, that wake-up (an interrupt to the halted
// CPU, the hypervisor scheduling it again) costs tens of microseconds for every message.
// A proxy at low concurrency spends most of each request waiting for such wake-ups: on the
// 2-core VM of docs/performance.md, polling for 50 µs after the last event multiplied the
// router's requests/s at one connection by 2.7 to 2.9. The price is CPU: up to `busy_poll` of spinning
// after each burst of events, so a thread whose events keep arriving closer together than
// that uses its whole core. With no traffic it spins only after its own timers fire.
#pragma once

#include <boost/asio/io_context.hpp>

#include <chrono>

namespace supercluster::net::internal {

// Runs `io_context`'s handlers on the calling thread until it is stopped or runs out of
// work, as io_context::run() does. With busy_poll > 0, after the last ready handler it
// polls for up to `busy_poll` before blocking; any handler run restarts that window.
// Precondition for busy_poll > 0: no other thread runs `io_context`. Asio lets one thread
// at a time wait in epoll; while one sleeps there, the others' polls see no event at all.
// (busy_poll 0 is plain run(), for any number of threads.)
void RunIoContext(boost::asio::io_context& io_context, std::chrono::microseconds busy_poll);

}  // namespace supercluster::net::internal
