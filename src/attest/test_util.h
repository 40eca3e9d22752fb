// Helpers shared by the attest tests: hex literals and reading shared test data files.
#pragma once

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

#include "attest/bytes.h"

namespace supercluster::attest::testing {

// Hex (spaces allowed) to bytes; throws on bad input, which fails the test that wrote it.
inline Bytes Hex(std::string text) {
  std::erase(text, ' ');
  Bytes bytes;
  if (!BytesFromHex(text, &bytes)) throw std::invalid_argument("bad hex in test: " + text);
  return bytes;
}

inline Bytes ReadFileBytes(const std::filesystem::path& path) {
  std::ifstream file(path, std::ios::binary);
  std::ostringstream contents;
  contents << file.rdbuf();
  return BytesOf(contents.str());
}

}  // namespace supercluster::attest::testing
