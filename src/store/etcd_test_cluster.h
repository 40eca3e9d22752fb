// Test-only: real etcd processes (Debian's etcd-server) for the etcd store tests. Starts a
// one- or three-member cluster on 127.0.0.1 with free ports and a temporary data directory,
// waits until every member serves, and can kill a member (SIGKILL) and restart it on the
// same data and ports. Members die with the test process (PR_SET_PDEATHSIG), and the
// destructor kills them and removes the directory, so a failed or crashed test leaves no
// etcd behind. Start and restart members from one long-lived thread (the test's main
// thread): the kernel signals a member when the thread that forked it exits.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "store/etcd_store.h"
#include "store/etcd_test_certificates.h"

namespace supercluster::store::testing {

struct EtcdClusterOptions {
  int members = 1;
  // When set, members serve clients over TLS and require client certificates signed by
  // its CA (--client-cert-auth); peers still talk plain HTTP on loopback.
  std::optional<TestCertificates> tls;
};

class EtcdTestCluster {
 public:
  static base::Result<std::unique_ptr<EtcdTestCluster>> Start(const EtcdClusterOptions& options);
  ~EtcdTestCluster();
  EtcdTestCluster(const EtcdTestCluster&) = delete;
  EtcdTestCluster& operator=(const EtcdTestCluster&) = delete;

  int member_count() const { return static_cast<int>(members_.size()); }
  std::string ClientUrl(int member) const;
  std::vector<std::string> ClientUrls() const;
  // Options for an EtcdStore on every member, with short timeouts, and TLS when on.
  EtcdStoreOptions StoreOptions() const;

  // SIGKILLs the member and reaps it.
  base::Status Kill(int member);
  // Starts a killed member again on its data directory and ports; waits until it serves.
  base::Status Restart(int member);

  // POSTs JSON straight to a member's gateway and returns the 200 answer's body: for
  // set-up steps outside the Store interface (compaction, enabling auth, wiping keys).
  base::Result<std::string> Post(int member, const std::string& path, const std::string& body,
                                 const std::string& token = "") const;
  // Creates user "root" with `password` and turns auth on.
  base::Status EnableAuth(const std::string& password);

 private:
  struct Member {
    std::string name;
    std::string data_directory;
    std::string log_file;
    uint16_t client_port = 0;
    uint16_t peer_port = 0;
    pid_t pid = -1;
  };

  EtcdTestCluster(EtcdClusterOptions options, std::string directory, std::string binary);
  base::Status StartAll();
  std::vector<std::string> Arguments(const Member& member) const;
  base::Status Launch(Member& member);
  base::Status WaitServing(int member, std::chrono::milliseconds timeout);
  std::string LogTail(const Member& member) const;
  void KillAll();

  EtcdClusterOptions options_;
  std::string directory_;
  std::string binary_;
  std::string cluster_token_;
  std::vector<Member> members_;
  pid_t owner_pid_;  // a forked child's copy of this object must not touch the members
};

}  // namespace supercluster::store::testing
