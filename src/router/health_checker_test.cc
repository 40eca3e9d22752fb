// Active health checks against real servers on loopback: a hung target is out within two
// seconds at the default interval and timeout, a refused connection at the first check, and
// a passing target reports its round trip.
#include "router/health_checker.h"

#include <gtest/gtest.h>

#include <mutex>
#include <thread>

#include "net/test_support.h"

namespace supercluster::router {
namespace {

using std::chrono::milliseconds;

class ReadyzServer {
 public:
  ReadyzServer() {
    auto router = std::make_shared<net::HttpRouter>();
    router->Handle("GET", "/readyz", [this](net::HttpRequest, std::shared_ptr<net::Responder> r) {
      if (hang_) {
        std::lock_guard<std::mutex> lock(mutex_);
        held_.push_back(std::move(r));  // never answered
        return;
      }
      r->Send(net::HttpResponse::Text(200, "ready\n"));
    });
    server_ = std::make_unique<net::testing::TestServer>(net::testing::TestServerOptions(), router);
  }
  void Hang() { hang_ = true; }
  net::Endpoint endpoint() const { return server_->endpoint(); }
  void Kill() { server_->server().Stop(); }

 private:
  std::atomic<bool> hang_{false};
  std::mutex mutex_;
  std::vector<std::shared_ptr<net::Responder>> held_;
  std::unique_ptr<net::testing::TestServer> server_;
};

milliseconds TimeUntilUnavailable(Balancer& balancer, const std::string& id) {
  auto start = std::chrono::steady_clock::now();
  while (balancer.Available(id) && std::chrono::steady_clock::now() - start < std::chrono::seconds(5)) {
    std::this_thread::sleep_for(milliseconds(5));
  }
  return std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - start);
}

TEST(HealthCheckerTest, HungTargetIsOutWithinTwoSecondsAndRefusedOneAtOnce) {
  ReadyzServer hung;
  ReadyzServer dead;
  ReadyzServer fine;
  Balancer balancer({});
  HealthChecker checker(HealthCheckOptions{}, [&] {
    return std::vector<HealthTarget>{{"hung", hung.endpoint(), &balancer},
                                     {"dead", dead.endpoint(), &balancer},
                                     {"fine", fine.endpoint(), &balancer}};
  });
  checker.CheckNow();
  EXPECT_GT(balancer.RoundTripMs("fine"), 0);
  EXPECT_TRUE(balancer.Available("hung"));
  checker.Start();
  hung.Hang();
  dead.Kill();
  milliseconds dead_after = TimeUntilUnavailable(balancer, "dead");
  EXPECT_LT(dead_after, milliseconds(600)) << "a refused connection counts at once";
  milliseconds hung_after = TimeUntilUnavailable(balancer, "hung");
  EXPECT_FALSE(balancer.Available("hung"));
  EXPECT_LT(hung_after, milliseconds(2000));
  EXPECT_TRUE(balancer.Available("fine"));
  checker.Stop();
}

}  // namespace
}  // namespace supercluster::router
