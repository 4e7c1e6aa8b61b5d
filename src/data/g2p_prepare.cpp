// `slope prepare --task g2p`: the CMU Pronouncing Dictionary → a prepared pairs directory
// (pairs.h).
#include <algorithm>
#include <array>
#include <cmath>
#include <map>
#include <numeric>
#include <set>
#include <string>
#include <unordered_map>

#include "files/atomic_file.h"
#include "files/read_file.h"
#include "files/json_file.h"
#include "data/pairs.h"
#include "data/random.h"
#include "data/staged_dir.h"
#include "data/utf8.h"
#include "slope/attention.h"

namespace slope::data {
namespace fs = std::filesystem;
namespace {

constexpr const char* kMetaFile = "meta.json";
constexpr std::array<const char*, 3> kSplitNames = {"train", "val", "test"};
// Moved into place in this order: meta.json last, so its presence means the rest is there.
constexpr std::array<const char*, 6> kOutputs = {kSrcVocabFile, kTgtVocabFile, "train.bin",
                                                 "val.bin",     "test.bin",    kMetaFile};

std::vector<std::string_view> fields(std::string_view line) {
  std::vector<std::string_view> out;
  size_t pos = 0;
  while (true) {
    pos = line.find_first_not_of(" \t\r", pos);
    if (pos == std::string_view::npos) return out;
    const size_t end = std::min(line.find_first_of(" \t\r", pos), line.size());
    out.push_back(line.substr(pos, end - pos));
    pos = end;
  }
}

// "word(2)" → "word"; anything else unchanged.
std::string_view strip_alternate(std::string_view word) {
  if (word.size() < 4 || word.back() != ')') return word;
  const size_t open = word.rfind('(');
  if (open == std::string_view::npos || open == 0 || open + 2 >= word.size()) return word;
  for (size_t i = open + 1; i + 1 < word.size(); ++i) {
    if (word[i] < '0' || word[i] > '9') return word;
  }
  return word.substr(0, open);
}

std::string ascii_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// An ARPAbet phoneme: upper-case letters, then an optional stress digit 0, 1 or 2.
bool is_phoneme(std::string_view p) {
  size_t letters = 0;
  while (letters < p.size() && p[letters] >= 'A' && p[letters] <= 'Z') ++letters;
  if (letters == 0) return false;
  return letters == p.size() || (letters + 1 == p.size() && p.back() >= '0' && p.back() <= '2');
}

void check_options(const G2pPrepareOptions& o) {
  if (o.input.empty()) throw Error("no input file: pass --input data/raw/cmudict.txt");
  const auto in_unit = [](double f) { return f >= 0.0 && f < 1.0; };
  if (!in_unit(o.val_fraction)) {
    throw Error("--val-fraction must be in [0, 1), got " + std::to_string(o.val_fraction));
  }
  if (!in_unit(o.test_fraction)) {
    throw Error("--test-fraction must be in [0, 1), got " + std::to_string(o.test_fraction));
  }
  if (!(o.val_fraction + o.test_fraction < 1.0)) {
    throw Error("--val-fraction + --test-fraction must be below 1, got " +
                std::to_string(o.val_fraction + o.test_fraction));
  }
}

// Words held out for a fraction f of n: round(f·n), at least one when f > 0.
uint64_t held_out(double f, uint64_t n) {
  if (f <= 0.0) return 0;
  return std::max<uint64_t>(1, static_cast<uint64_t>(std::llround(f * static_cast<double>(n))));
}

}  // namespace

G2pDictionary parse_cmudict(std::string_view text, bool keep_stress, const std::string& what) {
  utf8_validate(text, what);
  G2pDictionary dict;
  std::unordered_map<std::string, size_t> index;  // word → position in dict.words
  uint64_t line_no = 0;
  for (size_t pos = 0; pos < text.size();) {
    const size_t end = std::min(text.find('\n', pos), text.size());
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (line.starts_with(";;;")) continue;
    line = line.substr(0, line.find('#'));
    const std::vector<std::string_view> f = fields(line);
    if (f.empty()) continue;
    const std::string where = what + ":" + std::to_string(line_no) + ": ";
    const std::string word = ascii_lower(strip_alternate(f[0]));
    if (f.size() == 1) {
      throw Error(where + "\"" + std::string(f[0]) +
                  "\" has no pronunciation (expected \"word PH1 PH2 ...\")");
    }
    std::vector<std::string> pron;
    for (size_t i = 1; i < f.size(); ++i) {
      if (!is_phoneme(f[i])) {
        throw Error(where + "\"" + std::string(f[i]) +
                    "\" is not an ARPAbet phoneme (upper-case letters and an optional stress "
                    "digit 0-2, as in AH0): is this the CMU Pronouncing Dictionary?");
      }
      std::string_view p = f[i];
      if (!keep_stress && p.back() >= '0' && p.back() <= '9') p.remove_suffix(1);
      pron.emplace_back(p);
    }
    ++dict.entries;
    auto [it, inserted] = index.try_emplace(word, dict.words.size());
    if (inserted) dict.words.push_back({word, {}});
    auto& prons = dict.words[it->second].prons;
    if (std::find(prons.begin(), prons.end(), pron) != prons.end()) {
      ++dict.duplicate_prons;
    } else {
      prons.push_back(std::move(pron));
    }
  }
  if (dict.words.empty()) {
    throw Error(what + ": no dictionary entries (expected lines \"word PH1 PH2 ...\")");
  }
  return dict;
}

G2pPrepareResult prepare_g2p(const G2pPrepareOptions& o) {
  // Everything that can fail on bad input happens before anything is written.
  check_options(o);
  const std::vector<std::string> outputs(kOutputs.begin(), kOutputs.end());
  check_output_dir(o.out_dir, outputs, o.force);
  const std::string text = files::read_file(o.input);
  if (text.find_first_not_of(" \t\r\n\f\v") == std::string::npos) {
    throw Error("no text in " + o.input.string() + (text.empty() ? " (the file is empty)" : ""));
  }
  const G2pDictionary dict = parse_cmudict(text, o.keep_stress, o.input.string());
  G2pPrepareResult r;
  r.entries = dict.entries;
  r.duplicate_prons = dict.duplicate_prons;

  // The split, by word: a seeded Fisher–Yates shuffle; its first words go to test, the next to
  // val, the rest to train; each split keeps the dictionary's order.
  const uint64_t n = dict.words.size();
  const uint64_t n_test = held_out(o.test_fraction, n), n_val = held_out(o.val_fraction, n);
  if (n_test + n_val >= n) {
    throw Error(o.input.string() + " holds " + std::to_string(n) + " words: too few to hold out " +
                std::to_string(n_val) + " for val and " + std::to_string(n_test) +
                " for test and keep some for training; lower --val-fraction or --test-fraction");
  }
  std::vector<uint64_t> order(n);
  std::iota(order.begin(), order.end(), uint64_t{0});
  std::mt19937_64 rng(splitmix64(o.seed));
  for (uint64_t i = n - 1; i > 0; --i) std::swap(order[i], order[uniform_below(rng, i + 1)]);
  std::vector<int> split_of(n);  // 0 train, 1 val, 2 test
  for (uint64_t i = 0; i < n; ++i) split_of[order[i]] = i < n_test ? 2 : i < n_test + n_val ? 1 : 0;

  // Source vocabulary: <unk>, then the training words' characters by code point. Target
  // vocabulary: <bos>, <eos>, then every phoneme of the dictionary (a closed set), sorted.
  std::set<char32_t> chars;
  std::set<std::string> phonemes;
  for (uint64_t w = 0; w < n; ++w) {
    const G2pEntry& e = dict.words[w];
    if (split_of[w] == 0) {
      for (size_t pos = 0; pos < e.word.size();) chars.insert(utf8_next(e.word, pos));
    }
    for (const auto& pron : e.prons) phonemes.insert(pron.begin(), pron.end());
  }
  PreparedPairs out;
  out.stress = o.keep_stress;
  out.src_vocab.tokens = {"<unk>"};
  for (const char32_t c : chars) utf8_append(out.src_vocab.tokens.emplace_back(), c);
  out.tgt_vocab.tokens = {"<bos>", "<eos>"};
  out.tgt_vocab.tokens.insert(out.tgt_vocab.tokens.end(), phonemes.begin(), phonemes.end());
  std::map<std::string, int32_t> phoneme_id;
  for (int32_t i = 0; i < out.tgt_vocab.size(); ++i) phoneme_id[out.tgt_vocab.tokens[i]] = i;

  std::array<std::vector<PairExample>*, 3> splits = {&out.train, &out.val, &out.test};
  for (uint64_t w = 0; w < n; ++w) {
    const G2pEntry& e = dict.words[w];
    PairExample x;
    x.word = e.word;
    x.src = encode_word(out.src_vocab, e.word);
    if (split_of[w] != 0) r.unknown_chars += std::count(x.src.begin(), x.src.end(), kSrcUnk);
    for (const auto& pron : e.prons) {
      std::vector<int32_t>& ids = x.prons.emplace_back();
      for (const std::string& p : pron) ids.push_back(phoneme_id.at(p));
      r.longest_pron = std::max<int64_t>(r.longest_pron, static_cast<int64_t>(ids.size()));
    }
    if (static_cast<int64_t>(x.src.size()) > r.longest_chars) {
      r.longest_chars = static_cast<int64_t>(x.src.size());
      r.longest_word = x.word;
    }
    splits[static_cast<size_t>(split_of[w])]->push_back(std::move(x));
  }
  r.src_vocab_size = out.src_vocab.size();
  r.tgt_vocab_size = out.tgt_vocab.size();
  std::array<uint64_t*, 3> words = {&r.train_words, &r.val_words, &r.test_words};
  std::array<uint64_t*, 3> prons = {&r.train_prons, &r.val_prons, &r.test_prons};
  for (size_t s = 0; s < 3; ++s) {
    *words[s] = splits[s]->size();
    for (const PairExample& x : *splits[s]) *prons[s] += x.prons.size();
  }

  nlohmann::ordered_json meta;
  meta["format"] = "slope-prepared-pairs";
  meta["version"] = kPreparedPairsVersion;
  meta["task"] = "g2p";
  meta["src_vocab"] = {{"file", kSrcVocabFile}, {"size", r.src_vocab_size}};
  meta["tgt_vocab"] = {{"file", kTgtVocabFile}, {"size", r.tgt_vocab_size}};
  meta["stress"] = o.keep_stress;
  for (size_t s = 0; s < 3; ++s) {
    meta[kSplitNames[s]] = {{"file", std::string(kSplitNames[s]) + ".bin"},
                            {"words", *words[s]},
                            {"pronunciations", *prons[s]}};
  }
  meta["unknown_chars"] = r.unknown_chars;
  meta["longest_word"] = {{"word", r.longest_word}, {"chars", r.longest_chars}};
  meta["longest_pronunciation"] = r.longest_pron;
  meta["val_fraction"] = o.val_fraction;
  meta["test_fraction"] = o.test_fraction;
  meta["seed"] = o.seed;
  meta["source"] = {{"path", o.input.string()},
                    {"bytes", text.size()},
                    {"entries", r.entries},
                    {"words", n},
                    {"duplicate_pronunciations", r.duplicate_prons}};

  StagedDir staging(o.out_dir, outputs);
  write_pair_vocab(staging.path() / kSrcVocabFile, out.src_vocab);
  write_pair_vocab(staging.path() / kTgtVocabFile, out.tgt_vocab);
  for (size_t s = 0; s < 3; ++s) {
    write_pair_shard(staging.path() / (std::string(kSplitNames[s]) + ".bin"), *splits[s],
                     static_cast<uint32_t>(r.src_vocab_size),
                     static_cast<uint32_t>(r.tgt_vocab_size));
  }
  files::write_json_file(staging.path() / kMetaFile, meta);
  staging.commit(o.force);
  return r;
}

}  // namespace slope::data
