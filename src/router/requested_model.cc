#include "router/requested_model.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <system_error>
#include <utility>

#include "base/utf8.h"
#include "net/byte_scan.h"

namespace supercluster::router {
namespace {

// A strict JSON reader (RFC 8259, with nlohmann's two liberties: a UTF-8 byte order mark
// before the text, and a NUL byte where a token would start ends the input) that checks
// the whole text and keeps only the value of the top-level "model" key.
//
// It is iterative, with an explicit stack of open containers, so that deep nesting costs
// memory (one byte per level) and never the call stack.
class ModelScanner {
 public:
  explicit ModelScanner(std::string_view text) : text_(text) {}

  RequestedModel Scan() && {
    RequestedModel result;  // kNotAnObject until proven otherwise
    if (text_.starts_with("\xEF\xBB\xBF")) {
      position_ = 3;
    } else if (!text_.empty() && static_cast<unsigned char>(text_[0]) == 0xEF) {
      return result;  // the start of a byte order mark, but not a whole one
    }
    if (!Document() || !AtEnd()) return result;
    if (!top_is_object_) return result;
    if (!model_is_string_ || model_.empty()) {
      result.problem = RequestedModel::Problem::kNoModel;
      return result;
    }
    result.problem = RequestedModel::Problem::kNone;
    result.model = std::move(model_);
    return result;
  }

 private:
  // The next byte, or NUL at the end (nlohmann treats both as the end of the input where a
  // token would start; inside a token a NUL is simply invalid).
  char Peek() const { return position_ < text_.size() ? text_[position_] : '\0'; }

  void SkipSpace() {
    while (position_ < text_.size()) {
      char c = text_[position_];
      if (c != ' ' && c != '\t' && c != '\n' && c != '\r') return;
      ++position_;
    }
  }

  // After the document: only whitespace, then the end (or a NUL, which ends it too).
  bool AtEnd() {
    SkipSpace();
    return Peek() == '\0';
  }

  // One JSON value with everything nested in it.
  bool Document() {
    while (true) {
      // A value starts here.
      SkipSpace();
      const bool is_model_value = next_is_model_;
      next_is_model_ = false;
      char c = Peek();
      if (c == '{' || c == '[') {
        if (stack_.empty() && c == '{') top_is_object_ = true;
        if (is_model_value) SetModelNotString();
        stack_.push_back(c);
        ++position_;
        SkipSpace();
        if (Peek() == (c == '{' ? '}' : ']')) {
          ++position_;
          stack_.pop_back();
        } else {
          if (c == '{' && !Key()) return false;
          continue;  // the first member's value, or the first element
        }
      } else if (c == '"') {
        std::string* into = nullptr;
        if (is_model_value) {
          model_.clear();
          into = &model_;
        }
        if (!String(into)) return false;
        if (is_model_value) model_is_string_ = true;
      } else {
        if (!Literal() && !Number()) return false;
        if (is_model_value) SetModelNotString();
      }
      // A value ended: close what it ends, or go on to the next member or element.
      while (true) {
        if (stack_.empty()) return true;
        SkipSpace();
        char next = Peek();
        char open = stack_.back();
        if (next == ',') {
          ++position_;
          if (open == '{') {
            SkipSpace();
            if (!Key()) return false;
          }
          break;
        }
        if (next != (open == '{' ? '}' : ']')) return false;
        ++position_;
        stack_.pop_back();
      }
    }
  }

  // A member's key and its colon; notes whether it is the top level's "model".
  bool Key() {
    if (Peek() != '"') return false;
    const size_t opening_quote = position_;
    if (!String(nullptr)) return false;
    if (stack_.size() == 1) {
      // Most keys have no escape and are compared where they lie; only a key with one is
      // decoded (read a second time), since "mod\u0065l" is "model" too.
      const std::string_view raw = text_.substr(opening_quote + 1, position_ - opening_quote - 2);
      if (raw.find('\\') == std::string_view::npos) {
        next_is_model_ = raw == "model";
      } else {
        key_.clear();
        position_ = opening_quote;
        String(&key_);
        next_is_model_ = key_ == "model";
      }
    }
    SkipSpace();
    if (Peek() != ':') return false;
    ++position_;
    return true;
  }

  void SetModelNotString() {
    model_is_string_ = false;
    model_.clear();
  }

  bool Literal() {
    for (std::string_view literal : {"true", "false", "null"}) {
      if (text_.substr(position_).starts_with(literal)) {
        position_ += literal.size();
        return true;
      }
    }
    return false;
  }

