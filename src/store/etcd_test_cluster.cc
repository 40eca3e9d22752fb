#include "store/etcd_test_cluster.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "net/endpoint.h"
#include "net/free_ports.h"
#include "net/http_client.h"

namespace supercluster::store::testing {

namespace {

using namespace std::chrono_literals;

constexpr auto kServeTimeout = 15s;
constexpr int kStartAttempts = 3;  // fresh ports each time, in case another process took one
// Fast heartbeats and elections keep restarts and leader changes short; the election
// timeout stays well above scheduling hiccups of a loaded two-core machine.
constexpr int kHeartbeatMilliseconds = 50;
constexpr int kElectionMilliseconds = 500;
// Far below EtcdStoreOptions::watch_idle_timeout in StoreOptions(), so idle test watches
// keep their streams, and cancelled watch threads notice soon that they should end.
constexpr const char* kProgressNotifyInterval = "250ms";

std::string FindEtcd() {
  if (const char* path = std::getenv("PATH")) {
    std::stringstream directories(path);
    std::string directory;
    while (std::getline(directories, directory, ':')) {
      std::string candidate = directory + "/etcd";
      if (!directory.empty() && ::access(candidate.c_str(), X_OK) == 0) return candidate;
    }
  }
  return ::access("/usr/bin/etcd", X_OK) == 0 ? "/usr/bin/etcd" : "";
}

base::Result<std::string> MakeTemporaryDirectory() {
  const char* base = std::getenv("TMPDIR");
  std::string pattern = std::string(base && *base ? base : "/tmp") + "/sc-etcd-test-XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) {
    return base::Unavailable("mkdtemp " + pattern + " failed");
  }
  return pattern;
}

}  // namespace

base::Result<std::unique_ptr<EtcdTestCluster>> EtcdTestCluster::Start(
    const EtcdClusterOptions& options) {
  if (options.members < 1) return base::InvalidArgument("a cluster needs at least one member");
  std::string binary = FindEtcd();
  if (binary.empty()) {
    return base::FailedPrecondition(
        "etcd not found on PATH: install Debian's etcd-server (scripts/install-deps)");
  }
  base::Status last;
  for (int attempt = 0; attempt < kStartAttempts; ++attempt) {
    SC_ASSIGN_OR_RETURN(std::string directory, MakeTemporaryDirectory());
    std::unique_ptr<EtcdTestCluster> cluster(new EtcdTestCluster(options, directory, binary));
    last = cluster->StartAll();
    if (last.ok()) return cluster;
  }
  return last;
}

EtcdTestCluster::EtcdTestCluster(EtcdClusterOptions options, std::string directory,
                                 std::string binary)
    : options_(std::move(options)),
      directory_(std::move(directory)),
      binary_(std::move(binary)),
      owner_pid_(::getpid()) {
  // Unique per cluster, so members of two clusters can never join each other.
  cluster_token_ =
      "sc-test-" + std::to_string(owner_pid_) + "-" + directory_.substr(directory_.size() - 6);
}

EtcdTestCluster::~EtcdTestCluster() {
  if (::getpid() != owner_pid_) return;
  KillAll();
  std::error_code ignored;
  std::filesystem::remove_all(directory_, ignored);
}

base::Status EtcdTestCluster::StartAll() {
  SC_ASSIGN_OR_RETURN(std::vector<uint16_t> ports,
                      net::FreeLoopbackPorts(2 * static_cast<size_t>(options_.members)));
  for (int i = 0; i < options_.members; ++i) {
    Member member;
    member.name = "member" + std::to_string(i);
    member.data_directory = directory_ + "/" + member.name;
    member.log_file = directory_ + "/" + member.name + ".log";
    member.client_port = ports[2 * i];
    member.peer_port = ports[2 * i + 1];
    members_.push_back(member);
  }
  for (Member& member : members_) SC_RETURN_IF_ERROR(Launch(member));
  // Members serve only once a quorum has met, so wait after starting them all.
  for (int i = 0; i < member_count(); ++i) {
    SC_RETURN_IF_ERROR(
        WaitServing(i, std::chrono::duration_cast<std::chrono::milliseconds>(kServeTimeout)));
  }
  return base::Status::Ok();
}

