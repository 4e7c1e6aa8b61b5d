#include "cli/prepare.h"

#include <CLI/CLI.hpp>
#include <cstdio>
#include <map>
#include <string>

#include "data/pairs.h"

namespace slope::cli {
namespace {

// --task g2p holds out fewer words: the dictionary is large and every word is its own example.
constexpr double kG2pDefaultValFraction = 0.05;

std::string shortest(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

int run_prepare_g2p(const data::PrepareOptions& o) {
  data::G2pPrepareOptions g;
  g.input = o.inputs.at(0);
  g.out_dir = o.out_dir;
  g.val_fraction = o.val_fraction;
  g.test_fraction = o.test_fraction;
  g.seed = o.seed;
  g.keep_stress = o.keep_stress;
  g.force = o.force;
  const data::G2pPrepareResult r = data::prepare_g2p(g);
  const auto u = [](uint64_t v) { return static_cast<unsigned long long>(v); };
  std::printf("prepared %s: g2p pairs from %s, stress %s\n", o.out_dir.c_str(), g.input.c_str(),
              g.keep_stress ? "kept" : "stripped");
  std::printf("  source vocab %d (<unk> + characters), target vocab %d (<bos>, <eos> + phonemes)\n",
              r.src_vocab_size, r.tgt_vocab_size);
  std::printf("  train.bin  %llu words, %llu pronunciations\n", u(r.train_words), u(r.train_prons));
  std::printf("  val.bin    %llu words, %llu pronunciations\n", u(r.val_words), u(r.val_prons));
  std::printf("  test.bin   %llu words, %llu pronunciations\n", u(r.test_words), u(r.test_prons));
  std::printf("  %llu dictionary entries", u(r.entries));
  if (r.duplicate_prons > 0) {
    std::printf(" (%llu dropped: equal to another pronunciation of their word%s)",
                u(r.duplicate_prons), g.keep_stress ? "" : " once stress is stripped");
  }
  std::printf("\n  longest word \"%s\" (%lld characters), longest pronunciation %lld phonemes\n",
              r.longest_word.c_str(), static_cast<long long>(r.longest_chars),
              static_cast<long long>(r.longest_pron));
  if (r.unknown_chars > 0) {
    std::printf("  %llu val/test character%s unseen in train, encoded as <unk>\n",
                u(r.unknown_chars), r.unknown_chars == 1 ? "" : "s");
  }
  return 0;
}

}  // namespace

void add_prepare_options(CLI::App& app, data::PrepareOptions& o) {
  app.description(
      "Turn text files into what `slope train` reads: a tokenizer (DIR/tokenizer/), token "
      "shards DIR/train.bin and DIR/val.bin, and DIR/meta.json. The tokenizer is built on the "
      "training split only. With --task g2p, turn the CMU Pronouncing Dictionary into "
      "word/pronunciation pairs for an encoder-decoder instead. Nothing is written unless every "
      "step succeeds.");
  app.footer(
      "Tasks (--task):\n"
      "  lm     a text corpus for language models (the default)\n"
      "  g2p    grapheme-to-phoneme pairs from one cmudict file (\"word PH1 PH2 ...\" lines,\n"
      "         alternates \"word(2)\" grouped with their word): DIR/src_vocab.json (<unk> +\n"
      "         the training words' characters), DIR/tgt_vocab.json (<bos>, <eos> + phonemes),\n"
      "         pair shards DIR/train.bin, val.bin, test.bin and DIR/meta.json. Split by word,\n"
      "         so every pronunciation of a word lands in the same split\n"
      "Splits (--split, lm):\n"
      "  lines  each non-empty line is a document (a name, a word); a seeded shuffle picks the\n"
      "         val fraction of them\n"
      "  tail   running text; val is the end of each file, cut at the line boundary nearest\n"
      "         to (1 - f) of it\n"
      "  auto   lines when every line is a single word, else tail\n"
      "Tokenizers (lm):\n"
      "  char   one token per Unicode character of the training text, plus <unk> (id 0) for\n"
      "         characters it never saw\n"
      "  bpe    SentencePiece BPE with byte fallback: any text encodes, decoding is exact\n"
      "  gpt2   GPT-2's byte-level BPE from --tokenizer-files DIR: Hugging Face's tokenizer.json,\n"
      "         or vocab.json + merges.txt (GPT-2's own files); <|endoftext|> is a special token\n"
      "  byte-bpe  a new byte-level BPE of --vocab-size tokens trained on the text (256 byte\n"
      "         tokens, the merges, <|endoftext|> last), saved as a tokenizer.json that Hugging\n"
      "         Face tokenizers loads and that gives the same ids\n"
      "Examples:\n"
      "  bash scripts/fetch_corpora.sh --out data/raw\n"
      "  slope prepare --input data/raw/names.txt --out data/names\n"
      "  slope prepare --input data/raw/bible.txt --out data/bible --tokenizer bpe --vocab-size "
      "4096\n"
      "  slope prepare --input data/raw/bible.txt --out data/bible-gpt2 --tokenizer gpt2 "
      "--tokenizer-files gpt2/\n"
      "  slope prepare --task g2p --input data/raw/cmudict.txt --out data/g2p\n");
  const std::map<std::string, data::PrepareTask> tasks = {{"lm", data::PrepareTask::kLm},
                                                          {"g2p", data::PrepareTask::kG2p}};
  app.add_option("--task", o.task, "lm | g2p (see below)")
      ->transform(CLI::CheckedTransformer(tasks, CLI::ignore_case).description(""))
      ->type_name("TASK")
      ->default_str("lm");
  app.add_option("--input", o.inputs,
                 "UTF-8 text files (one or more); each is split on its own. g2p: one cmudict file")
      ->required()
      ->expected(1, -1)
      ->type_name("PATH");
  app.add_option("--out", o.out_dir, "output directory DIR (created if missing)")
      ->required()
      ->type_name("DIR");
  const std::map<std::string, data::TokenizerKind> kinds = {
      {"char", data::TokenizerKind::kChar},
      {"bpe", data::TokenizerKind::kBpe},
      {"gpt2", data::TokenizerKind::kGpt2},
      {"byte-bpe", data::TokenizerKind::kByteBpe}};
  CLI::Option* tokenizer =
      app.add_option("--tokenizer", o.tokenizer, "char | bpe | gpt2 | byte-bpe (see below)")
          ->transform(CLI::CheckedTransformer(kinds, CLI::ignore_case).description(""))
          ->type_name("KIND")
          ->default_str("char");
  CLI::Option* vocab_size =
      app.add_option("--vocab-size", o.vocab_size,
                     "bpe, byte-bpe: vocabulary size, including the 256 byte pieces and the "
                     "special ones (bpe: 3, byte-bpe: 1) (default " +
                         std::to_string(data::kDefaultBpeVocab) + ")")
          ->check(CLI::Range(1u, 1u << 24).description(""))
          ->type_name("N");
  CLI::Option* tokenizer_files =
      app.add_option("--tokenizer-files", o.tokenizer_files,
                     "gpt2: the directory of a GPT-2 tokenizer (tokenizer.json, or vocab.json + "
                     "merges.txt, as save_pretrained writes them)")
          ->check(CLI::ExistingDirectory)
          ->type_name("DIR");
  CLI::Option* val_fraction =
      app.add_option("--val-fraction", o.val_fraction,
                     "fraction held out for validation, in [0, 1): of each file (default " +
                         shortest(o.val_fraction) + "); g2p: of the words (default " +
                         shortest(kG2pDefaultValFraction) + ")");
  CLI::Option* test_fraction =
      app.add_option("--test-fraction", o.test_fraction,
                     "g2p: fraction of the words held out for test, in [0, 1); val + test < 1")
          ->capture_default_str();
  CLI::Option* keep_stress = app.add_flag(
      "--keep-stress", o.keep_stress,
      "g2p: keep the vowels' stress digits (AH0, AH1, AH2 stay apart; default: all become AH)");
  const std::map<std::string, data::SplitMode> splits = {{"auto", data::SplitMode::kAuto},
                                                         {"lines", data::SplitMode::kLines},
                                                         {"tail", data::SplitMode::kTail}};
  CLI::Option* split =
      app.add_option("--split", o.split, "auto | lines | tail (see below)")
          ->transform(CLI::CheckedTransformer(splits, CLI::ignore_case).description(""))
          ->type_name("MODE")
          ->default_str("auto");
  app.add_option("--seed", o.seed, "seed of the split's shuffle (lm: the lines split)")
      ->capture_default_str();
  CLI::Option* threads =
      app.add_option("--threads", o.num_threads, "BPE training threads (0: all cores)")
          ->check(CLI::Range(0, 1024))
          ->capture_default_str();
  app.add_flag("--force", o.force, "replace DIR's prepared data if it has some");

  // Flags of the other task are refused rather than ignored.
  app.final_callback([&o, tokenizer, tokenizer_files, vocab_size, val_fraction, test_fraction,
                      keep_stress, split, threads] {
    if (o.task == data::PrepareTask::kLm) {
      for (const CLI::Option* g2p_only : {test_fraction, keep_stress}) {
        if (g2p_only->count() > 0) {
          throw CLI::ValidationError(g2p_only->get_name(), "applies to --task g2p only");
        }
      }
      return;
    }
    for (const CLI::Option* lm_only : {tokenizer, tokenizer_files, vocab_size, split, threads}) {
      if (lm_only->count() > 0) {
        throw CLI::ValidationError(lm_only->get_name(), "applies to --task lm only");
      }
    }
    if (o.inputs.size() != 1) {
      throw CLI::ValidationError("--input", "--task g2p reads one dictionary file, got " +
                                                std::to_string(o.inputs.size()));
    }
    if (val_fraction->count() == 0) o.val_fraction = kG2pDefaultValFraction;
  });
}

int run_prepare(const data::PrepareOptions& o) {
  if (o.task == data::PrepareTask::kG2p) return run_prepare_g2p(o);
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
