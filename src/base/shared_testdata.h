// Where tests find conformance data from outside the project (RFC vectors, real attestation
// documents): `$SUPERCLUSTER_TESTDATA` if set, else `../shared/testdata` beside the checkout.
// The folder is absent in a clone made elsewhere; tests that need it then skip with
// GTEST_SKIP() << SharedTestDataMissing(...), and their inline vectors still run.
//
// Only for tests: supercluster_test() defines SUPERCLUSTER_SOURCE_DIR for every test target.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <string>

namespace supercluster::testing {

inline std::filesystem::path SharedTestDataDir() {
  if (const char* from_env = std::getenv("SUPERCLUSTER_TESTDATA"); from_env && *from_env) {
    return from_env;
  }
  return std::filesystem::path(SUPERCLUSTER_SOURCE_DIR).parent_path() / "shared" / "testdata";
}

// The path of `relative` under SharedTestDataDir(); empty if that file does not exist.
inline std::filesystem::path SharedTestDataFile(const std::string& relative) {
  std::filesystem::path path = SharedTestDataDir() / relative;
  return std::filesystem::exists(path) ? path : std::filesystem::path();
}

inline std::string SharedTestDataMissing(const std::string& relative) {
  return "shared test data " + (SharedTestDataDir() / relative).string() +
         " is absent (set SUPERCLUSTER_TESTDATA to the folder holding it)";
}

}  // namespace supercluster::testing