  // -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?, and finite as a double when it does
  // not fit a 64-bit integer (nlohmann refuses a number that overflows to infinity).
  bool Number() {
    const size_t start = position_;
    auto digits = [this] {
      size_t first = position_;
      while (position_ < text_.size() && text_[position_] >= '0' && text_[position_] <= '9') {
        ++position_;
      }
      return position_ - first;
    };
    bool negative = Peek() == '-';
    if (negative) ++position_;
    if (Peek() == '0') {
      ++position_;
    } else if (digits() == 0) {
      return false;
    }
    bool integer = true;
    if (Peek() == '.') {
      ++position_;
      if (digits() == 0) return false;
      integer = false;
    }
    if (Peek() == 'e' || Peek() == 'E') {
      ++position_;
      if (Peek() == '+' || Peek() == '-') ++position_;
      if (digits() == 0) return false;
      integer = false;
    }
    const char* first = text_.data() + start;
    const char* last = text_.data() + position_;
    if (integer) {
      std::errc fits = negative ? std::from_chars(first, last, signed_scratch_).ec
                                : std::from_chars(first, last, unsigned_scratch_).ec;
      if (fits == std::errc()) return true;
    }
    double value = 0;
    auto [end, error] = std::from_chars(first, last, value);
    if (error == std::errc()) return end == last && std::isfinite(value);
    // Out of range: too large (infinity, refused) or too small (rounds to zero, accepted).
    return error == std::errc::result_out_of_range && !TooLarge(first, last);
  }

  // For a number out of a double's range: whether it is beyond the largest double rather
  // than below the smallest. The two are hundreds of decimal orders apart, so the position
  // of the first significant digit and the exponent tell them apart.
  static bool TooLarge(const char* first, const char* last) {
    std::string_view number(first, static_cast<size_t>(last - first));
    size_t exponent_at = number.find_first_of("eE");
    std::string_view mantissa = number.substr(0, exponent_at);
    int64_t exponent = 0;
    if (exponent_at != std::string_view::npos) {
      std::string_view digits = number.substr(exponent_at + 1);
      bool negative = !digits.empty() && digits[0] == '-';
      if (!digits.empty() && (digits[0] == '-' || digits[0] == '+')) digits.remove_prefix(1);
      for (char c : digits) {  // saturates: only the order of magnitude matters
        exponent = std::min<int64_t>(exponent * 10 + (c - '0'), int64_t{1} << 40);
      }
      if (negative) exponent = -exponent;
    }
    // The power of ten of the first significant digit, before the exponent.
    size_t point = mantissa.find('.');
    std::string_view whole = mantissa.substr(0, point);
    int64_t magnitude = 0;
    size_t leading = whole.find_first_not_of("-0");
    if (leading != std::string_view::npos) {
      magnitude = static_cast<int64_t>(whole.size() - leading) - 1;
    } else if (point != std::string_view::npos) {
      std::string_view fraction = mantissa.substr(point + 1);
      size_t first_digit = fraction.find_first_not_of('0');
      if (first_digit == std::string_view::npos) return false;  // zero
      magnitude = -static_cast<int64_t>(first_digit) - 1;
    } else {
      return false;  // zero
    }
    return magnitude + exponent > 0;
  }

  // A string; its decoded value is appended to `out` unless that is null.
  bool String(std::string* out) {
    ++position_;  // the opening quote
    while (true) {
      // A run of characters that stand for themselves, taken in one step.
      size_t run_end = PlainRunEnd(position_);
      if (out != nullptr) out->append(text_.data() + position_, run_end - position_);
      position_ = run_end;
      if (position_ >= text_.size()) return false;
      auto c = static_cast<unsigned char>(text_[position_]);
      if (c == '"') {
        ++position_;
        return true;
      }
      if (c == '\\') {
        if (!Escape(out)) return false;
        continue;
      }
      if (c < 0x20) return false;  // control characters must be escaped
      size_t length = c < 0x80 ? 1 : base::Utf8SequenceLength(text_.substr(position_));
      if (length == 0) return false;
      if (out != nullptr) out->append(text_.substr(position_, length));
      position_ += length;
    }
  }

  // Where the run of plain characters starting at `from` ends. Keys and most values end
  // within their first eight bytes, which are taken byte by byte. A prompt is mostly one
  // long run: after those eight bytes it is taken a word of eight at a time while a whole
  // word is plain, then byte by byte up to the first other one. A body with a 4 KiB prompt
  // scans in 0.7 µs instead of 2.5 (docs/performance.md).
  size_t PlainRunEnd(size_t from) const {
    size_t end = from;
    const size_t first_eight_end = std::min(from + 8, text_.size());
    while (end < first_eight_end && IsPlain(text_[end])) ++end;
    if (end < first_eight_end) return end;
    while (end + 8 <= text_.size() && AllPlain(text_.data() + end)) end += 8;
    while (end < text_.size() && IsPlain(text_[end])) ++end;
    return end;
  }

