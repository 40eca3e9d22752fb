// A read-only memory mapping of a whole file, for model weights: the readers hand out
// pointers into it instead of copying gigabytes. Used by the GGUF and safetensors readers.
//
// The mapping lives as long as the MappedFile; pointers into it dangle after that. An empty
// file maps to data() == nullptr, size() == 0.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "base/status.h"

namespace supercluster::engine {

class MappedFile {
 public:
  // Maps `path` read-only. Errors name the path and the system's reason.
  static base::Result<std::unique_ptr<MappedFile>> Open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const std::string& path() const { return path_; }
  const uint8_t* data() const { return data_; }
  uint64_t size() const { return size_; }
  std::span<const uint8_t> bytes() const { return {data_, static_cast<size_t>(size_)}; }

 private:
  MappedFile(std::string path, const uint8_t* data, uint64_t size)
      : path_(std::move(path)), data_(data), size_(size) {}

  std::string path_;
  const uint8_t* data_;
  uint64_t size_;
};

}  // namespace supercluster::engine
