// The watch behind EtcdStore::WatchPrefix: a thread that reads etcd's watch stream
// (POST /v3/watch, one JSON object per response) and hands each revision's events to the
// callback, reopening the stream on any member after a break and resuming after the last
// revision delivered, so that every revision is delivered once and in order. See
// etcd_store.h for the behaviour callers see.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "store/etcd_client.h"
#include "store/store.h"

namespace supercluster::store::etcd {

struct WatchTarget {
  std::string prefix;          // for messages
  int64_t start_revision = 1;  // the first revision to deliver; > 0
};

// Starts the watch thread. The thread keeps `client` alive until it finishes.
base::Result<std::unique_ptr<Watch>> StartWatch(std::shared_ptr<Client> client, WatchTarget target,
                                                WatchCallback callback);

// Watch threads started and not yet finished, in this process.
int RunningWatchThreads();

}  // namespace supercluster::store::etcd
