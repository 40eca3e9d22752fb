#include "engine/gguf_file.h"

#include <algorithm>
#include <bit>
#include <cstring>

namespace supercluster::engine {
namespace {

constexpr uint32_t kMaxDimensions = 4;     // GGML_MAX_DIMS
constexpr int kMaxArrayNesting = 8;        // deeper nesting is hostile, not a model
// Arrays inside arrays, all metadata keys together. Each takes sizeof(GgufValue) (112 bytes)
// of memory for at least 12 bytes of file, so this keeps what nested arrays can cost to
// about 120 MB however large the file. llama.cpp's reader refuses nested arrays altogether
// and no model we know has any; raise this if a real file needs more.
constexpr uint64_t kMaxNestedArrays = uint64_t{1} << 20;
constexpr uint64_t kDefaultAlignment = 32;

std::string Quoted(std::string_view text) { return "'" + std::string(text) + "'"; }

}  // namespace

const char* GgufValueTypeName(GgufValueType type) {
  switch (type) {
    case GgufValueType::kUint8: return "uint8";
    case GgufValueType::kInt8: return "int8";
    case GgufValueType::kUint16: return "uint16";
    case GgufValueType::kInt16: return "int16";
    case GgufValueType::kUint32: return "uint32";
    case GgufValueType::kInt32: return "int32";
    case GgufValueType::kFloat32: return "float32";
    case GgufValueType::kBool: return "bool";
    case GgufValueType::kString: return "string";
    case GgufValueType::kArray: return "array";
    case GgufValueType::kUint64: return "uint64";
    case GgufValueType::kInt64: return "int64";
    case GgufValueType::kFloat64: return "float64";
  }
  return "unknown";
}

uint32_t GgufValueTypeSize(GgufValueType type) {
  switch (type) {
    case GgufValueType::kUint8: case GgufValueType::kInt8: case GgufValueType::kBool: return 1;
    case GgufValueType::kUint16: case GgufValueType::kInt16: return 2;
    case GgufValueType::kUint32: case GgufValueType::kInt32: case GgufValueType::kFloat32:
      return 4;
    case GgufValueType::kUint64: case GgufValueType::kInt64: case GgufValueType::kFloat64:
      return 8;
    default: return 0;
  }
}

bool GgufValue::IsInteger() const {
  switch (type_) {
    case GgufValueType::kUint8: case GgufValueType::kInt8: case GgufValueType::kUint16:
    case GgufValueType::kInt16: case GgufValueType::kUint32: case GgufValueType::kInt32:
    case GgufValueType::kUint64: case GgufValueType::kInt64:
      return true;
    default:
      return false;
  }
}

bool GgufValue::integer_is_negative() const {
  bool is_signed = type_ == GgufValueType::kInt8 || type_ == GgufValueType::kInt16 ||
                   type_ == GgufValueType::kInt32 || type_ == GgufValueType::kInt64;
  return is_signed && static_cast<int64_t>(bits_) < 0;
}

double GgufValue::as_double() const {
  if (type_ == GgufValueType::kFloat32) return std::bit_cast<float>(static_cast<uint32_t>(bits_));
  return std::bit_cast<double>(bits_);
}

// Decodes one scalar of `type` from little-endian bytes (the caller checked the length).
static GgufValue DecodeScalar(GgufValueType type, const uint8_t* p);

GgufValue GgufValue::at(uint64_t index) const {
  if (element_type_ == GgufValueType::kString) {
    GgufValue value;
    value.type_ = GgufValueType::kString;
    value.string_ = strings_[index];
    return value;
  }
  if (element_type_ == GgufValueType::kArray) return arrays_[index];
  return DecodeScalar(element_type_, raw_.data() + index * GgufValueTypeSize(element_type_));
}

// Parses the bytes of one file into a GgufFile, keeping a cursor and the file's name for
// error messages. Every read checks the remaining length first.
class GgufParser {
 public:
  GgufParser(GgufFile& file) : file_(file), bytes_(file.bytes_) {}

  base::Status Run() {
    SC_RETURN_IF_ERROR(ParseHeader());
    for (uint64_t i = 0; i < kv_count_; ++i) SC_RETURN_IF_ERROR(ParseKeyValue(i));
    SC_RETURN_IF_ERROR(ReadAlignment());
    for (uint64_t i = 0; i < tensor_count_; ++i) SC_RETURN_IF_ERROR(ParseTensorInfo(i));
    return PlaceTensorData();
  }

