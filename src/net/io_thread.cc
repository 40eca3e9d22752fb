#include "net/io_thread.h"

namespace supercluster::net::internal {
namespace {

thread_local std::shared_ptr<boost::asio::io_context> current_server_io_context;

}  // namespace

const std::shared_ptr<boost::asio::io_context>& CurrentServerIoContext() {
  return current_server_io_context;
}

void SetCurrentServerIoContext(std::shared_ptr<boost::asio::io_context> io_context) {
  current_server_io_context = std::move(io_context);
}

}  // namespace supercluster::net::internal
