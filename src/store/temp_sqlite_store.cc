#include "store/temp_sqlite_store.h"

#include <stdlib.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>

namespace supercluster::store::testing {

void TempStoreDeleter::operator()(SqliteStore* store) const {
  delete store;  // closed before its files go
  std::error_code ignored;
  std::filesystem::remove_all(directory, ignored);
}

base::Result<TempSqliteStore> OpenTempSqliteStore(SqliteStoreOptions options) {
  char pattern[] = "/tmp/supercluster-store-test-XXXXXX";
  if (::mkdtemp(pattern) == nullptr) {
    return base::Internal(std::string("mkdtemp: ") + std::strerror(errno));
  }
  const std::string directory = pattern;
  options.path = directory + "/state.db";
  options.durable_commits = false;
  auto opened = SqliteStore::Open(options);
  if (!opened.ok()) {
    std::error_code ignored;
    std::filesystem::remove_all(directory, ignored);
    return opened.status();
  }
  return TempSqliteStore(opened->release(), TempStoreDeleter{directory});
}

}  // namespace supercluster::store::testing
