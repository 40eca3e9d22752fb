#include "attest/cbor.h"

#include <limits>
#include <set>
#include <utility>

namespace supercluster::attest {

CborValue::CborValue() = default;
CborValue::~CborValue() = default;
CborValue::CborValue(const CborValue&) = default;
CborValue::CborValue(CborValue&&) noexcept = default;
CborValue& CborValue::operator=(const CborValue&) = default;
CborValue& CborValue::operator=(CborValue&&) noexcept = default;

CborValue CborValue::ByteString(ByteView bytes) { return ByteString(Bytes(bytes.begin(), bytes.end())); }

CborValue CborValue::Unsigned(uint64_t value) {
  CborValue v;
  v.type_ = CborType::kUnsigned;
  v.number_ = value;
  return v;
}

CborValue CborValue::Int(int64_t value) {
  if (value >= 0) return Unsigned(static_cast<uint64_t>(value));
  // -1 - argument = value  =>  argument = -1 - value, computed without overflow.
  return NegativeFromArgument(static_cast<uint64_t>(-(value + 1)));
}

CborValue CborValue::NegativeFromArgument(uint64_t argument) {
  CborValue v;
  v.type_ = CborType::kNegative;
  v.number_ = argument;
  return v;
}

CborValue CborValue::ByteString(Bytes bytes) {
  CborValue v;
  v.type_ = CborType::kBytes;
  v.bytes_ = std::move(bytes);
  return v;
}

CborValue CborValue::Text(std::string text) {
  CborValue v;
  v.type_ = CborType::kText;
  v.text_ = std::move(text);
  return v;
}

CborValue CborValue::Array(std::vector<CborValue> items) {
  CborValue v;
  v.type_ = CborType::kArray;
  v.items_ = std::move(items);
  return v;
}

CborValue CborValue::Map(std::vector<CborEntry> entries) {
  CborValue v;
  v.type_ = CborType::kMap;
  v.entries_ = std::move(entries);
  return v;
}

CborValue CborValue::Tag(uint64_t tag, CborValue content) {
  CborValue v;
  v.type_ = CborType::kTag;
  v.number_ = tag;
  v.items_.push_back(std::move(content));
  return v;
}

CborValue CborValue::Bool(bool value) {
  CborValue v;
  v.type_ = value ? CborType::kTrue : CborType::kFalse;
  return v;
}

CborValue CborValue::Null() { return CborValue(); }

std::optional<int64_t> CborValue::AsInt64() const {
  constexpr uint64_t kMax = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  if (type_ == CborType::kUnsigned && number_ <= kMax) return static_cast<int64_t>(number_);
  if (type_ == CborType::kNegative && number_ <= kMax) return -1 - static_cast<int64_t>(number_);
  return std::nullopt;
}

const CborValue* CborValue::FindText(std::string_view key) const {
  for (const CborEntry& entry : entries_) {
    if (entry.key.is_text() && entry.key.text() == key) return &entry.value;
  }
  return nullptr;
}

const CborValue* CborValue::FindInt(int64_t key) const {
  for (const CborEntry& entry : entries_) {
    if (entry.key.AsInt64() == key) return &entry.value;
  }
  return nullptr;
}

std::string CborValue::TypeName() const {
  switch (type_) {
    case CborType::kUnsigned: return "unsigned integer";
    case CborType::kNegative: return "negative integer";
    case CborType::kBytes: return "byte string";
    case CborType::kText: return "text string";
    case CborType::kArray: return "array";
    case CborType::kMap: return "map";
    case CborType::kTag: return "tag";
    case CborType::kFalse: return "false";
    case CborType::kTrue: return "true";
    case CborType::kNull: return "null";
  }
  return "unknown";
}

bool operator==(const CborValue& a, const CborValue& b) {
  return a.type_ == b.type_ && a.number_ == b.number_ && a.bytes_ == b.bytes_ &&
         a.text_ == b.text_ && a.items_ == b.items_ && a.entries_ == b.entries_;
}

namespace {

// RFC 3629 UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF.
bool IsValidUtf8(ByteView text) {
  size_t i = 0;
  while (i < text.size()) {
    uint8_t lead = text[i];
    size_t length;
    uint32_t code_point;
    if (lead < 0x80) {
      ++i;
      continue;
    } else if ((lead & 0xe0) == 0xc0) {
      length = 2;
      code_point = lead & 0x1f;
    } else if ((lead & 0xf0) == 0xe0) {
      length = 3;
      code_point = lead & 0x0f;
    } else if ((lead & 0xf8) == 0xf0) {
      length = 4;
      code_point = lead & 0x07;
    } else {
      return false;
    }
    if (text.size() - i < length) return false;
    for (size_t k = 1; k < length; ++k) {
      uint8_t continuation = text[i + k];
      if ((continuation & 0xc0) != 0x80) return false;
      code_point = code_point << 6 | (continuation & 0x3f);
    }
    static constexpr uint32_t kSmallestForLength[] = {0, 0, 0x80, 0x800, 0x10000};
    if (code_point < kSmallestForLength[length]) return false;
    if (code_point > 0x10ffff) return false;
    if (code_point >= 0xd800 && code_point <= 0xdfff) return false;
    i += length;
  }
  return true;
}

class Decoder {
 public:
  Decoder(ByteView input, const CborLimits& limits) : input_(input), limits_(limits) {}

