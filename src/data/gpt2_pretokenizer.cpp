// GPT-2's pre-tokenizer regex on PCRE2 (see gpt2_pretokenizer.h).
#define PCRE2_CODE_UNIT_WIDTH 8
#include "data/gpt2_pretokenizer.h"

#include <pcre2.h>

#include <string>

#include "slope/error.h"

namespace slope::data {
namespace {

// Unicode White_Space (Oniguruma's \s): TAB..CR, space, NEL, NBSP, OGHAM SPACE MARK, EN QUAD..
// HAIR SPACE, LINE and PARAGRAPH SEPARATOR, NARROW NBSP, MEDIUM MATHEMATICAL SPACE, IDEOGRAPHIC
// SPACE.
#define SLOPE_WS                                                                  \
  "\\t-\\r \\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}" \
  "\\x{205F}\\x{3000}"
constexpr const char* kPattern =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^" SLOPE_WS "\\p{L}\\p{N}]+|[" SLOPE_WS
    "]+(?![^" SLOPE_WS "])|[" SLOPE_WS "]+";
#undef SLOPE_WS

std::string pcre2_message(int code) {
  PCRE2_UCHAR buf[256];
  pcre2_get_error_message(code, buf, sizeof buf);
  return reinterpret_cast<const char*>(buf);
}

}  // namespace

struct Gpt2PreTokenizer::Impl {
  pcre2_code* code = nullptr;
  ~Impl() { pcre2_code_free(code); }
};

namespace {
struct MatchData {
  pcre2_match_data* p;
  explicit MatchData(const pcre2_code* code)
      : p(pcre2_match_data_create_from_pattern(code, nullptr)) {
    if (!p) throw Error("GPT-2 pre-tokenizer: out of memory");
  }
  ~MatchData() { pcre2_match_data_free(p); }
  MatchData(const MatchData&) = delete;
  MatchData& operator=(const MatchData&) = delete;
};
}  // namespace

Gpt2PreTokenizer::Gpt2PreTokenizer() : impl_(std::make_unique<Impl>()) {
  int err = 0;
  PCRE2_SIZE offset = 0;
  impl_->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(kPattern), PCRE2_ZERO_TERMINATED,
                              PCRE2_UTF | PCRE2_UCP, &err, &offset, nullptr);
  if (!impl_->code)
    throw Error("GPT-2 pre-tokenizer: PCRE2 refused the pattern at offset " +
                std::to_string(offset) + ": " + pcre2_message(err) +
                " (is libpcre2 built with Unicode support?)");
  // JIT is an optimisation: where PCRE2 lacks it, the interpreter gives the same matches.
  pcre2_jit_compile(impl_->code, PCRE2_JIT_COMPLETE);
}

Gpt2PreTokenizer::~Gpt2PreTokenizer() = default;

const char* Gpt2PreTokenizer::pattern() { return kPattern; }

void Gpt2PreTokenizer::split(std::string_view text, std::vector<std::string_view>& pieces) const {
  const MatchData match(impl_->code);
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t pos = 0;
  while (pos < text.size()) {
    const int rc =
        pcre2_match(impl_->code, subject, text.size(), pos, PCRE2_NO_UTF_CHECK, match.p, nullptr);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) throw Error("GPT-2 pre-tokenizer: PCRE2 match failed: " + pcre2_message(rc));
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(match.p);
    // Every character matches one alternative, so there are no gaps; text between matches
    // would still be a piece of its own (Hugging Face's "isolated" split).
    if (ov[0] > pos) pieces.push_back(text.substr(pos, ov[0] - pos));
    if (ov[1] == ov[0]) throw Error("GPT-2 pre-tokenizer: empty match (pattern broken)");
    pieces.push_back(text.substr(ov[0], ov[1] - ov[0]));
    pos = ov[1];
  }
  if (pos < text.size()) pieces.push_back(text.substr(pos));
}

}  // namespace slope::data
