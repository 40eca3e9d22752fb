#include "engine/bpe_pretokenizer.h"

#include "engine/unicode.h"

namespace supercluster::engine {
namespace {

// What the patterns ask of a character. \s, \p{L} and \p{N} do not overlap.
enum class Kind { kLetter, kNumber, kSpace, kOther };

struct Char {
  size_t offset;
  uint32_t code_point;
  Kind kind;
};

std::vector<Char> Classify(std::string_view text) {
  std::vector<Char> chars;
  chars.reserve(text.size());
  for (size_t offset = 0; offset < text.size();) {
    const DecodedChar decoded = DecodeUtf8(text, offset);
    Kind kind = Kind::kOther;
    if (decoded.valid) {
      if (IsWhiteSpace(decoded.code_point)) {
        kind = Kind::kSpace;
      } else if (IsLetter(decoded.code_point)) {
        kind = Kind::kLetter;
      } else if (IsNumber(decoded.code_point)) {
        kind = Kind::kNumber;
      }
    }
    chars.push_back({offset, decoded.valid ? decoded.code_point : 0xFFFD, kind});
    offset += decoded.length;
  }
  return chars;
}

// Matches against the classified characters of one text; every method takes the index of
// the first character and returns the index one past the match, or `start` for no match.
class Matcher {
 public:
  explicit Matcher(const std::vector<Char>& chars) : chars_(chars) {}

  size_t size() const { return chars_.size(); }
  bool Is(size_t i, Kind kind) const { return i < chars_.size() && chars_[i].kind == kind; }
  uint32_t At(size_t i) const { return i < chars_.size() ? chars_[i].code_point : 0; }
  bool IsNewline(size_t i) const { return At(i) == '\r' || At(i) == '\n'; }

  size_t Run(size_t i, Kind kind) const {
    while (Is(i, kind)) ++i;
    return i;
  }

  // 's|'t|'re|'ve|'m|'ll|'d, case-sensitive or (for (?i:...)) ASCII case-insensitive.
  size_t Contraction(size_t i, bool ignore_case) const {
    if (At(i) != '\'') return i;
    auto lower = [&](size_t k) {
      uint32_t c = At(k);
      return (ignore_case && c >= 'A' && c <= 'Z') ? c + 32 : c;
    };
    const uint32_t first = lower(i + 1);
    if (first == 's' || first == 't' || first == 'm' || first == 'd') return i + 2;
    const uint32_t second = lower(i + 2);
    if ((first == 'r' && second == 'e') || (first == 'v' && second == 'e') ||
        (first == 'l' && second == 'l')) {
      return i + 3;
    }
    return i;
  }

  // " ?X+" where X is a class: an optional leading space then one or more X.
  size_t OptionalSpaceThenRun(size_t i, Kind kind) const {
    const size_t from = (At(i) == ' ' && Is(i + 1, kind)) ? i + 1 : i;
    return Is(from, kind) ? Run(from, kind) : i;
  }

  // \s+(?!\S) then \s+: a whitespace run, less its last character when a non-space follows
  // and the run is longer than one (so that the last space joins the next word).
  size_t WhiteSpace(size_t i) const {
    if (!Is(i, Kind::kSpace)) return i;
    const size_t end = Run(i, Kind::kSpace);
    if (end == size() || end - i == 1) return end;
    return end - 1;
  }

 private:
  const std::vector<Char>& chars_;
};

size_t NextGpt2(const Matcher& m, size_t i) {
  size_t end;
  if ((end = m.Contraction(i, /*ignore_case=*/false)) != i) return end;
  if ((end = m.OptionalSpaceThenRun(i, Kind::kLetter)) != i) return end;
  if ((end = m.OptionalSpaceThenRun(i, Kind::kNumber)) != i) return end;
  if ((end = m.OptionalSpaceThenRun(i, Kind::kOther)) != i) return end;
  if ((end = m.WhiteSpace(i)) != i) return end;
  return i + 1;  // unreachable: every character is a letter, number, space or other
}

size_t NextLlama3(const Matcher& m, size_t i, size_t max_digits) {
  size_t end;
  if ((end = m.Contraction(i, /*ignore_case=*/true)) != i) return end;
  // [^\r\n\p{L}\p{N}]?\p{L}+
  if (!m.Is(i, Kind::kLetter) && !m.Is(i, Kind::kNumber) && !m.IsNewline(i) &&
      m.Is(i + 1, Kind::kLetter)) {
    return m.Run(i + 1, Kind::kLetter);
  }
  if (m.Is(i, Kind::kLetter)) return m.Run(i, Kind::kLetter);
  // \p{N}{1,3}
  if (m.Is(i, Kind::kNumber)) {
    end = i;
    while (end - i < max_digits && m.Is(end, Kind::kNumber)) ++end;
    return end;
  }
  //  ?[^\s\p{L}\p{N}]+[\r\n]*
  if ((end = m.OptionalSpaceThenRun(i, Kind::kOther)) != i) {
    while (m.IsNewline(end)) ++end;
    return end;
  }
  // \s*[\r\n]+: the whitespace run up to and including its last newline.
  if (m.Is(i, Kind::kSpace)) {
    const size_t run_end = m.Run(i, Kind::kSpace);
    for (size_t k = run_end; k > i; --k) {
      if (m.IsNewline(k - 1)) return k;
    }
  }
  if ((end = m.WhiteSpace(i)) != i) return end;
  return i + 1;
}

}  // namespace

base::Result<PreTokenizer> ParsePreTokenizer(std::string_view name) {
  if (name.empty() || name == "default" || name == "gpt2") return PreTokenizer::kGpt2;
  if (name == "llama-bpe" || name == "llama3") return PreTokenizer::kLlama3;
  if (name == "qwen2") return PreTokenizer::kQwen2;
  return base::InvalidArgument("tokenizer pre-tokenizer '" + std::string(name) +
                               "' is not supported (known: default, gpt2, llama-bpe, qwen2)");
}

std::vector<std::string_view> PreTokenize(PreTokenizer kind, std::string_view text) {
  const std::vector<Char> chars = Classify(text);
  const Matcher matcher(chars);
  std::vector<std::string_view> pieces;
  for (size_t i = 0; i < chars.size();) {
    size_t end = 0;
    switch (kind) {
      case PreTokenizer::kGpt2: end = NextGpt2(matcher, i); break;
      case PreTokenizer::kLlama3: end = NextLlama3(matcher, i, 3); break;
      case PreTokenizer::kQwen2: end = NextLlama3(matcher, i, 1); break;
    }
    const size_t begin_byte = chars[i].offset;
    const size_t end_byte = end < chars.size() ? chars[end].offset : text.size();
    pieces.push_back(text.substr(begin_byte, end_byte - begin_byte));
    i = end;
  }
  return pieces;
}

}  // namespace supercluster::engine
