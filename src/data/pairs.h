// Sequence pairs for encoder–decoders: grapheme-to-phoneme (G2P) on the CMU Pronouncing
// Dictionary, prepared by `slope prepare --task g2p`.
//
// A prepared directory DIR holds
//   DIR/src_vocab.json  {"format": "slope-pair-vocab", "version": 1, "tokens": [...]}: id i is
//                       tokens[i]; the source side is characters: "<unk>" (0), then the
//                       characters of the training words by code point
//   DIR/tgt_vocab.json  the same for the target side: "<bos>" (0), "<eos>" (1), then the phonemes
//                       of the whole dictionary, sorted (a closed set: every split can be written)
//   DIR/train.bin, val.bin, test.bin   pair shards (below): each word with all its pronunciations
//   DIR/meta.json       {"format": "slope-prepared-pairs", "version": 1, "task": "g2p", vocab
//                       sizes, words and pronunciations per split, stress kept or not, the source}
// Written into DIR/.tmp-prepare-XXXXXX and moved into place at the end, meta.json last, as
// `slope prepare` does for text (prepare.h): a failed run leaves DIR as it was.
//
// Pair shard layout (little-endian), a 64-byte header then N word records:
//
//   offset  type      field
//        0  char[8]   magic "SLOPEPAR"
//        8  uint32    format version (kPairShardVersion)
//       12  uint32    source vocab size (≤ 65536)
//       16  uint32    target vocab size (≤ 65536)
//       20  uint32    reserved, 0
//       24  uint64    word count N
//       32  uint64    payload bytes P
//       40  uint64    checksum: FNV-1a 64 over header bytes [0, 40), then the payload
//       48  byte[16]  reserved, 0
//       64  records   P bytes; a record is
//                       uint16 word bytes W, uint16 source length S, uint16 pronunciations R,
//                       char[W] the word (UTF-8, lower case), uint16[S] source ids,
//                       then R times: uint16 length L, uint16[L] phoneme ids (no <bos>/<eos>)
//
// The reader checks all of it (magic, version, sizes, checksum, every id in range, S, R, L ≥ 1,
// phoneme ids ≥ 2) and open_prepared_pairs() also that every word encodes to its source ids, so
// a truncated or corrupt file is an error, never silent garbage.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "data/token_batcher.h"  // BatcherState

namespace slope::data {

constexpr char kPairShardMagic[8] = {'S', 'L', 'O', 'P', 'E', 'P', 'A', 'R'};
constexpr uint32_t kPairShardVersion = 1;
constexpr size_t kPairShardHeaderBytes = 64;
constexpr uint32_t kPreparedPairsVersion = 1;

constexpr int32_t kSrcUnk = 0;  // source id of a character the training words never had
constexpr int32_t kBos = 0;     // target ids
constexpr int32_t kEos = 1;
constexpr int32_t kPairIgnore = -1;  // tgt_out at padding

struct PairExample {
  std::vector<int32_t> src;                 // (S,) character ids of the word
  std::vector<std::vector<int32_t>> prons;  // each (L,): phoneme ids, without <bos>/<eos>
  std::string word;                         // lower case, as in the dictionary
};

struct PairVocab {
  std::vector<std::string> tokens;  // (V,) id → token

