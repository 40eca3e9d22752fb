// Strict CBOR (RFC 8949): a small value tree, a decoder that refuses anything ambiguous or
// hostile, and an encoder that writes the shortest form of every head.
//
// Used by COSE_Sign1 (cose_sign1.h), the Nitro attestation document (nitro_document.h) and
// the NSM request/response messages (nsm_attestor.h); every byte it reads may come from an
// attacker. The decoder rejects: indefinite lengths, reserved additional-information
// values (28..30), truncation, trailing bytes after the top-level item, duplicate map keys,
// text strings that are not valid UTF-8, floats and simple values other than
// false/true/null, nesting deeper than CborLimits::max_depth, and any declared length that
// exceeds the bytes remaining or the limits (checked before anything is allocated). Errors
// are kInvalidArgument with a message naming the problem and its byte offset.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "attest/bytes.h"
#include "base/status.h"

namespace supercluster::attest {

enum class CborType {
  kUnsigned,  // major type 0: number()
  kNegative,  // major type 1: the value is -1 - number()
  kBytes,     // major type 2
  kText,      // major type 3 (valid UTF-8)
  kArray,     // major type 4
  kMap,       // major type 5, entries in encoded order
  kTag,       // major type 6: number() is the tag, items()[0] the content
  kFalse,
  kTrue,
  kNull,
};

struct CborEntry;

class CborValue {
 public:
  // null. The special members are defined in cbor.cc, where CborEntry is complete.
  CborValue();
  ~CborValue();
  CborValue(const CborValue&);
  CborValue(CborValue&&) noexcept;
  CborValue& operator=(const CborValue&);
  CborValue& operator=(CborValue&&) noexcept;

  static CborValue Unsigned(uint64_t value);
  // Any int64 (negative ones become major type 1).
  static CborValue Int(int64_t value);
  // The negative integer -1 - argument (covers down to -2^64).
  static CborValue NegativeFromArgument(uint64_t argument);
  static CborValue ByteString(Bytes bytes);
  static CborValue ByteString(ByteView bytes);
  static CborValue Text(std::string text);
  static CborValue Array(std::vector<CborValue> items);
  static CborValue Map(std::vector<CborEntry> entries);
  static CborValue Tag(uint64_t tag, CborValue content);
  static CborValue Bool(bool value);
  static CborValue Null();

  CborType type() const { return type_; }
  bool is_unsigned() const { return type_ == CborType::kUnsigned; }
  bool is_integer() const { return type_ == CborType::kUnsigned || type_ == CborType::kNegative; }
  bool is_bytes() const { return type_ == CborType::kBytes; }
  bool is_text() const { return type_ == CborType::kText; }
  bool is_array() const { return type_ == CborType::kArray; }
  bool is_map() const { return type_ == CborType::kMap; }
  bool is_tag() const { return type_ == CborType::kTag; }
  bool is_null() const { return type_ == CborType::kNull; }

  // Unsigned value, negative argument, or tag number.
  uint64_t number() const { return number_; }
  // The integer as int64, if it is an integer that fits.
  std::optional<int64_t> AsInt64() const;
  const Bytes& bytes() const { return bytes_; }
  const std::string& text() const { return text_; }
  // Array items; for a tag, the one content item.
  const std::vector<CborValue>& items() const { return items_; }
  const std::vector<CborEntry>& entries() const { return entries_; }

  // For a map: the value under the text key `key`, or nullptr.
  const CborValue* FindText(std::string_view key) const;
  // For a map: the value under the integer key `key`, or nullptr.
  const CborValue* FindInt(int64_t key) const;

  // A short description for error messages: "unsigned integer", "map", ...
  std::string TypeName() const;

  friend bool operator==(const CborValue& a, const CborValue& b);

 private:
  CborType type_ = CborType::kNull;
  uint64_t number_ = 0;
  Bytes bytes_;
  std::string text_;
  std::vector<CborValue> items_;
  std::vector<CborEntry> entries_;
};

struct CborEntry {
  CborValue key;
  CborValue value;
  friend bool operator==(const CborEntry& a, const CborEntry& b) {
    return a.key == b.key && a.value == b.value;
  }
};

struct CborLimits {
  size_t max_depth = 16;              // arrays, maps and tags nested inside each other
  size_t max_string_bytes = 1 << 20;  // one byte or text string
  size_t max_items = 1 << 16;         // entries of one array or map
};

// Decodes exactly one CBOR item that spans all of `input`.
base::Result<CborValue> DecodeCbor(ByteView input, const CborLimits& limits = {});

// Encodes `value` with the shortest head for every integer, length and tag, definite
// lengths, and map entries in the order given (the caller chooses a deterministic order).
Bytes EncodeCbor(const CborValue& value);

}  // namespace supercluster::attest