  base::Result<CborValue> DecodeAll() {
    SC_ASSIGN_OR_RETURN(CborValue value, DecodeItem(0));
    if (position_ != input_.size()) {
      return Error(position_, std::to_string(input_.size() - position_) +
                                  " trailing bytes after the top-level item");
    }
    return value;
  }

 private:
  static base::Status Error(size_t offset, const std::string& what) {
    return base::InvalidArgument("CBOR: at byte " + std::to_string(offset) + ": " + what);
  }

  size_t Remaining() const { return input_.size() - position_; }

  // Reads the argument that follows an initial byte with additional information `info`.
  base::Result<uint64_t> ReadArgument(uint8_t info, size_t item_start) {
    if (info < 24) return static_cast<uint64_t>(info);
    if (info >= 28 && info <= 30) {
      return Error(item_start, "reserved additional information value " + std::to_string(info));
    }
    if (info == 31) return Error(item_start, "indefinite length is not allowed");
    size_t width = size_t{1} << (info - 24);  // 24..27 -> 1, 2, 4, 8 bytes
    if (Remaining() < width) {
      return Error(item_start, "truncated: the head needs " + std::to_string(width) +
                                   " more bytes, " + std::to_string(Remaining()) + " left");
    }
    uint64_t value = 0;
    for (size_t k = 0; k < width; ++k) value = value << 8 | input_[position_ + k];
    position_ += width;
    return value;
  }

  base::Result<ByteView> ReadPayload(uint64_t length, size_t item_start, const char* what) {
    if (length > limits_.max_string_bytes) {
      return Error(item_start, std::string(what) + " of " + std::to_string(length) +
                                   " bytes exceeds the limit of " +
                                   std::to_string(limits_.max_string_bytes));
    }
    if (length > Remaining()) {
      return Error(item_start, std::string("truncated: ") + what + " declares " +
                                   std::to_string(length) + " bytes, " +
                                   std::to_string(Remaining()) + " left");
    }
    ByteView payload = input_.subspan(position_, static_cast<size_t>(length));
    position_ += static_cast<size_t>(length);
    return payload;
  }

  base::Status CheckCount(uint64_t count, uint64_t min_bytes_each, size_t item_start,
                          const char* what) {
    if (count > limits_.max_items) {
      return Error(item_start, std::string(what) + " of " + std::to_string(count) +
                                   " entries exceeds the limit of " +
                                   std::to_string(limits_.max_items));
    }
    // Every item takes at least one byte, so a count the input cannot hold is truncation;
    // checking it here keeps reserve() from allocating on a lie.
    if (count > Remaining() / min_bytes_each) {
      return Error(item_start, std::string("truncated: ") + what + " declares " +
                                   std::to_string(count) + " entries, only " +
                                   std::to_string(Remaining()) + " bytes left");
    }
    return base::Status::Ok();
  }

