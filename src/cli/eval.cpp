#include "cli/eval.h"

#include <CLI/CLI.hpp>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/encdec_cli.h"
#include "cli/plot.h"
#include "cli/sample.h"  // checkpoint_tokenizer_dir
#include "cli/train.h"   // set_threads
#include "files/atomic_file.h"
#include "files/read_file.h"
#include "data/prepare.h"
#include "io/checkpoint_files.h"
#include "io/encdec_checkpoint.h"
#include "io/gpt_checkpoint.h"
#include "slope/error.h"  // slope::Error
#include "train/length_eval.h"

namespace slope::cli {

namespace fs = std::filesystem;

void add_eval_options(CLI::App& app, EvalOptions& o) {
  app.description(
      "Loss and perplexity of a GPT checkpoint at several context lengths on the validation "
      "split of a prepared corpus: does the model extrapolate past the length it was trained "
      "on? Encoders: masked-token loss per length; seq2seq: word accuracy and phoneme error "
      "rate per word length.");
  app.footer(
      "Windows: non-overlapping by default (every token scored once, early positions see\n"
      "little context); --stride S slides windows by S and scores only the last S tokens of\n"
      "each after the first (Press et al.'s sliding evaluation, L/S times the work).\n"
      "Lengths beyond block_size are skipped for learned positions (no wpe rows there).\n"
      "Writes CHECKPOINT/eval.csv (--csv) and a plot beside it (--png).\n"
      "Encoder checkpoints (--arch encoder): masked-token loss on the val split at each\n"
      "--lengths. Seq2seq (G2P) checkpoints: word accuracy and phoneme error rate on --split,\n"
      "per word-length bucket, decoded greedily or with --beam; the CSV has one row per bucket.\n"
      "Examples:\n"
      "  slope eval --checkpoint out/names/best --data data/names --lengths 64,128,256\n"
      "  slope eval --checkpoint out/mlm/best --data data/bible --lengths 64,128,256\n"
      "  slope eval --checkpoint out/g2p/best --data data/g2p --beam 5 --predictions p.tsv\n");
  app.add_option("--checkpoint", o.checkpoint, "checkpoint DIR")->required()->type_name("DIR");
  app.add_option("--data", o.data_dir, "prepared corpus DIR (its val.bin; seq2seq: --split)")
      ->required()
      ->type_name("DIR");
  app.add_option("--lengths", o.lengths, "context lengths, comma-separated")
      ->delimiter(',')
      ->expected(1, -1)
      ->type_name("L,L,...")
      ->capture_default_str();
  app.add_option("--stride", o.stride, "sliding windows with this stride (0: non-overlapping)")
      ->capture_default_str();
  app.add_option("--max-tokens", o.max_tokens,
                 "score at most about this many tokens per length "
                 "(0: all)")
      ->capture_default_str();
  app.add_option("--csv", o.csv, "CSV output (default CHECKPOINT/eval.csv)")->type_name("PATH");
  app.add_option("--png", o.png, "plot output (default: the CSV path with .png)")
      ->type_name("PATH");
  app.add_flag("--json", o.json, "print JSON instead of a table (GPT checkpoints)");
  app.add_option("--split", o.split, "seq2seq: the split to decode")
      ->check(CLI::IsMember({"test", "val", "train"}))
      ->capture_default_str();
  app.add_option("--beam", o.beam, "seq2seq: beam width (1: greedy)")
      ->check(CLI::Range(int64_t{1}, int64_t{64}))
      ->capture_default_str();
  app.add_option("--bucket-width", o.bucket_width, "seq2seq: word-length bucket, characters")
      ->check(CLI::Range(int64_t{1}, int64_t{1000}))
      ->capture_default_str();
  app.add_option("--batch-size", o.batch_size, "encoder and seq2seq: sequences per batch")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20))
      ->capture_default_str();
  app.add_option("--max-words", o.max_words, "seq2seq: decode only the first N words (0: all)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 40))
      ->capture_default_str();
  app.add_option("--predictions", o.predictions,
                 "seq2seq: write every word's output (TSV: word, predicted, closest reference, "
                 "correct)")
      ->type_name("PATH");
  app.add_option("--mask-prob", o.mask_prob,
                 "encoder: fraction of each window's tokens masked and scored")
      ->check(CLI::Range(0.001, 0.999))
      ->capture_default_str();
  app.add_option("--eval-batches", o.eval_batches, "encoder: batches per length")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 30))
      ->capture_default_str();
  app.add_option("--threads", o.threads, "threads (0: all cores or OMP_NUM_THREADS)")
      ->check(CLI::Range(0, 1024))
      ->capture_default_str();
}

