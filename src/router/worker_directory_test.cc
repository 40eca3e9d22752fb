// Which instance records the worker directory lets through: real dev attestation documents
// from a root and measurements the policy trusts, and from ones it does not.
#include "router/worker_directory.h"

#include <gtest/gtest.h>

#include <thread>

#include "attest/dev_attestor.h"
#include "base/base64.h"
#include "store/temp_sqlite_store.h"

namespace supercluster::router {
namespace {

using std::chrono::milliseconds;

attest::DevMeasurements Measurements(std::string_view tag) {
  attest::DevMeasurements measurements;
  measurements.pcr0 = attest::Sha384(attest::AsByteView(std::string(tag) + " enclave"));
  measurements.pcr1 = attest::Sha384(attest::AsByteView(std::string(tag) + " config"));
  measurements.pcr2 = attest::Sha384(attest::AsByteView(std::string(tag) + " worker"));
  return measurements;
}

std::string DocumentB64(const attest::DevCa& ca, const attest::DevMeasurements& measurements,
                        attest::Clock clock = {}) {
  attest::DevAttestor attestor(ca, measurements, std::move(clock));
  auto document = attestor.Attest(std::nullopt, std::nullopt, attest::BytesOf("node key"));
  EXPECT_TRUE(document.ok()) << document.status().ToString();
  return base::Base64Encode(
      std::string_view(reinterpret_cast<const char*>(document->data()), document->size()));
}

class WorkerDirectoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto opened = store::testing::OpenTempSqliteStore();
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    store_ = std::move(*opened);
    auto ca = attest::DevCa::Generate();
    ASSERT_TRUE(ca.ok());
    ca_.emplace(std::move(*ca));
    auto other = attest::DevCa::Generate();
    ASSERT_TRUE(other.ok());
    other_ca_.emplace(std::move(*other));
    good_ = Measurements("good");
    policy_.root_certificate = ca_->root_certificate();
    policy_.allowed_measurements.push_back(
        {{0, good_.pcr0}, {1, good_.pcr1}, {2, good_.pcr2}});
    policy_.clock = [this] { return system_now_; };
  }
  void TearDown() override {
    cache_.reset();
    store_.reset();
  }

  void PutInstance(const std::string& id, const std::string& document_b64,
                   store::InstanceState state = store::InstanceState::kServing,
                   const std::string& model = "kjv", const std::string& region = "us-east-1") {
    store::Instance instance;
    instance.id = id;
    instance.region = region;
    instance.state = state;
    instance.address = "http://127.0.0.1:9";
    instance.model = model;
    instance.capacity = 4;
    instance.attestation_b64 = document_b64;
    ASSERT_TRUE(store_->Put(store::keys::Instance(region, id), store::Encode(instance)).ok());
  }

  void StartCache() {
    auto cache = store::PrefixCache::Start(*store_, store::keys::InstancePrefix("us-east-1"));
    ASSERT_TRUE(cache.ok()) << cache.status().ToString();
    cache_ = std::move(*cache);
  }

  // Documents stamped at the time the policy checks at: with the system clock a document
  // issued a moment after `system_now_` would be "not yet valid" there (seen under ASan).
  attest::Clock SameClock() {
    return [this] { return system_now_; };
  }

  // The eligible workers' ids. The request path's view (EligibleOnThisThread) is read
  // first and must match: served from a stale copy of this thread's, it would not.
  std::vector<std::string> EligibleIds(WorkerDirectory& directory) {
    std::vector<std::string> on_this_thread;
    for (const WorkerInfo& worker : directory.EligibleOnThisThread()) {
      on_this_thread.push_back(worker.id);
    }
    std::vector<std::string> ids;
    for (const WorkerInfo& worker : *directory.Eligible()) ids.push_back(worker.id);
    EXPECT_EQ(on_this_thread, ids) << "EligibleOnThisThread is stale";
    return ids;
  }

  store::testing::TempSqliteStore store_;
  std::unique_ptr<store::PrefixCache> cache_;
  std::optional<attest::DevCa> ca_;
  std::optional<attest::DevCa> other_ca_;
  attest::DevMeasurements good_;
  attest::AttestationPolicy policy_;
  std::chrono::system_clock::time_point system_now_ = std::chrono::system_clock::now();
};

