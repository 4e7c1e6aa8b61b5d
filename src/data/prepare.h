// `slope prepare`: text files → tokenizer + token shards, the input of `slope train`.
//
// A prepared directory DIR holds
//   DIR/tokenizer/   tokenizer.json (+ bpe.model): see tokenizer.h (gpt2 and byte-bpe: Hugging
//                    Face's tokenizer.json)
//   DIR/train.bin    token shard of the training split (token_shard.h)
//   DIR/val.bin      token shard of the validation split (may hold 0 tokens when f = 0)
//   DIR/meta.json    {"format": "slope-prepared-corpus", "version": 1, tokenizer kind and
//                    vocab size, token counts, the source files and how each was split}
// Everything is written into DIR/.tmp-prepare-XXXXXX first and moved into place at the end,
// meta.json last, so a DIR with meta.json is complete and a failed run leaves nothing behind.
// The tokenizer is built on the training split only (gpt2: loaded from its files); validation
// text is encoded with it (a char tokenizer maps characters it never saw to <unk>, counted in
// meta.json).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "data/corpus_split.h"
#include "data/token_shard.h"
#include "data/tokenizer.h"

namespace slope::data {

// char, SentencePiece bpe, GPT-2's byte-level BPE loaded from files (gpt2) or trained
// (byte-bpe); see tokenizer.h and byte_bpe_tokenizer.h.
enum class TokenizerKind { kChar, kBpe, kGpt2, kByteBpe };

constexpr uint32_t kPreparedFormatVersion = 1;
// DIR/tokenizer/: the corpus's tokenizer (a checkpoint carries a copy: io::kTokenizerDir).
constexpr const char* kTokenizerDir = "tokenizer";
constexpr uint32_t kDefaultBpeVocab = 4096;

// What `slope prepare` makes: a text corpus for language models (here), or word/pronunciation
// pairs for an encoder–decoder (`--task g2p`: the command line hands the shared fields, one
// input, out_dir, val_fraction, seed, force, and the g2p ones to prepare_g2p in pairs.h).
enum class PrepareTask { kLm, kG2p };

struct PrepareOptions {
  PrepareTask task = PrepareTask::kLm;        // prepare_corpus() refuses kG2p
  std::vector<std::filesystem::path> inputs;  // UTF-8 text files
  std::filesystem::path out_dir;
  TokenizerKind tokenizer = TokenizerKind::kChar;
  uint32_t vocab_size = 0;  // bpe, byte-bpe; 0: kDefaultBpeVocab. A char vocabulary is what it
                            // sees, gpt2's what its files hold.
  std::filesystem::path tokenizer_files;  // gpt2 only: tokenizer.json or vocab.json + merges.txt
  double val_fraction = 0.1;              // in [0, 1)
  SplitMode split = SplitMode::kAuto;     // corpus_split.h
  uint64_t seed = 1337;                   // the lines split's shuffle
  bool force = false;                     // replace an existing prepared DIR
  int num_threads = 0;                    // BPE training; 0: all cores
  double test_fraction = 0.05;            // g2p only: words held out for test
  bool keep_stress = false;               // g2p only: keep the phonemes' stress digits
};

struct SourceSummary {
  std::filesystem::path path;
  uint64_t bytes = 0, train_bytes = 0, val_bytes = 0;
  SplitMode split = SplitMode::kTail;  // the mode used for this file
};

struct PrepareResult {
  std::string tokenizer_kind;
  uint32_t vocab_size = 0;
  uint32_t token_bytes = 0;  // 2 or 4
  uint64_t train_tokens = 0, val_tokens = 0;
  uint64_t val_unknown = 0;  // char tokenizer: val characters not seen in train (→ <unk>)
  std::vector<SourceSummary> sources;
};

// Prepares options.out_dir (see above). Throws slope::Error, with nothing written, when an input
// is missing, empty or not UTF-8, the options are out of range, the split leaves train (or, with
// f > 0, val) empty, or DIR already holds prepared data and options.force is false.
PrepareResult prepare_corpus(const PrepareOptions& options);

// A prepared directory, opened and cross-checked (shard vocab sizes and token counts agree with
// meta.json and the tokenizer): what `slope train` reads.
struct PreparedCorpus {
  std::unique_ptr<Tokenizer> tokenizer;
  TokenShard train;
  TokenShard val;
};
PreparedCorpus open_prepared_corpus(const std::filesystem::path& dir);

}  // namespace slope::data
