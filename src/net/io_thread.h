// Internal to net: lets the upstream client find the io_context of the HttpServer thread
// that calls it, so a proxy can run its upstream exchanges on the same thread as the
// client's connection (no wake-up of another thread per request; see UpstreamOptions).
// HttpServer's io threads register themselves; everything else sees null.
#pragma once

#include <boost/asio/io_context.hpp>

#include <memory>

namespace supercluster::net::internal {

struct ServerIoThread {
  std::shared_ptr<boost::asio::io_context> io_context;
  // True when this thread is the only one running `io_context`: work started from it
  // needs no strand to run one step at a time.
  bool only_thread = false;
};

// The calling thread's registration when it is an HttpServer io thread inside run();
// io_context is null on any other thread.
const ServerIoThread& CurrentServerIoThread();

// Called by HttpServer on each of its io threads before it runs the io_context, and with
// an empty ServerIoThread after.
void SetCurrentServerIoThread(ServerIoThread thread);

}  // namespace supercluster::net::internal