TEST_F(WorkerDirectoryTest, OnlyServingInstancesWithAcceptedDocumentsAreEligible) {
  PutInstance("good", DocumentB64(*ca_, good_, SameClock()));
  PutInstance("wrong-root", DocumentB64(*other_ca_, good_, SameClock()));
  PutInstance("wrong-pcrs", DocumentB64(*ca_, Measurements("evil"), SameClock()));
  PutInstance("debug", DocumentB64(*ca_, attest::DevMeasurements::Zero(), SameClock()));
  PutInstance("draining", DocumentB64(*ca_, good_, SameClock()),
              store::InstanceState::kDraining);
  PutInstance("no-document", "");
  PutInstance("not-base64", "%%%");
  StartCache();
  WorkerDirectory directory(*cache_, "us-east-1", policy_);
  EXPECT_EQ(EligibleIds(directory), std::vector<std::string>{"us-east-1/good"});
  auto rejections = directory.Rejections();
  EXPECT_NE(rejections["wrong-root"].find("untrusted_root"), std::string::npos)
      << rejections["wrong-root"];
  EXPECT_NE(rejections["wrong-pcrs"].find("pcr_mismatch"), std::string::npos)
      << rejections["wrong-pcrs"];
  EXPECT_NE(rejections["debug"].find("debug"), std::string::npos) << rejections["debug"];
  EXPECT_EQ(rejections["draining"], "state draining");
  EXPECT_FALSE(rejections["no-document"].empty());
  EXPECT_FALSE(rejections["not-base64"].empty());
  EXPECT_EQ(directory.KnownModels(), std::vector<std::string>{"kjv"});
  const WorkerInfo& worker = directory.Eligible()->at(0);
  EXPECT_EQ(worker.model, "kjv");
  EXPECT_EQ(worker.endpoint.port, 9);
}

TEST_F(WorkerDirectoryTest, FollowsTheStoreAndStopsTrafficWhenADocumentExpires) {
  StartCache();
  auto steady = std::chrono::steady_clock::now();
  WorkerDirectoryOptions options;
  options.reverify_interval = milliseconds(1000);
  options.clock = [&steady] { return steady; };
  policy_.max_age = std::chrono::minutes(5);
  WorkerDirectory directory(*cache_, "us-east-1", policy_, options);
  // Read as the request path reads it (each change must reach this thread's copy), and
  // by EligibleIds also as the status page does.
  EXPECT_TRUE(directory.EligibleOnThisThread().empty());

  PutInstance("w1", DocumentB64(*ca_, good_, [this] { return system_now_; }));
  for (int i = 0; i < 200 && directory.EligibleOnThisThread().empty(); ++i) {
    std::this_thread::sleep_for(milliseconds(10));
  }
  ASSERT_EQ(EligibleIds(directory), std::vector<std::string>{"us-east-1/w1"});

  // Ten minutes later the document is older than the policy allows. The verdict is cached
  // until the re-check interval has passed, then the worker is dropped.
  system_now_ += std::chrono::minutes(10);
  EXPECT_EQ(directory.EligibleOnThisThread().size(), 1u);
  steady += milliseconds(1001);
  EXPECT_TRUE(directory.EligibleOnThisThread().empty());
  EXPECT_NE(directory.Rejections()["w1"].find("too_old"), std::string::npos)
      << directory.Rejections()["w1"];

  // A fresh document (the worker's refresh) brings it back.
  PutInstance("w1", DocumentB64(*ca_, good_, [this] { return system_now_; }));
  for (int i = 0; i < 200 && directory.EligibleOnThisThread().empty(); ++i) {
    std::this_thread::sleep_for(milliseconds(10));
  }
  EXPECT_EQ(directory.EligibleOnThisThread().size(), 1u);

  // The record vanishing (lease ended) removes it.
  ASSERT_TRUE(store_->Delete(store::keys::Instance("us-east-1", "w1")).ok());
  for (int i = 0; i < 200 && !directory.EligibleOnThisThread().empty(); ++i) {
    std::this_thread::sleep_for(milliseconds(10));
  }
  EXPECT_TRUE(directory.EligibleOnThisThread().empty());
}

