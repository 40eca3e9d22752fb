#include "store/open_store.h"

#include <cstdlib>
#include <filesystem>
#include <system_error>

#include "base/data_dir.h"
#include "store/etcd_store.h"
#include "store/sqlite_store.h"

namespace supercluster::store {
namespace {

constexpr std::string_view kSqliteScheme = "sqlite://";
constexpr std::string_view kEtcdScheme = "etcd://";
constexpr std::string_view kEtcdTlsScheme = "etcds://";

base::Result<std::unique_ptr<Store>> OpenSqlite(std::string path, const base::Config& config) {
  if (path.empty()) return base::InvalidArgument("store URL sqlite:// needs a file path");
  SqliteStoreOptions options;
  options.path = std::move(path);
  options.busy_timeout = config.GetDuration("store.sqlite.busy_timeout");
  options.watch_poll_interval = config.GetDuration("store.sqlite.watch_poll_interval");
  options.lease_sweep_interval = config.GetDuration("store.sqlite.lease_sweep_interval");
  options.change_log_retention = config.GetInt("store.sqlite.change_log_retention");
  SC_ASSIGN_OR_RETURN(std::unique_ptr<SqliteStore> store, SqliteStore::Open(options));
  return std::unique_ptr<Store>(std::move(store));
}

// For StoreConnectOptions::must_exist. SQLite creates a missing file, and writes its schema
// into an empty one, on open.
base::Status CheckSqliteStoreExists(const std::string& path) {
  std::error_code error;
  const std::filesystem::file_status status = std::filesystem::status(path, error);
  if (!std::filesystem::exists(status)) {
    return base::NotFound("no store at " + path + " (no such file); check the path");
  }
  if (std::filesystem::is_directory(status)) {
    return base::InvalidArgument("no store at " + path + ": it is a directory");
  }
  if (std::filesystem::is_regular_file(status) && std::filesystem::file_size(path, error) == 0 &&
      !error) {
    return base::NotFound("no store at " + path + " (the file is empty); check the path");
  }
  return base::Status::Ok();
}

base::Result<std::unique_ptr<Store>> OpenEtcd(std::string_view members, bool tls,
                                              const StoreConnectOptions& connect,
                                              const base::Config& config) {
  EtcdStoreOptions options;
  while (!members.empty()) {
    size_t comma = members.find(',');
    std::string_view member = members.substr(0, comma);
    if (member.empty()) return base::InvalidArgument("store URL has an empty etcd member");
    options.endpoints.push_back(std::string(tls ? "https://" : "http://") + std::string(member));
    if (comma == std::string_view::npos) break;
    members.remove_prefix(comma + 1);
  }
  if (options.endpoints.empty()) {
    return base::InvalidArgument("store URL etcd:// needs at least one host:port");
  }
  options.connect_timeout = config.GetDuration("store.etcd.connect_timeout");
  options.request_timeout = config.GetDuration("store.etcd.request_timeout");
  options.watch_max_backoff = config.GetDuration("store.etcd.watch_max_backoff");
  options.watch_idle_timeout = config.GetDuration("store.etcd.watch_idle_timeout");
  options.max_response_bytes = static_cast<uint64_t>(config.GetInt("store.etcd.max_response_bytes"));
  options.tls.enabled = tls;
  options.tls.ca_file = connect.ca_file;
  options.tls.certificate_file = connect.certificate_file;
  options.tls.private_key_file = connect.private_key_file;
  options.username = connect.username;
  options.password = connect.password;
  SC_ASSIGN_OR_RETURN(std::unique_ptr<EtcdStore> store, EtcdStore::Open(options));
  return std::unique_ptr<Store>(std::move(store));
}

}  // namespace

base::Result<std::unique_ptr<Store>> OpenStore(const std::string& url,
                                               const base::Config& config,
                                               const StoreConnectOptions& connect) {
  std::string_view view = url;
  if (view.empty()) {
    const std::string path = base::DefaultDataDir() + "/state.db";
    if (connect.must_exist) SC_RETURN_IF_ERROR(CheckSqliteStoreExists(path));
    // The default location is ours to create; an explicit path's directory must exist.
    std::error_code error;
    std::filesystem::create_directories(base::DefaultDataDir(), error);
    if (error) {
      return base::Unavailable("cannot create " + base::DefaultDataDir() + ": " + error.message());
    }
    return OpenSqlite(path, config);
  }
  if (view.starts_with(kSqliteScheme)) {
    std::string path(view.substr(kSqliteScheme.size()));
    if (connect.must_exist) SC_RETURN_IF_ERROR(CheckSqliteStoreExists(path));
    return OpenSqlite(std::move(path), config);
  }
  if (view.starts_with(kEtcdScheme)) {
    return OpenEtcd(view.substr(kEtcdScheme.size()), false, connect, config);
  }
  if (view.starts_with(kEtcdTlsScheme)) {
    return OpenEtcd(view.substr(kEtcdTlsScheme.size()), true, connect, config);
  }
  return base::InvalidArgument("store URL '" + url +
                               "': use sqlite:///path, etcd://host:port,... or etcds://...");
}

}  // namespace supercluster::store
