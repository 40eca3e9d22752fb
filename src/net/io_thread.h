// Internal to net: lets the upstream client find the io_context of the HttpServer thread
// that calls it, so a proxy can run its upstream exchanges on the same thread as the
// client's connection (no wake-up of another thread per request; see UpstreamOptions).
// HttpServer's io threads register themselves; everything else sees null.
#pragma once

#include <boost/asio/io_context.hpp>

#include <memory>

namespace supercluster::net::internal {

// The io_context whose run() the calling thread is in, when it is an HttpServer io thread;
// null on any other thread.
const std::shared_ptr<boost::asio::io_context>& CurrentServerIoContext();

// Called by HttpServer on each of its io threads before it runs `io_context`.
void SetCurrentServerIoContext(std::shared_ptr<boost::asio::io_context> io_context);

}  // namespace supercluster::net::internal