std::vector<std::string> EtcdTestCluster::Arguments(const Member& member) const {
  auto peer_url = [](const Member& m) { return "http://127.0.0.1:" + std::to_string(m.peer_port); };
  std::string initial_cluster;
  for (const Member& other : members_) {
    if (!initial_cluster.empty()) initial_cluster += ",";
    initial_cluster += other.name + "=" + peer_url(other);
  }
  std::string client_url = (options_.tls ? "https://127.0.0.1:" : "http://127.0.0.1:") +
                           std::to_string(member.client_port);
  std::vector<std::string> arguments = {
      binary_,
      "--name=" + member.name,
      "--data-dir=" + member.data_directory,
      "--listen-client-urls=" + client_url,
      "--advertise-client-urls=" + client_url,
      "--listen-peer-urls=" + peer_url(member),
      "--initial-advertise-peer-urls=" + peer_url(member),
      "--initial-cluster=" + initial_cluster,
      "--initial-cluster-state=new",  // ignored on restart: the data directory decides
      "--initial-cluster-token=" + cluster_token_,
      "--heartbeat-interval=" + std::to_string(kHeartbeatMilliseconds),
      "--election-timeout=" + std::to_string(kElectionMilliseconds),
      std::string("--experimental-watch-progress-notify-interval=") + kProgressNotifyInterval,
      "--logger=zap",
      "--log-outputs=" + member.log_file,
      "--log-level=error",
  };
  if (options_.tls) {
    arguments.push_back("--cert-file=" + options_.tls->server_certificate_file);
    arguments.push_back("--key-file=" + options_.tls->server_key_file);
    arguments.push_back("--trusted-ca-file=" + options_.tls->ca_file);
    arguments.push_back("--client-cert-auth=true");
  }
  return arguments;
}

base::Status EtcdTestCluster::Launch(Member& member) {
  std::vector<std::string> arguments = Arguments(member);
  // Everything the child needs is prepared before fork(): after it, only async-signal-safe
  // calls are allowed in a multi-threaded parent's child.
  std::vector<char*> argv;
  for (std::string& argument : arguments) argv.push_back(argument.data());
  argv.push_back(nullptr);
  int log_fd = ::open(member.log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) return base::Unavailable("cannot open " + member.log_file);
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(1);  // the parent died before prctl took effect
    ::dup2(log_fd, STDOUT_FILENO);
    ::dup2(log_fd, STDERR_FILENO);
    // Sockets of the test (not all opened close-on-exec) must not live on in etcd, or a
    // connection the test closes would stay open.
    ::close_range(3, ~0u, 0);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(log_fd);
  if (pid < 0) return base::Unavailable("fork failed");
  member.pid = pid;
  return base::Status::Ok();
}

base::Status EtcdTestCluster::WaitServing(int index, std::chrono::milliseconds timeout) {
  Member& member = members_[index];
  auto endpoint = net::ParseEndpoint(ClientUrl(index));
  if (!endpoint.ok()) return endpoint.status();
  EtcdStoreOptions store_options = StoreOptions();
  net::ClientOptions options = net::ClientOptions::FromConfig(base::Config::Defaults());
  options.connect_timeout = 200ms;
  options.request_timeout = 1s;
  options.tls = store_options.tls;
  net::HttpRequest request;
  request.target = "/health";
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (::waitpid(member.pid, &status, WNOHANG) == member.pid) {
      member.pid = -1;
      return base::Unavailable(member.name + " exited during start-up (status " +
                               std::to_string(status) + "); its log ends with:\n" +
                               LogTail(member));
    }
    net::HttpClient client(*endpoint, options);
    auto response = client.Request(request);
    if (response.ok() && response->status == 200 &&
        response->body.find("\"health\":\"true\"") != std::string::npos) {
      return base::Status::Ok();
    }
    std::this_thread::sleep_for(20ms);
  }
  return base::Unavailable(member.name + " did not serve within " +
                           std::to_string(timeout.count()) + " ms; its log ends with:\n" +
                           LogTail(member));
}