  // Whether all eight bytes at `bytes` are plain (net/byte_scan.h).
  static bool AllPlain(const char* bytes) {
    const uint64_t word = net::internal::LoadWord(bytes);
    return !net::internal::SomeByteIsHigh(word) && !net::internal::SomeByteIsBelow(word, 0x20) &&
           !net::internal::SomeByteIs(word, '"') && !net::internal::SomeByteIs(word, '\\');
  }

  // Printable ASCII other than the quote and the backslash. A table: four comparisons per
  // byte made this loop a third of the scanner's instructions.
  static bool IsPlain(char c) { return kPlainChars[static_cast<unsigned char>(c)]; }
  static constexpr std::array<bool, 256> kPlainChars = [] {
    std::array<bool, 256> plain{};
    for (int byte = 0x20; byte < 0x80; ++byte) plain[byte] = byte != '"' && byte != '\\';
    return plain;
  }();

  // A backslash escape at position_; its character is appended to `out` unless null.
  bool Escape(std::string* out) {
    ++position_;  // the backslash
    char c = Peek();
    ++position_;
    char simple = 0;
    switch (c) {
      case '"': simple = '"'; break;
      case '\\': simple = '\\'; break;
      case '/': simple = '/'; break;
      case 'b': simple = '\b'; break;
      case 'f': simple = '\f'; break;
      case 'n': simple = '\n'; break;
      case 'r': simple = '\r'; break;
      case 't': simple = '\t'; break;
      case 'u': break;
      default: return false;
    }
    if (c != 'u') {
      if (out != nullptr) out->push_back(simple);
      return true;
    }
    uint32_t code_point = 0;
    if (!HexUnit(&code_point)) return false;
    if (code_point >= 0xDC00 && code_point <= 0xDFFF) return false;  // a low surrogate first
    if (code_point >= 0xD800 && code_point <= 0xDBFF) {
      // A high surrogate: a \u low surrogate must follow.
      uint32_t low = 0;
      if (!text_.substr(position_).starts_with("\\u")) return false;
      position_ += 2;
      if (!HexUnit(&low) || low < 0xDC00 || low > 0xDFFF) return false;
      code_point = 0x10000 + ((code_point - 0xD800) << 10) + (low - 0xDC00);
    }
    if (out != nullptr) AppendUtf8(code_point, *out);
    return true;
  }

  // Four hex digits at position_.
  bool HexUnit(uint32_t* unit) {
    if (position_ + 4 > text_.size()) return false;
    const char* first = text_.data() + position_;
    auto [end, error] = std::from_chars(first, first + 4, *unit, 16);
    if (error != std::errc() || end != first + 4) return false;
    position_ += 4;
    return true;
  }

  static void AppendUtf8(uint32_t code_point, std::string& out) {
    auto byte = [](uint32_t value) { return static_cast<char>(value); };
    if (code_point < 0x80) {
      out.push_back(byte(code_point));
    } else if (code_point < 0x800) {
      out.push_back(byte(0xC0 | (code_point >> 6)));
      out.push_back(byte(0x80 | (code_point & 0x3F)));
    } else if (code_point < 0x10000) {
      out.push_back(byte(0xE0 | (code_point >> 12)));
      out.push_back(byte(0x80 | ((code_point >> 6) & 0x3F)));
      out.push_back(byte(0x80 | (code_point & 0x3F)));
    } else {
      out.push_back(byte(0xF0 | (code_point >> 18)));
      out.push_back(byte(0x80 | ((code_point >> 12) & 0x3F)));
      out.push_back(byte(0x80 | ((code_point >> 6) & 0x3F)));
      out.push_back(byte(0x80 | (code_point & 0x3F)));
    }
  }

  const std::string_view text_;
  size_t position_ = 0;
  // '{' or '[' for each open container, innermost last. A string: up to 15 levels fit
  // without an allocation.
  std::string stack_;
  bool top_is_object_ = false;
  bool next_is_model_ = false;  // the last key was the top level's "model"
  bool model_is_string_ = false;
  std::string model_;
  std::string key_;  // a top-level key, decoded
  int64_t signed_scratch_ = 0;
  uint64_t unsigned_scratch_ = 0;
};

}  // namespace

RequestedModel ReadRequestedModel(std::string_view body) {
  return ModelScanner(body).Scan();
}

}  // namespace supercluster::router