  static GgufValue Scalar(GgufValueType type, const uint8_t* p) {
    GgufValue value;
    value.type_ = type;
    uint64_t bits = 0;
    std::memcpy(&bits, p, GgufValueTypeSize(type));  // little-endian host: see the static_assert
    switch (type) {
      case GgufValueType::kInt8: bits = static_cast<uint64_t>(int64_t{static_cast<int8_t>(bits)}); break;
      case GgufValueType::kInt16: bits = static_cast<uint64_t>(int64_t{static_cast<int16_t>(bits)}); break;
      case GgufValueType::kInt32: bits = static_cast<uint64_t>(int64_t{static_cast<int32_t>(bits)}); break;
      case GgufValueType::kBool: bits = bits != 0; break;
      default: break;
    }
    value.bits_ = bits;
    return value;
  }

 private:
  base::Status Error(const std::string& what) const {
    return base::InvalidArgument(file_.name_ + ": " + what);
  }
  base::Status Truncated(const std::string& field, uint64_t wanted) const {
    return base::DataLoss(file_.name_ + ": " + field + ": needs " + std::to_string(wanted) +
                          " bytes at offset " + std::to_string(pos_) + " but the file is " +
                          std::to_string(bytes_.size()) + " bytes (truncated?)");
  }
  uint64_t Remaining() const { return bytes_.size() - pos_; }

