// Test-only: a SqliteStore in a directory of its own under /tmp that goes away with it, for
// the tests of code that reads, writes or watches the store. Compiled into the test
// binaries that use it (as net/test_support.cc is), not into the store library.
#pragma once

#include <memory>
#include <string>

#include "base/status.h"
#include "store/sqlite_store.h"

namespace supercluster::store::testing {

// Closes the store, then removes its directory with everything in it.
struct TempStoreDeleter {
  std::string directory;
  void operator()(SqliteStore* store) const;
};

using TempSqliteStore = std::unique_ptr<SqliteStore, TempStoreDeleter>;

// Opens a store at state.db in a new directory, with `options` but for their path, and
// with commits that skip fsync (a test has no power cut to survive, and fsync makes it
// slow).
base::Result<TempSqliteStore> OpenTempSqliteStore(SqliteStoreOptions options = {});

}  // namespace supercluster::store::testing
