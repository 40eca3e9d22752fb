// Test-only: how the store conformance suite (store_conformance_test.cc) reaches a
// backend. Each backend's test file defines a StoreTestBackend and instantiates the suite
// with it, so one suite of tests runs against SQLite and against a real etcd alike.
#pragma once

#include <gtest/gtest.h>

#include <sys/types.h>

#include <functional>
#include <memory>
#include <string>

#include "store/store.h"

namespace supercluster::store::testing {

class StoreTestBackend {
 public:
  virtual ~StoreTestBackend() = default;
  virtual std::string Name() const = 0;
  // Prepares an empty store (a fresh database file; a started etcd with no keys).
  virtual void SetUp() = 0;
  virtual void TearDown() = 0;
  // Opens a new client of that store. May be called many times (each one is an
  // independent client, as separate processes would have), and also in a child
  // process after fork().
  virtual std::unique_ptr<Store> Open() = 0;
};

// The conformance suite's fixture. A backend's test file instantiates it:
//   INSTANTIATE_TEST_SUITE_P(Sqlite, StoreConformanceTest,
//                            ::testing::Values(std::make_shared<SqliteTestBackend>()),
//                            BackendName);
class StoreConformanceTest
    : public ::testing::TestWithParam<std::shared_ptr<StoreTestBackend>> {
 protected:
  void SetUp() override;
  void TearDown() override;
  StoreTestBackend& backend() { return *GetParam(); }
  Store& store() { return *store_; }

  // Forks a child that opens its own client, runs `body` with it and then waits to be
  // killed; returns the child's pid once `body` has returned true, or -1 (the child
  // killed) if it returned false or did not answer within 20 s. The fork happens with
  // this process down to one thread (store() is closed first and opened again after),
  // so the child inherits no lock that another thread held at that moment.
  pid_t ForkChild(const std::function<bool(Store&)>& body);

 private:
  std::unique_ptr<Store> store_;
};

// Names instantiations after the backend: "sqlite", "etcd".
std::string BackendName(
    const ::testing::TestParamInfo<std::shared_ptr<StoreTestBackend>>& info);

}  // namespace supercluster::store::testing
