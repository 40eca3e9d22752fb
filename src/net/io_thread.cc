#include "net/io_thread.h"

namespace supercluster::net::internal {
namespace {

thread_local ServerIoThread current_server_io_thread;

}  // namespace

const ServerIoThread& CurrentServerIoThread() { return current_server_io_thread; }

void SetCurrentServerIoThread(ServerIoThread thread) {
  current_server_io_thread = std::move(thread);
}

}  // namespace supercluster::net::internal