int run_eval(const EvalOptions& o) {
  set_threads(o.threads);
  check_checkpoint_dir(o.checkpoint);
  if (io::is_encdec_checkpoint(o.checkpoint)) return run_eval_encdec(o);
  const model::GptConfig config = io::read_gpt_config(o.checkpoint / io::kConfigFile);
  const data::PreparedCorpus corpus = data::open_prepared_corpus(o.data_dir);
  const fs::path tok = checkpoint_tokenizer_dir(o.checkpoint) / data::kTokenizerMetaFile;
  if (files::read_file(tok) != files::read_file(o.data_dir / data::kTokenizerDir / data::kTokenizerMetaFile))
    throw Error("the corpus in " + o.data_dir.string() +
                " was prepared with another tokenizer "
                "than the checkpoint " +
                o.checkpoint.string() +
                " was trained with: evaluate on the corpus it was trained on");
  model::Gpt<float> gpt(config);
  io::load_gpt(o.checkpoint, gpt);

  train::LengthEvalOptions eo;
  eo.lengths = o.lengths, eo.stride = o.stride, eo.max_tokens = o.max_tokens;
  const std::vector<train::LengthEvalRow> rows = train::evaluate_lengths(gpt, corpus.val, eo);

  std::ostringstream csv;
  csv.precision(9);
  csv << "length,windows,tokens,loss,perplexity\n";
  PlotSeries series{std::string(model::position_name(config.pos)) + ", block_size " +
                        std::to_string(config.block_size),
                    {},
                    {}};
  for (const train::LengthEvalRow& r : rows) {
    if (r.skipped) continue;
    csv << r.length << "," << r.windows << "," << r.tokens << "," << r.loss << "," << r.perplexity
        << "\n";
    series.x.push_back(static_cast<double>(r.length));
    series.y.push_back(r.perplexity);
  }
  const fs::path csv_path = o.csv.empty() ? o.checkpoint / io::kEvalCsvFile : o.csv;
  files::write_file_atomic(csv_path, csv.str());
  fs::path png = o.png;
  if (png.empty()) png = fs::path(csv_path).replace_extension(".png");
  const std::string windows = o.stride > 0 ? "sliding windows, stride " + std::to_string(o.stride)
                                           : std::string("non-overlapping windows");
  const std::string plot_note =
      series.x.empty() ? "no length was evaluated: no plot"
                       : plot_png(png, "perplexity vs context length (" + windows + ")",
                                  "context length (tokens)", "perplexity", {series},
                                  static_cast<double>(config.block_size), "block_size");

  if (o.json) {
    nlohmann::ordered_json j;
    j["checkpoint"] = o.checkpoint.string();
    j["pos"] = model::position_name(config.pos);
    j["block_size"] = config.block_size;
    j["stride"] = o.stride;
    j["val_tokens"] = corpus.val.size();
    j["rows"] = nlohmann::ordered_json::array();
    for (const train::LengthEvalRow& r : rows) {
      nlohmann::ordered_json row = {{"length", r.length}, {"skipped", r.skipped}};
      if (r.skipped) {
        row["note"] = r.note;
      } else {
        row["windows"] = r.windows, row["tokens"] = r.tokens;
        row["loss"] = r.loss, row["perplexity"] = r.perplexity;
      }
      j["rows"].push_back(row);
    }
    j["csv"] = csv_path.string();
    j["png"] =
        plot_note.empty() ? nlohmann::ordered_json(png.string()) : nlohmann::ordered_json(nullptr);
    std::printf("%s\n", j.dump().c_str());
  } else {
    std::printf("%s (%s, block_size %lld), val split of %s: %llu tokens, %s\n",
                o.checkpoint.c_str(), model::position_name(config.pos),
                static_cast<long long>(config.block_size), o.data_dir.c_str(),
                static_cast<unsigned long long>(corpus.val.size()), windows.c_str());
    std::printf("%8s %8s %9s %8s %10s\n", "length", "windows", "tokens", "loss", "perplexity");
    for (const train::LengthEvalRow& r : rows) {
      if (r.skipped)
        std::printf("%8lld  skipped: %s\n", static_cast<long long>(r.length), r.note.c_str());
      else
        std::printf("%8lld %8lld %9lld %8.4f %10.3f\n", static_cast<long long>(r.length),
                    static_cast<long long>(r.windows), static_cast<long long>(r.tokens), r.loss,
                    r.perplexity);
    }
    std::printf("wrote %s%s\n", csv_path.c_str(),
                plot_note.empty() ? (" and " + png.string()).c_str() : "");
  }
  if (!plot_note.empty()) std::fprintf(stderr, "slope eval: %s\n", plot_note.c_str());
  return 0;
}

}  // namespace slope::cli
