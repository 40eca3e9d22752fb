#include "engine/gguf_writer.h"

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

namespace supercluster::engine {
namespace {

template <typename T>
void Append(std::string& out, T value) {
  char raw[sizeof(T)];
  std::memcpy(raw, &value, sizeof(T));  // little-endian host (the reader asserts it)
  out.append(raw, sizeof(T));
}

void AppendString(std::string& out, std::string_view text) {
  Append<uint64_t>(out, text.size());
  out.append(text);
}

template <typename T>
GgufEncodedValue Scalar(GgufValueType type, T value) {
  GgufEncodedValue encoded{type, {}};
  Append(encoded.payload, value);
  return encoded;
}

uint64_t AlignUp(uint64_t value, uint64_t alignment) {
  return (value + alignment - 1) / alignment * alignment;
}

}  // namespace

GgufEncodedValue GgufUint8(uint8_t v) { return Scalar(GgufValueType::kUint8, v); }
GgufEncodedValue GgufInt8(int8_t v) { return Scalar(GgufValueType::kInt8, v); }
GgufEncodedValue GgufUint16(uint16_t v) { return Scalar(GgufValueType::kUint16, v); }
GgufEncodedValue GgufInt16(int16_t v) { return Scalar(GgufValueType::kInt16, v); }
GgufEncodedValue GgufUint32(uint32_t v) { return Scalar(GgufValueType::kUint32, v); }
GgufEncodedValue GgufInt32(int32_t v) { return Scalar(GgufValueType::kInt32, v); }
GgufEncodedValue GgufUint64(uint64_t v) { return Scalar(GgufValueType::kUint64, v); }
GgufEncodedValue GgufInt64(int64_t v) { return Scalar(GgufValueType::kInt64, v); }
GgufEncodedValue GgufFloat32(float v) { return Scalar(GgufValueType::kFloat32, v); }
GgufEncodedValue GgufFloat64(double v) { return Scalar(GgufValueType::kFloat64, v); }
GgufEncodedValue GgufBool(bool v) { return Scalar(GgufValueType::kBool, uint8_t{v}); }

GgufEncodedValue GgufString(std::string_view value) {
  GgufEncodedValue encoded{GgufValueType::kString, {}};
  AppendString(encoded.payload, value);
  return encoded;
}

GgufEncodedValue GgufArray(GgufValueType element_type,
                           const std::vector<GgufEncodedValue>& elements) {
  GgufEncodedValue encoded{GgufValueType::kArray, {}};
  Append<uint32_t>(encoded.payload, static_cast<uint32_t>(element_type));
  Append<uint64_t>(encoded.payload, elements.size());
  for (const GgufEncodedValue& element : elements) {
    // Nested arrays carry their own element type and length; a plain element is its payload.
    encoded.payload += element.payload;
  }
  return encoded;
}

GgufEncodedValue GgufStringArray(const std::vector<std::string>& values) {
  GgufEncodedValue encoded{GgufValueType::kArray, {}};
  Append<uint32_t>(encoded.payload, static_cast<uint32_t>(GgufValueType::kString));
  Append<uint64_t>(encoded.payload, values.size());
  for (const std::string& value : values) AppendString(encoded.payload, value);
  return encoded;
}

GgufEncodedValue GgufFloat32Array(const std::vector<float>& values) {
  GgufEncodedValue encoded{GgufValueType::kArray, {}};
  Append<uint32_t>(encoded.payload, static_cast<uint32_t>(GgufValueType::kFloat32));
  Append<uint64_t>(encoded.payload, values.size());
  for (float value : values) Append(encoded.payload, value);
  return encoded;
}

GgufEncodedValue GgufInt32Array(const std::vector<int32_t>& values) {
  GgufEncodedValue encoded{GgufValueType::kArray, {}};
  Append<uint32_t>(encoded.payload, static_cast<uint32_t>(GgufValueType::kInt32));
  Append<uint64_t>(encoded.payload, values.size());
  for (int32_t value : values) Append(encoded.payload, value);
  return encoded;
}

void GgufWriter::Add(std::string key, GgufEncodedValue value) {
  metadata_.emplace_back(std::move(key), std::move(value));
}

base::Status GgufWriter::AddTensor(std::string name, TensorType type, std::vector<uint64_t> shape,
                                   std::string bytes) {
  SC_ASSIGN_OR_RETURN(uint64_t byte_size, TensorByteSize(type, shape));
  if (byte_size != bytes.size()) {
    return base::InvalidArgument("tensor '" + name + "': " + std::to_string(bytes.size()) +
                                 " bytes given, the shape needs " + std::to_string(byte_size));
  }
  Tensor tensor;
  tensor.name = std::move(name);
  tensor.type_id = static_cast<uint32_t>(type);
  tensor.shape = std::move(shape);
  tensor.byte_size = byte_size;
  tensor.bytes = std::move(bytes);
  tensors_.push_back(std::move(tensor));
  return base::Status::Ok();
}

base::Status GgufWriter::AddTensor(std::string name, TensorType type, std::vector<uint64_t> shape,
                                   TensorFiller filler) {
  SC_ASSIGN_OR_RETURN(uint64_t byte_size, TensorByteSize(type, shape));
  Tensor tensor;
  tensor.name = std::move(name);
  tensor.type_id = static_cast<uint32_t>(type);
  tensor.shape = std::move(shape);
  tensor.byte_size = byte_size;
  tensor.filler = std::move(filler);
  tensors_.push_back(std::move(tensor));
  return base::Status::Ok();
}

std::string GgufWriter::EncodeHeader(std::vector<uint64_t>& offsets, uint64_t& data_bytes) const {
  std::string out = "GGUF";
  Append<uint32_t>(out, version_);
  Append<uint64_t>(out, tensors_.size());
  bool write_alignment = alignment_ != 32;
  Append<uint64_t>(out, metadata_.size() + (write_alignment ? 1 : 0));
  for (const auto& [key, value] : metadata_) {
    AppendString(out, key);
    Append<uint32_t>(out, static_cast<uint32_t>(value.type));
    out += value.payload;
  }
  if (write_alignment) {
    AppendString(out, "general.alignment");
    Append<uint32_t>(out, static_cast<uint32_t>(GgufValueType::kUint32));
    Append<uint32_t>(out, alignment_);
  }
  uint64_t alignment = alignment_ == 0 ? 1 : alignment_;  // hostile 0: lay out unaligned
  uint64_t next = 0;
  offsets.clear();
  data_bytes = 0;
  for (const Tensor& tensor : tensors_) {
    uint64_t offset = tensor.offset.value_or(AlignUp(next, alignment));
    offsets.push_back(offset);
    next = offset + tensor.byte_size;
    data_bytes = std::max(data_bytes, next);
    AppendString(out, tensor.name);
    Append<uint32_t>(out, static_cast<uint32_t>(tensor.shape.size()));
    for (uint64_t extent : tensor.shape) Append<uint64_t>(out, extent);
    Append<uint32_t>(out, tensor.type_id);
    Append<uint64_t>(out, offset);
  }
  out.resize(AlignUp(out.size(), alignment), '\0');
  return out;
}

base::Result<std::string> GgufWriter::Serialize() const {
  std::vector<uint64_t> offsets;
  uint64_t data_bytes = 0;
  std::string out = EncodeHeader(offsets, data_bytes);
  uint64_t data_start = out.size();
  out.resize(data_start + data_bytes, '\0');
  for (size_t i = 0; i < tensors_.size(); ++i) {
    const Tensor& tensor = tensors_[i];
    uint8_t* at = reinterpret_cast<uint8_t*>(out.data()) + data_start + offsets[i];
    if (tensor.filler) {
      SC_RETURN_IF_ERROR(tensor.filler(at, tensor.byte_size));
    } else {
      std::memcpy(at, tensor.bytes.data(), std::min<uint64_t>(tensor.bytes.size(), tensor.byte_size));
    }
  }
  return out;
}

base::Status GgufWriter::WriteFile(const std::string& path,
                                   const std::function<void(uint64_t, uint64_t)>& progress) const {
  std::vector<uint64_t> offsets;
  uint64_t data_bytes = 0;
  std::string header = EncodeHeader(offsets, data_bytes);
  for (size_t i = 1; i < offsets.size(); ++i) {
    if (offsets[i] < offsets[i - 1] + tensors_[i - 1].byte_size) {
      return base::InvalidArgument("GgufWriter::WriteFile streams tensors in order; tensor '" +
                                   tensors_[i].name + "' overlaps the one before");
    }
  }
  std::string temporary = path + ".partial";
  std::FILE* out = std::fopen(temporary.c_str(), "wb");
  if (out == nullptr) {
    return base::InvalidArgument(temporary + ": cannot create: " + std::strerror(errno));
  }
  auto fail = [&](const std::string& what) {
    std::fclose(out);
    std::remove(temporary.c_str());
    return base::InvalidArgument(temporary + ": " + what);
  };
  uint64_t total = header.size() + data_bytes;
  uint64_t written = 0;
  auto write = [&](const void* data, uint64_t size) {
    written += size;
    return std::fwrite(data, 1, size, out) == size;
  };
  if (!write(header.data(), header.size())) return fail("write failed");
  std::vector<uint8_t> buffer;
  const std::string zeros(4096, '\0');
  uint64_t data_written = 0;
  for (size_t i = 0; i < tensors_.size(); ++i) {
    const Tensor& tensor = tensors_[i];
    while (data_written < offsets[i]) {  // padding up to this tensor's offset
      uint64_t gap = std::min<uint64_t>(offsets[i] - data_written, zeros.size());
      if (!write(zeros.data(), gap)) return fail("write failed");
      data_written += gap;
    }
    const uint8_t* bytes = reinterpret_cast<const uint8_t*>(tensor.bytes.data());
    if (tensor.filler) {
      buffer.assign(tensor.byte_size, 0);
      if (base::Status filled = tensor.filler(buffer.data(), buffer.size()); !filled.ok()) {
        return fail(filled.message());
      }
      bytes = buffer.data();
    } else if (tensor.bytes.size() < tensor.byte_size) {  // a raw tensor given short bytes
      buffer.assign(tensor.byte_size, 0);
      std::memcpy(buffer.data(), tensor.bytes.data(), tensor.bytes.size());
      bytes = buffer.data();
    }
    if (!write(bytes, tensor.byte_size)) return fail("write failed");
    data_written += tensor.byte_size;
    if (progress) progress(written, total);
  }
  if (std::fclose(out) != 0) {
    std::remove(temporary.c_str());
    return base::InvalidArgument(temporary + ": close failed: " + std::strerror(errno));
  }
  std::error_code error;
  std::filesystem::rename(temporary, path, error);
  if (error) return base::InvalidArgument(path + ": cannot rename into place: " + error.message());
  return base::Status::Ok();
}

}  // namespace supercluster::engine