  base::Status Need(const std::string& field, uint64_t count) const {
    if (count > Remaining()) return Truncated(field, count);
    return base::Status::Ok();
  }
  template <typename T>
  base::Result<T> Read(const std::string& field) {
    SC_RETURN_IF_ERROR(Need(field, sizeof(T)));
    T value;
    std::memcpy(&value, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return value;
  }
  base::Result<std::string_view> ReadString(const std::string& field) {
    SC_ASSIGN_OR_RETURN(uint64_t length, Read<uint64_t>(field + " length"));
    if (length > Remaining()) {
      return base::DataLoss(file_.name_ + ": " + field + ": string length " +
                            std::to_string(length) + " at offset " + std::to_string(pos_ - 8) +
                            " goes past the end of the file (" + std::to_string(bytes_.size()) +
                            " bytes)");
    }
    std::string_view text(reinterpret_cast<const char*>(bytes_.data() + pos_), length);
    pos_ += length;
    return text;
  }

  base::Status ParseHeader() {
    SC_RETURN_IF_ERROR(Need("magic", 4));
    if (std::memcmp(bytes_.data(), "GGUF", 4) != 0) {
      std::string magic;
      for (int i = 0; i < 4; ++i) {
        char c = static_cast<char>(bytes_[i]);
        magic += (c >= 0x20 && c < 0x7f) ? c : '?';
      }
      return Error("not a GGUF file: magic is '" + magic + "', want 'GGUF'");
    }
    pos_ = 4;
    SC_ASSIGN_OR_RETURN(uint32_t version, Read<uint32_t>("version"));
    uint32_t swapped = __builtin_bswap32(version);
    if (version != 1 && version != 2 && version != 3 && swapped >= 1 && swapped <= 3) {
      return Error("big-endian GGUF (version field reads " + std::to_string(swapped) +
                   " byte-swapped) is not supported; use a little-endian file");
    }
    if (version == 1) {
      return Error("GGUF version 1 is not supported (it predates 64-bit counts); "
                   "convert the file to version 3");
    }
    if (version != 2 && version != 3) {
      return Error("GGUF version " + std::to_string(version) + " is not supported (2 and 3 are)");
    }
    file_.version_ = version;
    SC_ASSIGN_OR_RETURN(tensor_count_, Read<uint64_t>("tensor count"));
    SC_ASSIGN_OR_RETURN(kv_count_, Read<uint64_t>("metadata key count"));
    // Smallest encodings: a tensor info is 8 (name length) + 4 + 8 (one dim) + 4 + 8 bytes,
    // a key/value 8 (key length) + 4 (type) + 1 (a uint8).
    if (kv_count_ > Remaining() / 13) {
      return Error("metadata key count " + std::to_string(kv_count_) +
                   " is more than the file's " + std::to_string(bytes_.size()) +
                   " bytes could hold");
    }
    if (tensor_count_ > Remaining() / 32) {
      return Error("tensor count " + std::to_string(tensor_count_) +
                   " is more than the file's " + std::to_string(bytes_.size()) +
                   " bytes could hold");
    }
    return base::Status::Ok();
  }

  base::Status ParseValue(const std::string& field, GgufValueType type, int depth,
                          GgufValue& out) {
    out.type_ = type;
    if (uint32_t size = GgufValueTypeSize(type); size != 0) {
      SC_RETURN_IF_ERROR(Need(field, size));
      out = Scalar(type, bytes_.data() + pos_);
      pos_ += size;
      return base::Status::Ok();
    }
    if (type == GgufValueType::kString) {
      SC_ASSIGN_OR_RETURN(out.string_, ReadString(field));
      return base::Status::Ok();
    }
    if (type != GgufValueType::kArray) {
      return Error(field + ": unknown value type " + std::to_string(static_cast<uint32_t>(type)));
    }
    if (depth >= kMaxArrayNesting) {
      return Error(field + ": arrays nested deeper than " + std::to_string(kMaxArrayNesting));
    }
    SC_ASSIGN_OR_RETURN(uint32_t element_type, Read<uint32_t>(field + ": array element type"));
    if (element_type > static_cast<uint32_t>(GgufValueType::kFloat64)) {
      return Error(field + ": unknown array element type " + std::to_string(element_type));
    }
    out.element_type_ = static_cast<GgufValueType>(element_type);
    SC_ASSIGN_OR_RETURN(out.count_, Read<uint64_t>(field + ": array length"));
    uint32_t element_size = GgufValueTypeSize(out.element_type_);
    // Strings take at least 8 bytes, nested arrays 12: bounds the count before reserving.
    uint64_t min_size = element_size != 0 ? element_size
                        : out.element_type_ == GgufValueType::kString ? 8 : 12;
    if (out.count_ > Remaining() / min_size) {
      return base::DataLoss(file_.name_ + ": " + field + ": array length " +
                            std::to_string(out.count_) + " of " +
                            GgufValueTypeName(out.element_type_) +
                            " goes past the end of the file (" + std::to_string(bytes_.size()) +
                            " bytes)");
    }
    if (element_size != 0) {
      out.raw_ = bytes_.subspan(pos_, out.count_ * element_size);
      pos_ += out.count_ * element_size;
      return base::Status::Ok();
    }
    if (out.element_type_ == GgufValueType::kString) {
      out.strings_.reserve(out.count_);
      for (uint64_t i = 0; i < out.count_; ++i) {
        SC_ASSIGN_OR_RETURN(std::string_view text,
                            ReadString(field + "[" + std::to_string(i) + "]"));
        out.strings_.push_back(text);
      }
      return base::Status::Ok();
    }
    return ParseNestedArrays(field, depth, out);
  }

  // The elements of an array of arrays (out.count_ of them, already checked against the
  // bytes left). They are appended as they are parsed, never allocated for the count the file
  // claims: an element takes 112 bytes of memory for 12 of file, and up to 8 levels each
  // claiming the rest of the file made a 12 MiB file take 900 MB before the nesting check
  // refused it. The count is checked against kMaxNestedArrays before any is parsed.
  base::Status ParseNestedArrays(const std::string& field, int depth, GgufValue& out) {
    if (out.count_ > kMaxNestedArrays - nested_arrays_) {
      return Error(field + ": array length " + std::to_string(out.count_) + " of array: more " +
                   "than the " + std::to_string(kMaxNestedArrays) + " nested arrays this reader " +
                   "takes in one file (" + std::to_string(nested_arrays_) + " before it)");
    }
    nested_arrays_ += out.count_;
    for (uint64_t i = 0; i < out.count_; ++i) {
      GgufValue element;
      SC_RETURN_IF_ERROR(ParseValue(field + "[" + std::to_string(i) + "]", GgufValueType::kArray,
                                    depth + 1, element));
      out.arrays_.push_back(std::move(element));
    }
    return base::Status::Ok();
  }

  base::Status ParseKeyValue(uint64_t index) {
    std::string where = "metadata key #" + std::to_string(index);
    SC_ASSIGN_OR_RETURN(std::string_view key, ReadString(where));
    std::string field = "metadata key " + Quoted(key);
    SC_ASSIGN_OR_RETURN(uint32_t type, Read<uint32_t>(field + ": value type"));
    if (type > static_cast<uint32_t>(GgufValueType::kFloat64)) {
      return Error(field + ": unknown value type " + std::to_string(type));
    }
    GgufValue value;
    SC_RETURN_IF_ERROR(ParseValue(field, static_cast<GgufValueType>(type), 0, value));
    if (!file_.key_index_.emplace(key, file_.kv_.size()).second) {
      return Error(field + ": appears twice");
    }
    file_.kv_.emplace_back(key, std::move(value));
    return base::Status::Ok();
  }

  base::Status ReadAlignment() {
    const GgufValue* value = file_.Find("general.alignment");
    if (value == nullptr) return base::Status::Ok();
    if (!value->IsInteger() || value->integer_is_negative()) {
      return Error("metadata key 'general.alignment': must be an unsigned integer, not " +
                   std::string(GgufValueTypeName(value->type())));
    }
    uint64_t alignment = value->as_uint64();
    if (alignment == 0 || !std::has_single_bit(alignment) || alignment > (1u << 30)) {
      return Error("metadata key 'general.alignment': " + std::to_string(alignment) +
                   " is not a power of two between 1 and 2^30");
    }
    file_.alignment_ = alignment;
    return base::Status::Ok();
  }

  base::Status ParseTensorInfo(uint64_t index) {
    SC_ASSIGN_OR_RETURN(std::string_view name,
                        ReadString("tensor info #" + std::to_string(index) + " name"));
    std::string field = "tensor " + Quoted(name);
    GgufTensorInfo info;
    info.name = name;
    SC_ASSIGN_OR_RETURN(uint32_t dimensions, Read<uint32_t>(field + ": dimension count"));
    if (dimensions == 0 || dimensions > kMaxDimensions) {
      return Error(field + ": dimension count " + std::to_string(dimensions) + " is not in 1.." +
                   std::to_string(kMaxDimensions));
    }
    for (uint32_t d = 0; d < dimensions; ++d) {
      SC_ASSIGN_OR_RETURN(uint64_t extent,
                          Read<uint64_t>(field + ": dimension " + std::to_string(d)));
      if (extent == 0 || extent > (uint64_t{1} << 62)) {
        return Error(field + ": dimension " + std::to_string(d) + " is " +
                     std::to_string(extent) + " (must be 1..2^62)");
      }
      info.shape.push_back(extent);
    }
    SC_ASSIGN_OR_RETURN(uint32_t type_id, Read<uint32_t>(field + ": type"));
    const TensorTypeInfo* type = FindTensorType(type_id);
    if (type == nullptr) {
      return Error(field + ": unknown or unsupported tensor type id " + std::to_string(type_id));
    }
    info.type = type->type;
    SC_ASSIGN_OR_RETURN(info.offset, Read<uint64_t>(field + ": data offset"));
    base::Result<uint64_t> elements = ElementCount(info.shape);
    if (!elements.ok()) return Error(field + ": shape: " + elements.status().message());
    info.element_count = *elements;
    base::Result<uint64_t> byte_size = TensorByteSize(info.type, info.shape);
    if (!byte_size.ok()) {
      return Error(field + ": " + std::string(type->name) + " shape: " +
                   byte_size.status().message());
    }
    info.byte_size = *byte_size;
    if (info.offset % file_.alignment_ != 0) {
      return Error(field + ": data offset " + std::to_string(info.offset) +
                   " is not a multiple of the alignment " + std::to_string(file_.alignment_));
    }
    if (!file_.tensor_index_.emplace(name, file_.tensors_.size()).second) {
      return Error(field + ": appears twice");
    }
    file_.tensors_.push_back(std::move(info));
    return base::Status::Ok();
  }

  base::Status PlaceTensorData() {
    uint64_t alignment = file_.alignment_;
    uint64_t data_offset = (pos_ + alignment - 1) / alignment * alignment;  // pos_ < 2^63
    file_.data_offset_ = data_offset;
    std::vector<const GgufTensorInfo*> by_offset;
    for (GgufTensorInfo& info : file_.tensors_) {
      uint64_t begin = 0;
      uint64_t end = 0;
      bool overflow = __builtin_add_overflow(data_offset, info.offset, &begin) ||
                      __builtin_add_overflow(begin, info.byte_size, &end);
      if (overflow || end > bytes_.size()) {
        std::string range = overflow ? "at data offset " + std::to_string(info.offset)
                                     : "[" + std::to_string(begin) + ", " + std::to_string(end) + ")";
        return base::DataLoss(file_.name_ + ": tensor " + Quoted(info.name) + ": data " + range +
                              " extends past the end of the file (" +
                              std::to_string(bytes_.size()) + " bytes)");
      }
      info.data = bytes_.data() + begin;
      by_offset.push_back(&info);
    }
    std::sort(by_offset.begin(), by_offset.end(),
              [](const GgufTensorInfo* a, const GgufTensorInfo* b) { return a->offset < b->offset; });
    for (size_t i = 1; i < by_offset.size(); ++i) {
      const GgufTensorInfo& before = *by_offset[i - 1];
      const GgufTensorInfo& after = *by_offset[i];
      if (after.offset < before.offset + before.byte_size) {
        return Error("tensor " + Quoted(after.name) + ": data at offset " +
                     std::to_string(after.offset) + " overlaps tensor " + Quoted(before.name) +
                     " (data offsets [" + std::to_string(before.offset) + ", " +
                     std::to_string(before.offset + before.byte_size) + "))");
      }
    }
    return base::Status::Ok();
  }

  GgufFile& file_;
  std::span<const uint8_t> bytes_;
  uint64_t pos_ = 0;
  uint64_t tensor_count_ = 0;
  uint64_t kv_count_ = 0;
  uint64_t nested_arrays_ = 0;  // elements of arrays of arrays so far, against kMaxNestedArrays
};

static GgufValue DecodeScalar(GgufValueType type, const uint8_t* p) {
  return GgufParser::Scalar(type, p);
}

static_assert(std::endian::native == std::endian::little,
              "the GGUF reader decodes little-endian fields with memcpy");

base::Result<std::unique_ptr<GgufFile>> GgufFile::Open(const std::string& path) {
  SC_ASSIGN_OR_RETURN(std::unique_ptr<MappedFile> mapping, MappedFile::Open(path));
  std::span<const uint8_t> bytes = mapping->bytes();
  SC_ASSIGN_OR_RETURN(std::unique_ptr<GgufFile> file, Parse(path, bytes));
  file->mapping_ = std::move(mapping);
  return file;
}

base::Result<std::unique_ptr<GgufFile>> GgufFile::Parse(std::string name,
                                                        std::span<const uint8_t> bytes) {
  std::unique_ptr<GgufFile> file(new GgufFile());
  file->name_ = std::move(name);
  file->bytes_ = bytes;
  file->alignment_ = kDefaultAlignment;
  GgufParser parser(*file);
  SC_RETURN_IF_ERROR(parser.Run());
  return file;
}

const GgufValue* GgufFile::Find(std::string_view key) const {
  auto found = key_index_.find(key);
  return found == key_index_.end() ? nullptr : &kv_[found->second].second;
}

const GgufTensorInfo* GgufFile::FindTensor(std::string_view name) const {
  auto found = tensor_index_.find(name);
  return found == tensor_index_.end() ? nullptr : &tensors_[found->second];
}

base::Status GgufFile::KeyError(std::string_view key, const GgufValue& value,
                                const char* wanted) const {
  std::string stored = GgufValueTypeName(value.type());
  if (value.type() == GgufValueType::kArray) {
    stored += std::string(" of ") + GgufValueTypeName(value.element_type());
  }
  return base::InvalidArgument(name_ + ": metadata key '" + std::string(key) + "' is " + stored +
                               ", want " + wanted);
}

#define SC_GGUF_FIND_OR_RETURN(value, key)                                                   \
  const GgufValue* value = Find(key);                                                        \
  if (value == nullptr) {                                                                    \
    return base::NotFound(name_ + ": metadata key '" + std::string(key) + "' is missing");   \
  }

base::Result<std::string> GgufFile::GetString(std::string_view key) const {
  SC_GGUF_FIND_OR_RETURN(value, key);
  if (value->type() != GgufValueType::kString) return KeyError(key, *value, "string");
  return std::string(value->as_string());
}

base::Result<uint64_t> GgufFile::GetUint64(std::string_view key) const {
  SC_GGUF_FIND_OR_RETURN(value, key);
  if (!value->IsInteger() || value->integer_is_negative()) {
    return KeyError(key, *value, "a non-negative integer");
  }
  return value->as_uint64();
}

base::Result<uint32_t> GgufFile::GetUint32(std::string_view key) const {
  SC_ASSIGN_OR_RETURN(uint64_t wide, GetUint64(key));
  if (wide > UINT32_MAX) {
    return base::InvalidArgument(name_ + ": metadata key '" + std::string(key) + "': " +
                                 std::to_string(wide) + " does not fit in 32 bits");
  }
  return static_cast<uint32_t>(wide);
}

base::Result<int32_t> GgufFile::GetInt32(std::string_view key) const {
  SC_GGUF_FIND_OR_RETURN(value, key);
  if (!value->IsInteger()) return KeyError(key, *value, "an integer");
  bool fits = value->integer_is_negative() ? value->as_int64() >= INT32_MIN
                                           : value->as_uint64() <= INT32_MAX;
  if (!fits) {
    return base::InvalidArgument(name_ + ": metadata key '" + std::string(key) +
                                 "' does not fit in int32");
  }
  return static_cast<int32_t>(value->as_int64());
}

base::Result<float> GgufFile::GetFloat32(std::string_view key) const {
  SC_GGUF_FIND_OR_RETURN(value, key);
  if (!value->IsFloat()) return KeyError(key, *value, "float32");
  return static_cast<float>(value->as_double());
}

base::Result<bool> GgufFile::GetBool(std::string_view key) const {
  SC_GGUF_FIND_OR_RETURN(value, key);
  if (value->type() != GgufValueType::kBool) return KeyError(key, *value, "bool");
  return value->as_bool();
}

base::Result<const GgufValue*> GgufFile::GetArray(std::string_view key) const {
  SC_GGUF_FIND_OR_RETURN(value, key);
  if (value->type() != GgufValueType::kArray) return KeyError(key, *value, "array");
  return value;
}

base::Result<std::vector<std::string_view>> GgufFile::GetStringArray(std::string_view key) const {
  SC_ASSIGN_OR_RETURN(const GgufValue* array, GetArray(key));
  if (array->element_type() != GgufValueType::kString) {
    return KeyError(key, *array, "array of string");
  }
  std::vector<std::string_view> out;
  out.reserve(array->size());
  for (uint64_t i = 0; i < array->size(); ++i) out.push_back(array->at(i).as_string());
  return out;
}

base::Result<std::vector<float>> GgufFile::GetFloat32Array(std::string_view key) const {
  SC_ASSIGN_OR_RETURN(const GgufValue* array, GetArray(key));
  if (array->element_type() != GgufValueType::kFloat32 &&
      array->element_type() != GgufValueType::kFloat64) {
    return KeyError(key, *array, "array of float32");
  }
  std::vector<float> out;
  out.reserve(array->size());
  for (uint64_t i = 0; i < array->size(); ++i) {
    out.push_back(static_cast<float>(array->at(i).as_double()));
  }
  return out;
}

base::Result<std::vector<int32_t>> GgufFile::GetInt32Array(std::string_view key) const {
  SC_ASSIGN_OR_RETURN(const GgufValue* array, GetArray(key));
  GgufValueType type = array->element_type();
  bool fits = type == GgufValueType::kInt32 || type == GgufValueType::kInt16 ||
              type == GgufValueType::kInt8 || type == GgufValueType::kUint16 ||
              type == GgufValueType::kUint8;
  if (!fits) return KeyError(key, *array, "array of int32");
  std::vector<int32_t> out;
  out.reserve(array->size());
  for (uint64_t i = 0; i < array->size(); ++i) {
    out.push_back(static_cast<int32_t>(array->at(i).as_int64()));
  }
  return out;
}

}  // namespace supercluster::engine
