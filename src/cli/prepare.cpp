#include "cli/prepare.h"

#include <CLI/CLI.hpp>
#include <cstdio>
#include <map>
#include <string>

namespace slope::cli {

void add_prepare_options(CLI::App& app, data::PrepareOptions& o) {
  app.description(
      "Turn text files into what `slope train` reads: a tokenizer (DIR/tokenizer/), token "
      "shards DIR/train.bin and DIR/val.bin, and DIR/meta.json. The tokenizer is built on the "
      "training split only. Nothing is written unless every step succeeds.");
  app.footer(
      "Splits (--split):\n"
      "  lines  each non-empty line is a document (a name, a word); a seeded shuffle picks the\n"
      "         val fraction of them\n"
      "  tail   running text; val is the end of each file, cut at the line boundary nearest\n"
      "         to (1 - f) of it\n"
      "  auto   lines when every line is a single word, else tail\n"
      "Tokenizers:\n"
      "  char   one token per Unicode character of the training text, plus <unk> (id 0) for\n"
      "         characters it never saw\n"
      "  bpe    SentencePiece BPE with byte fallback: any text encodes, decoding is exact\n"
      "Examples:\n"
      "  bash scripts/fetch_corpora.sh --out data/raw\n"
      "  slope prepare --input data/raw/names.txt --out data/names\n"
      "  slope prepare --input data/raw/bible.txt --out data/bible --tokenizer bpe --vocab-size "
      "4096\n");
  app.add_option("--input", o.inputs, "UTF-8 text files (one or more); each is split on its own")
      ->required()
      ->expected(1, -1)
      ->type_name("PATH");
  app.add_option("--out", o.out_dir, "output directory DIR (created if missing)")
      ->required()
      ->type_name("DIR");
  const std::map<std::string, data::TokenizerKind> kinds = {{"char", data::TokenizerKind::kChar},
                                                            {"bpe", data::TokenizerKind::kBpe}};
  app.add_option("--tokenizer", o.tokenizer, "char | bpe")
      ->transform(CLI::CheckedTransformer(kinds, CLI::ignore_case).description(""))
      ->type_name("KIND")
      ->default_str("char");
  app.add_option("--vocab-size", o.vocab_size,
                 "BPE vocabulary size, including 3 special and 256 byte pieces (default " +
                     std::to_string(data::kDefaultBpeVocab) + ")")
      ->check(CLI::Range(1u, 1u << 24).description(""))
      ->type_name("N");
  app.add_option("--val-fraction", o.val_fraction,
                 "fraction of each file held out for validation, in [0, 1)")
      ->capture_default_str();
  const std::map<std::string, data::SplitMode> splits = {{"auto", data::SplitMode::kAuto},
                                                         {"lines", data::SplitMode::kLines},
                                                         {"tail", data::SplitMode::kTail}};
  app.add_option("--split", o.split, "auto | lines | tail (see below)")
      ->transform(CLI::CheckedTransformer(splits, CLI::ignore_case).description(""))
      ->type_name("MODE")
      ->default_str("auto");
  app.add_option("--seed", o.seed, "seed of the lines split's shuffle")->capture_default_str();
  app.add_option("--threads", o.num_threads, "BPE training threads (0: all cores)")
      ->check(CLI::Range(0, 1024))
      ->capture_default_str();
  app.add_flag("--force", o.force, "replace DIR's prepared data if it has some");
}

int run_prepare(const data::PrepareOptions& o) {
  const data::PrepareResult r = data::prepare_corpus(o);
  std::printf("prepared %s: %s tokenizer, vocab %u, uint%u tokens\n", o.out_dir.c_str(),
              r.tokenizer_kind.c_str(), r.vocab_size, r.token_bytes * 8);
  std::printf("  train.bin  %llu tokens\n", static_cast<unsigned long long>(r.train_tokens));
  std::printf("  val.bin    %llu tokens", static_cast<unsigned long long>(r.val_tokens));
  if (r.val_unknown > 0) {
    std::printf(" (%llu character%s unseen in train, encoded as <unk>)",
                static_cast<unsigned long long>(r.val_unknown), r.val_unknown == 1 ? "" : "s");
  }
  std::printf("\n");
  for (const data::SourceSummary& s : r.sources) {
    std::printf("  %s: %llu bytes, split %s: %llu train / %llu val\n", s.path.c_str(),
                static_cast<unsigned long long>(s.bytes), data::split_mode_name(s.split),
                static_cast<unsigned long long>(s.train_bytes),
                static_cast<unsigned long long>(s.val_bytes));
  }
  return 0;
}

}  // namespace slope::cli
