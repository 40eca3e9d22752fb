// EnclaveLink against a real EnclaveServer: when the enclave closes one of the worker's idle
// connections to make room for another peer, the worker's next call reconnects instead of
// failing (a failed open is a 503, a failed seal cuts an answer short).
#include "worker/enclave_link.h"

#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <thread>

#include "attest/dev_attestor.h"
#include "client/test_enclave.h"
#include "enclave/enclave_core.h"
#include "enclave/enclave_server.h"

namespace supercluster::worker {
namespace {

using namespace std::chrono_literals;

TEST(EnclaveLinkTest, AConnectionClosedWhileIdleIsReopenedBeforeUse) {
  char pattern[] = "/tmp/sc-enclave-link-XXXXXX";
  ASSERT_NE(::mkdtemp(pattern), nullptr);
  std::filesystem::path dir = pattern;
  auto ca = attest::DevCa::Generate();
  ASSERT_TRUE(ca.ok());
  auto core = enclave::EnclaveCore::Create({}, enclave::testing::MakeDevAttestor(*ca));
  ASSERT_TRUE(core.ok());
  enclave::EnclaveServerOptions options;
  options.listen.path = (dir / "enclave.sock").string();
  options.max_connections = 1;
  auto server = enclave::EnclaveServer::Start(options, core->get());
  ASSERT_TRUE(server.ok()) << server.status().ToString();

  // A connection turns idle just after its answer is sent: wait for that before a newcomer.
  auto idle_soon = [&] {
    for (int i = 0; i < 400 && (*server)->idle_connections() != 1; ++i) {
      std::this_thread::sleep_for(5ms);
    }
    return (*server)->idle_connections() == 1;
  };
  auto link = EnclaveLink::Connect(options.listen, 1, 10s);
  ASSERT_TRUE(link.ok()) << link.status().ToString();
  ASSERT_TRUE((*link)->Attest({}, {}).ok());
  ASSERT_TRUE(idle_soon());

  // Another peer takes the only slot: the link's idle connection is closed.
  auto other = enclave::EnclaveClient::Connect(options.listen);
  ASSERT_TRUE(other.ok());
  ASSERT_TRUE((*other)->Attest({}, {}).ok());
  ASSERT_TRUE(idle_soon());

  auto again = (*link)->Attest({}, {});
  EXPECT_TRUE(again.ok()) << again.status().ToString();
  server->reset();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace supercluster::worker