std::string EtcdTestCluster::LogTail(const Member& member) const {
  std::ifstream file(member.log_file);
  std::string log((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  constexpr size_t kTailBytes = 2000;
  return log.size() > kTailBytes ? log.substr(log.size() - kTailBytes) : log;
}

std::string EtcdTestCluster::ClientUrl(int member) const {
  return (options_.tls ? "https://127.0.0.1:" : "http://127.0.0.1:") +
         std::to_string(members_[member].client_port);
}

std::vector<std::string> EtcdTestCluster::ClientUrls() const {
  std::vector<std::string> urls;
  for (int i = 0; i < member_count(); ++i) urls.push_back(ClientUrl(i));
  return urls;
}

EtcdStoreOptions EtcdTestCluster::StoreOptions() const {
  EtcdStoreOptions options;
  options.endpoints = ClientUrls();
  options.connect_timeout = 500ms;
  options.request_timeout = 3s;
  options.watch_idle_timeout = 3s;
  if (options_.tls) {
    options.tls.ca_file = options_.tls->ca_file;
    options.tls.certificate_file = options_.tls->client_certificate_file;
    options.tls.private_key_file = options_.tls->client_key_file;
  }
  return options;
}

base::Status EtcdTestCluster::Kill(int index) {
  Member& member = members_[index];
  if (member.pid <= 0) return base::FailedPrecondition(member.name + " is not running");
  ::kill(member.pid, SIGKILL);
  ::waitpid(member.pid, nullptr, 0);
  member.pid = -1;
  return base::Status::Ok();
}

base::Status EtcdTestCluster::Restart(int index) {
  Member& member = members_[index];
  if (member.pid > 0) return base::FailedPrecondition(member.name + " is still running");
  SC_RETURN_IF_ERROR(Launch(member));
  return WaitServing(index, std::chrono::duration_cast<std::chrono::milliseconds>(kServeTimeout));
}

void EtcdTestCluster::KillAll() {
  for (int i = 0; i < member_count(); ++i) {
    if (members_[i].pid > 0) (void)Kill(i);
  }
}

base::Result<std::string> EtcdTestCluster::Post(int member, const std::string& path,
                                                const std::string& body,
                                                const std::string& token) const {
  SC_ASSIGN_OR_RETURN(net::Endpoint endpoint, net::ParseEndpoint(ClientUrl(member)));
  net::ClientOptions options = net::ClientOptions::FromConfig(base::Config::Defaults());
  options.connect_timeout = 1s;
  options.request_timeout = 10s;
  options.tls = StoreOptions().tls;
  net::HttpClient client(endpoint, options);
  net::HttpRequest request;
  request.method = "POST";
  request.target = path;
  request.headers.Set("Content-Type", "application/json");
  if (!token.empty()) request.headers.Set("Authorization", token);
  request.body = body;
  SC_ASSIGN_OR_RETURN(net::HttpResponse response, client.Request(request));
  if (response.status != 200) {
    return base::Unavailable(path + " answered HTTP " + std::to_string(response.status) + ": " +
                             response.body);
  }
  return response.body;
}

base::Status EtcdTestCluster::EnableAuth(const std::string& password) {
  // etcd turns auth on only when a "root" user with the "root" role exists.
  std::string user = nlohmann::json{{"name", "root"}, {"password", password}}.dump();
  for (const auto& [path, body] : std::vector<std::pair<std::string, std::string>>{
           {"/v3/auth/user/add", user},
           {"/v3/auth/role/add", R"({"name":"root"})"},
           {"/v3/auth/user/grant", R"({"user":"root","role":"root"})"},
           {"/v3/auth/enable", "{}"}}) {
    auto answer = Post(0, path, body);
    if (!answer.ok()) return answer.status();
  }
  return base::Status::Ok();
}

}  // namespace supercluster::store::testing