  base::Result<CborValue> DecodeItem(size_t depth) {
    size_t item_start = position_;
    if (Remaining() == 0) return Error(item_start, "truncated: expected a data item");
    uint8_t initial = input_[position_++];
    uint8_t major = initial >> 5;
    uint8_t info = initial & 0x1f;

    if (major == 7) {
      switch (info) {
        case 20: return CborValue::Bool(false);
        case 21: return CborValue::Bool(true);
        case 22: return CborValue::Null();
        case 25:
        case 26:
        case 27: return Error(item_start, "floating-point numbers are not supported");
        case 31: return Error(item_start, "unexpected break (indefinite lengths are not allowed)");
        default:
          if (info >= 28) {
            return Error(item_start, "reserved additional information value " + std::to_string(info));
          }
          return Error(item_start, "unsupported simple value (only false, true and null)");
      }
    }

    SC_ASSIGN_OR_RETURN(uint64_t argument, ReadArgument(info, item_start));
    switch (major) {
      case 0: return CborValue::Unsigned(argument);
      case 1: return CborValue::NegativeFromArgument(argument);
      case 2: {
        SC_ASSIGN_OR_RETURN(ByteView payload, ReadPayload(argument, item_start, "byte string"));
        return CborValue::ByteString(payload);
      }
      case 3: {
        SC_ASSIGN_OR_RETURN(ByteView payload, ReadPayload(argument, item_start, "text string"));
        if (!IsValidUtf8(payload)) return Error(item_start, "text string is not valid UTF-8");
        return CborValue::Text(std::string(payload.begin(), payload.end()));
      }
      default: break;
    }

    if (depth >= limits_.max_depth) {
      return Error(item_start, "nesting deeper than " + std::to_string(limits_.max_depth));
    }
    if (major == 4) {
      SC_RETURN_IF_ERROR(CheckCount(argument, 1, item_start, "array"));
      std::vector<CborValue> items;
      items.reserve(static_cast<size_t>(argument));
      for (uint64_t k = 0; k < argument; ++k) {
        SC_ASSIGN_OR_RETURN(CborValue item, DecodeItem(depth + 1));
        items.push_back(std::move(item));
      }
      return CborValue::Array(std::move(items));
    }
    if (major == 5) {
      SC_RETURN_IF_ERROR(CheckCount(argument, 2, item_start, "map"));
      std::vector<CborEntry> entries;
      entries.reserve(static_cast<size_t>(argument));
      // Keys compared by their shortest encoding: equal values encode equally.
      // (Held as std::string: GCC 12 warns falsely inside std::set<std::vector<uint8_t>>.)
      std::set<std::string> seen_keys;
      for (uint64_t k = 0; k < argument; ++k) {
        size_t key_start = position_;
        SC_ASSIGN_OR_RETURN(CborValue key, DecodeItem(depth + 1));
        Bytes encoded_key = EncodeCbor(key);
        if (!seen_keys.emplace(encoded_key.begin(), encoded_key.end()).second) {
          return Error(key_start, "duplicate map key");
        }
        SC_ASSIGN_OR_RETURN(CborValue value, DecodeItem(depth + 1));
        entries.push_back({std::move(key), std::move(value)});
      }
      return CborValue::Map(std::move(entries));
    }
    // major == 6
    SC_ASSIGN_OR_RETURN(CborValue content, DecodeItem(depth + 1));
    return CborValue::Tag(argument, std::move(content));
  }

  ByteView input_;
  const CborLimits& limits_;
  size_t position_ = 0;
};

void AppendHead(uint8_t major, uint64_t argument, Bytes& out) {
  uint8_t type_bits = static_cast<uint8_t>(major << 5);
  if (argument < 24) {
    out.push_back(type_bits | static_cast<uint8_t>(argument));
    return;
  }
  size_t width;
  uint8_t info;
  if (argument <= 0xff) {
    width = 1, info = 24;
  } else if (argument <= 0xffff) {
    width = 2, info = 25;
  } else if (argument <= 0xffffffffULL) {
    width = 4, info = 26;
  } else {
    width = 8, info = 27;
  }
  out.push_back(type_bits | info);
  for (size_t k = width; k-- > 0;) out.push_back(static_cast<uint8_t>(argument >> (8 * k)));
}

void AppendItem(const CborValue& value, Bytes& out) {
  switch (value.type()) {
    case CborType::kUnsigned: AppendHead(0, value.number(), out); return;
    case CborType::kNegative: AppendHead(1, value.number(), out); return;
    case CborType::kBytes:
      AppendHead(2, value.bytes().size(), out);
      out.insert(out.end(), value.bytes().begin(), value.bytes().end());
      return;
    case CborType::kText:
      AppendHead(3, value.text().size(), out);
      out.insert(out.end(), value.text().begin(), value.text().end());
      return;
    case CborType::kArray:
      AppendHead(4, value.items().size(), out);
      for (const CborValue& item : value.items()) AppendItem(item, out);
      return;
    case CborType::kMap:
      AppendHead(5, value.entries().size(), out);
      for (const CborEntry& entry : value.entries()) {
        AppendItem(entry.key, out);
        AppendItem(entry.value, out);
      }
      return;
    case CborType::kTag:
      AppendHead(6, value.number(), out);
      AppendItem(value.items().at(0), out);
      return;
    case CborType::kFalse: out.push_back(0xf4); return;
    case CborType::kTrue: out.push_back(0xf5); return;
    case CborType::kNull: out.push_back(0xf6); return;
  }
}

}  // namespace

base::Result<CborValue> DecodeCbor(ByteView input, const CborLimits& limits) {
  return Decoder(input, limits).DecodeAll();
}

Bytes EncodeCbor(const CborValue& value) {
  Bytes out;
  AppendItem(value, out);
  return out;
}

}  // namespace supercluster::attest
