// Opens a Store from the URL operators and services are given (--store):
//   sqlite:///var/lib/supercluster/state.db   an embedded SQLite file (one machine)
//   etcd://10.0.0.1:2379,10.0.0.2:2379        etcd members over HTTP, with failover
//   etcds://host:2379,...                      the same over TLS
#pragma once

#include <memory>
#include <string>

#include "base/config.h"
#include "base/status.h"
#include "store/store.h"

namespace supercluster::store {

struct StoreConnectOptions {
  std::string ca_file;           // etcds: trusted CA bundle ("" = system roots)
  std::string certificate_file;  // etcds: client certificate for mutual TLS
  std::string private_key_file;
  std::string username;          // etcd auth, when enabled
  std::string password;
  // sqlite: refuse a path with no store yet (no file, or an empty one) instead of creating
  // one there. For commands that only read or change what is there: a mistyped path
  // should fail, not answer from a new empty store.
  bool must_exist = false;
};

// An empty URL means sqlite://$HOME/.local/share/supercluster/state.db. Timeouts and
// other limits come from the store.* keys of `config`.
base::Result<std::unique_ptr<Store>> OpenStore(const std::string& url, const base::Config& config,
                                               const StoreConnectOptions& connect = {});

}  // namespace supercluster::store