// The cluster's policy record changes (a build is withdrawn, a new one allowed): workers
// whose documents no longer match stop getting traffic at once, and new ones start.
TEST_F(WorkerDirectoryTest, APolicyChangeAppliesAtOnce) {
  attest::DevMeasurements next = Measurements("next build");
  PutInstance("old-build", DocumentB64(*ca_, good_, SameClock()));
  PutInstance("new-build", DocumentB64(*ca_, next, SameClock()));
  StartCache();
  WorkerDirectory directory(*cache_, "us-east-1", policy_);
  EXPECT_EQ(EligibleIds(directory), std::vector<std::string>{"us-east-1/old-build"});

  attest::AttestationPolicy changed = policy_;
  changed.allowed_measurements = {{{0, next.pcr0}, {1, next.pcr1}, {2, next.pcr2}}};
  directory.SetPolicy(changed);
  EXPECT_EQ(EligibleIds(directory), std::vector<std::string>{"us-east-1/new-build"});
  EXPECT_NE(directory.Rejections()["old-build"].find("pcr_mismatch"), std::string::npos);

  directory.SetPolicy(policy_);
  EXPECT_EQ(EligibleIds(directory), std::vector<std::string>{"us-east-1/old-build"});
}

// A change another reader evaluated first (the status page, another io thread) must still
// reach this thread's copy: it is checked against the list's generation, not only against
// whether an evaluation is due.
TEST_F(WorkerDirectoryTest, AThreadsCopyFollowsChangesAnotherReaderSawFirst) {
  attest::DevMeasurements next = Measurements("next build");
  PutInstance("old-build", DocumentB64(*ca_, good_, SameClock()));
  PutInstance("new-build", DocumentB64(*ca_, next, SameClock()));
  StartCache();
  WorkerDirectory directory(*cache_, "us-east-1", policy_);
  auto ids_on_this_thread = [&directory] {
    std::vector<std::string> ids;
    for (const WorkerInfo& worker : directory.EligibleOnThisThread()) ids.push_back(worker.id);
    return ids;
  };
  ASSERT_EQ(ids_on_this_thread(), std::vector<std::string>{"us-east-1/old-build"});

  attest::AttestationPolicy changed = policy_;
  changed.allowed_measurements = {{{0, next.pcr0}, {1, next.pcr1}, {2, next.pcr2}}};
  directory.SetPolicy(changed);
  EXPECT_EQ(directory.Eligible()->size(), 1u);  // another reader evaluates first
  EXPECT_EQ(ids_on_this_thread(), std::vector<std::string>{"us-east-1/new-build"});

  PutInstance("newer", DocumentB64(*ca_, next, SameClock()));
  for (int i = 0; i < 200 && directory.Eligible()->size() < 2; ++i) {
    std::this_thread::sleep_for(milliseconds(10));
  }
  ASSERT_EQ(directory.Eligible()->size(), 2u);
  EXPECT_EQ(ids_on_this_thread(),
            (std::vector<std::string>{"us-east-1/new-build", "us-east-1/newer"}));
  EXPECT_TRUE(directory.KnowsModelOnThisThread("kjv"));
  EXPECT_FALSE(directory.KnowsModelOnThisThread("unknown"));
}

// A thread that serves two directories (two routers in one process) keeps one copy at a
// time: it must never hand one directory's workers out as the other's.
TEST_F(WorkerDirectoryTest, EachDirectorysWorkersOnOneThread) {
  auto first = WorkerDirectory::Static("first", {"127.0.0.1:8001"});
  auto second = WorkerDirectory::Static("second", {"127.0.0.1:8002", "127.0.0.1:8003"});
  ASSERT_TRUE(first.ok() && second.ok());
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ((*first)->EligibleOnThisThread().size(), 1u);
    EXPECT_EQ((*first)->EligibleOnThisThread()[0].id, "first/static-1");
    ASSERT_EQ((*second)->EligibleOnThisThread().size(), 2u);
    EXPECT_EQ((*second)->EligibleOnThisThread()[1].id, "second/static-2");
  }
}

TEST_F(WorkerDirectoryTest, StaticModeServesFixedAddressesAndRejectsBadOnes) {
  auto directory = WorkerDirectory::Static("bench", {"127.0.0.1:8001", "http://127.0.0.1:8002"});
  ASSERT_TRUE(directory.ok()) << directory.status().ToString();
  auto workers = (*directory)->Eligible();
  ASSERT_EQ(workers->size(), 2u);
  EXPECT_EQ(workers->at(0).id, "bench/static-1");
  EXPECT_EQ(workers->at(1).endpoint.port, 8002);
  EXPECT_TRUE(workers->at(0).model.empty());
  EXPECT_TRUE((*directory)->static_mode());
  auto bad = WorkerDirectory::Static("bench", {"not an address"});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("--static-worker not an address"), std::string::npos);
}

}  // namespace
}  // namespace supercluster::router