  int32_t size() const { return static_cast<int32_t>(tokens.size()); }
  int32_t id(std::string_view token) const;  // -1 when absent (a linear scan: V is small)
  // tokens[id]. Throws slope::Error when id is out of range.
  const std::string& token(int32_t id) const;
  // "AH L OW": the tokens of ids joined by spaces (phonemes), or by nothing when `sep` is "".
  std::string decode(const std::vector<int32_t>& ids, std::string_view sep = " ") const;
};

// The vocabulary files of a prepared directory (and of a checkpoint that carries them).
constexpr const char* kSrcVocabFile = "src_vocab.json";
constexpr const char* kTgtVocabFile = "tgt_vocab.json";

// {"format": "slope-pair-vocab", "version": 1, "tokens": [...]}. The reader throws
// slope::Error naming the file when it is missing, malformed, empty, or a token is empty or
// repeated.
PairVocab read_pair_vocab(const std::filesystem::path& path);
void write_pair_vocab(const std::filesystem::path& path, const PairVocab& vocab);  // atomically

struct PreparedPairs {
  PairVocab src_vocab, tgt_vocab;
  std::vector<PairExample> train, val, test;
  bool stress = false;  // phonemes keep their stress digits (AH0, AH1, AH2)
};

// Opens and cross-checks DIR (see above). Throws slope::Error naming the file on anything
// missing, truncated, corrupt or inconsistent with meta.json.
PreparedPairs open_prepared_pairs(const std::filesystem::path& dir);

// word (UTF-8) → source ids: ASCII letters lower-cased, one id per code point, characters
// outside the vocabulary → kSrcUnk. Throws slope::Error on malformed UTF-8.
std::vector<int32_t> encode_word(const PairVocab& src_vocab, std::string_view word);

// The pair shard (above), atomically. Throws slope::Error when an id is out of range, a word
// has no characters or no pronunciation, or a length does not fit 16 bits.
void write_pair_shard(const std::filesystem::path& path, const std::vector<PairExample>& examples,
                      uint32_t src_vocab_size, uint32_t tgt_vocab_size);

struct PairShard {
  uint32_t src_vocab_size = 0, tgt_vocab_size = 0;
  std::vector<PairExample> examples;
};
// Reads and validates a pair shard. Throws slope::Error naming the file and what is wrong.
PairShard read_pair_shard(const std::filesystem::path& path);

// ---- `slope prepare --task g2p` ----

struct G2pPrepareOptions {
  std::filesystem::path input;  // cmudict text: "word PH1 PH2 ..." lines, "word(2)" alternates
  std::filesystem::path out_dir;
  double val_fraction = 0.05;   // of the words; val + test < 1
  double test_fraction = 0.05;  // of the words
  uint64_t seed = 1337;         // the split's shuffle
  bool keep_stress = false;     // keep AH0/AH1/AH2 apart; else all are AH
  bool force = false;           // replace an existing prepared DIR
};

struct G2pPrepareResult {
  int32_t src_vocab_size = 0, tgt_vocab_size = 0;
  uint64_t entries = 0;          // dictionary lines with a pronunciation
  uint64_t duplicate_prons = 0;  // pronunciations dropped as equal to another of their word
  uint64_t train_words = 0, val_words = 0, test_words = 0;
  uint64_t train_prons = 0, val_prons = 0, test_prons = 0;
  uint64_t unknown_chars = 0;  // val + test characters not in the source vocab (→ <unk>)
  std::string longest_word;    // the one with the most characters (the first such)
  int64_t longest_chars = 0;
  int64_t longest_pron = 0;  // phonemes of the longest pronunciation
};

// The dictionary, parsed: '#' starts a comment (so does a line starting ";;;"), blank lines are
// skipped; a line is a word then its phonemes (ARPAbet: upper-case letters and an optional
// stress digit), separated by spaces or tabs. "word(N)" is an alternate pronunciation of word;
// words are lower-cased (ASCII) and grouped, in order of first appearance; a word's equal
// pronunciations (after stress stripping) are kept once.
struct G2pEntry {
  std::string word;
  std::vector<std::vector<std::string>> prons;  // each (L,) phonemes
};
struct G2pDictionary {
  std::vector<G2pEntry> words;
  uint64_t entries = 0;          // lines with a pronunciation
  uint64_t duplicate_prons = 0;  // pronunciations dropped as equal to another of their word
};
// Throws slope::Error naming `what` and the line on a malformed line, or when no word is found.
G2pDictionary parse_cmudict(std::string_view text, bool keep_stress, const std::string& what);

// Prepares options.out_dir. The split is by word (all pronunciations of a word go together):
// a seeded shuffle puts round(f·n) words in test and in val (at least one each when f > 0),
// each split keeping the dictionary's order. Throws slope::Error, with nothing written, on a
// bad input or option, or when DIR already holds prepared data and options.force is false.
G2pPrepareResult prepare_g2p(const G2pPrepareOptions& options);

// ---- Batches ----

struct PairBatch {
  int64_t B = 0, S = 0, T = 0;       // S: longest source; T: longest target + 1
  std::vector<int32_t> src;          // (B, S) character ids, padded with 0
  std::vector<int32_t> src_lengths;  // (B) real characters per row
  std::vector<int32_t> tgt_in;       // (B, T) <bos> + phonemes, padded with <eos>
  std::vector<int32_t> tgt_out;      // (B, T) phonemes + <eos>, padded with -1
};

// Random training batches over (word, pronunciation) pairs: every pronunciation of a word is
// its own example, drawn uniformly with replacement. Batch k is a pure function of (seed, k, B,
// max_src_len, the examples), drawn as TokenBatcher draws (token_batcher.h).
class PairBatcher {
 public:
  // `examples` must outlive the batcher. max_src_len 0: every word; else only the words of at
  // most max_src_len characters (the length-extrapolation experiment). Throws slope::Error when
  // B ≤ 0, max_src_len < 0, or no example is left.
  PairBatcher(const std::vector<PairExample>& examples, int64_t batch_size, uint64_t seed,
              int64_t max_src_len = 0);

  int64_t batch_size() const { return B_; }
  int64_t max_src_len() const { return max_src_len_; }
  int64_t num_examples() const { return static_cast<int64_t>(pairs_.size()); }  // pairs

  // Makes next() return only these rows of each batch (token_batcher.h's RowSlice), padded
  // to the longest of them.
  void set_rows(const RowSlice& rows);
  void next(PairBatch& batch);                        // advances the state by one batch
  void batch_at(uint64_t k, PairBatch& batch) const;  // batch k, state untouched

  // block_size holds max_src_len. restore() throws slope::Error when B or max_src_len differ.
  BatcherState state() const { return {seed_, drawn_, B_, max_src_len_}; }
  void restore(const BatcherState& state);

 private:
  struct Pair {
    uint32_t example, pron;
  };
  void rows_at(uint64_t k, const RowSlice& slice, PairBatch& batch) const;
  const std::vector<PairExample>* examples_;
  std::vector<Pair> pairs_;
  int64_t B_, max_src_len_;
  uint64_t seed_;
  uint64_t drawn_ = 0;
  RowSlice rows_;
};

// Batch of examples [first, first + count) of a split, in order, each with its first
// pronunciation: for evaluation. Throws slope::Error when the range leaves the split or
// count ≤ 0.
void make_pair_batch(const std::vector<PairExample>& examples, int64_t first, int64_t count,
                     PairBatch& batch);

}  // namespace slope::data
