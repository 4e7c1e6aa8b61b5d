// The CMU Pronouncing Dictionary parser (data/pairs.h: parse_cmudict), the input of
// `slope prepare --task g2p`.
//
// Input: the first byte picks keep_stress (its low bit), the rest is the dictionary text.
// Invariants: every word is non-empty and lower case (ASCII); every pronunciation has at least
// one phoneme, each upper-case letters with a stress digit 0-2 only when stress is kept; a
// word's pronunciations are distinct; words are distinct; entries count at least the
// pronunciations kept.
#include <set>

#include "data/pairs.h"
#include "fuzz_common.h"
#include "slope/error.h"

namespace {

bool phoneme_ok(const std::string& p, bool keep_stress) {
  size_t letters = 0;
  while (letters < p.size() && p[letters] >= 'A' && p[letters] <= 'Z') ++letters;
  if (letters == 0) return false;
  if (letters == p.size()) return true;
  return keep_stress && letters + 1 == p.size() && p.back() >= '0' && p.back() <= '2';
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const bool keep_stress = data[0] & 1;
  slope::data::G2pDictionary dict;
  try {
    dict = slope::data::parse_cmudict(slope::fuzz::as_text(data + 1, size - 1), keep_stress,
                                      "cmudict.txt");
  } catch (const slope::Error&) {
    return 0;
  }
  FUZZ_CHECK(!dict.words.empty(), "an accepted dictionary has words");
  std::set<std::string> words;
  uint64_t prons = 0;
  for (const slope::data::G2pEntry& e : dict.words) {
    FUZZ_CHECK(!e.word.empty() && words.insert(e.word).second, "word empty or repeated");
    for (const char c : e.word) FUZZ_CHECK(!(c >= 'A' && c <= 'Z'), "upper case in " + e.word);
    FUZZ_CHECK(!e.prons.empty(), "no pronunciation for " + e.word);
    std::set<std::vector<std::string>> distinct(e.prons.begin(), e.prons.end());
    FUZZ_CHECK(distinct.size() == e.prons.size(), "repeated pronunciation of " + e.word);
    for (const auto& pron : e.prons) {
      FUZZ_CHECK(!pron.empty(), "empty pronunciation of " + e.word);
      for (const std::string& p : pron) FUZZ_CHECK(phoneme_ok(p, keep_stress), p);
    }
    prons += e.prons.size();
  }
  FUZZ_CHECK(dict.entries == prons + dict.duplicate_prons, "entry count");
  return 0;
}
