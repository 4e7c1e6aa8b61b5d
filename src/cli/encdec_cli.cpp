// `slope sample` and `slope eval` for encoder and seq2seq checkpoints (config.json with "arch").
//
//   sample, seq2seq:  words → phonemes, greedy or --beam N
//   eval, seq2seq:    word accuracy and phoneme error rate on a split of the prepared G2P corpus,
//                     per word-length bucket (CSV + plot of accuracy against word length, with
//                     the longest training word marked)
//   eval, encoder:    masked-token loss on the val split at each --lengths (CSV + plot)
#include "cli/encdec_cli.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <sstream>

#include "cli/plot.h"
#include "cli/train.h"  // set_threads
#include "data/pairs.h"
#include "data/prepare.h"
#include "files/atomic_file.h"
#include "files/json_file.h"
#include "files/read_file.h"
#include "io/checkpoint_files.h"
#include "io/encdec_checkpoint.h"
#include "model/encdec.h"
#include "model/seq2seq_decode.h"
#include "slope/error.h"  // slope::Error
#include "train/encdec_eval.h"

namespace slope::cli {

namespace fs = std::filesystem;

namespace {

// The vocabularies a seq2seq checkpoint carries (OUT/ and OUT/best/ both do).
struct G2pVocab {
  data::PairVocab src, tgt;
};
G2pVocab checkpoint_vocab(const fs::path& checkpoint) {
  return {data::read_pair_vocab(checkpoint / data::kSrcVocabFile),
          data::read_pair_vocab(checkpoint / data::kTgtVocabFile)};
}

model::EncDec<float> load_model(const fs::path& checkpoint) {
  const model::EncDecConfig config = io::read_encdec_config(checkpoint);
  model::EncDec<float> m(config);
  io::load_encdec(checkpoint, m);
  return m;
}

// Greedy or beam decoding with room for twice the longest source plus a few: a pronunciation
// has about as many phonemes as its word has letters, so only a runaway output reaches it.
model::DecodeOptions decode_options(int64_t beam, const std::vector<data::PairExample>& words) {
  int64_t longest = 0;
  for (const data::PairExample& e : words)
    longest = std::max<int64_t>(longest, static_cast<int64_t>(e.src.size()));
  model::DecodeOptions d;
  d.beam = beam, d.bos = data::kBos, d.eos = data::kEos;
  d.max_len = 2 * longest + 8;
  return d;
}

// --max-src-len of the run that wrote a checkpoint (0: every word, or not recorded).
int64_t trained_max_src_len(const fs::path& checkpoint) {
  std::error_code ec;
  const fs::path path = checkpoint / io::kTrainOptionsFile;
  if (!fs::exists(path, ec)) return 0;
  const nlohmann::json j = nlohmann::json::parse(files::read_file(path), nullptr, false);
  return j.is_object() && j.contains("max-src-len")
             ? files::json_as<int64_t>(j["max-src-len"]).value_or(0)
             : 0;
}

}  // namespace

int run_sample_encdec(const SampleOptions& o) {
  set_threads(o.threads);
  const model::EncDecConfig config = io::read_encdec_config(o.checkpoint);
  if (config.arch != model::Arch::seq2seq)
    throw Error(o.checkpoint.string() +
                " is a masked-LM encoder: it fills in masked tokens rather than generating text; "
                "measure it with `slope eval`");
  if (o.temperature != 1.0 || o.top_k != 0 || o.num_samples != 1 || o.stop_at_newline)
    throw Error(
        "--temperature, --top-k, --num-samples and --stop-at-newline are for GPT checkpoints; "
        "a seq2seq decodes --word greedily or with --beam");
  std::vector<std::string> words = o.words;
  if (words.empty() && !o.prompt.empty()) words.push_back(o.prompt);
  if (words.empty())
    throw Error("a seq2seq checkpoint needs input: pass --word WORD (repeatable) or --prompt");
  const G2pVocab vocab = checkpoint_vocab(o.checkpoint);
  model::EncDec<float> m = load_model(o.checkpoint);
  std::vector<data::PairExample> examples;
  for (const std::string& w : words) {
    data::PairExample e;
    e.word = w;
    e.src = data::encode_word(vocab.src, w);
    if (e.src.empty()) throw Error("--word \"" + w + "\" is empty");
    e.prons.push_back({});
    examples.push_back(std::move(e));
  }
  data::PairBatch batch;
  data::make_pair_batch(examples, 0, static_cast<int64_t>(examples.size()), batch);
  model::DecodeOptions d = decode_options(o.beam, examples);
  d.max_len = std::min(d.max_len, o.max_new_tokens);
  const std::vector<model::Decoded> out =
      model::decode(m, batch.src.data(), batch.src_lengths.data(), batch.B, batch.S, d);
  for (size_t i = 0; i < out.size(); ++i)
    std::printf("%s\t%s\t(log p %.3f)\n", words[i].c_str(), vocab.tgt.decode(out[i].ids).c_str(),
                out[i].logprob);
  return 0;
}

int run_eval_encdec(const EvalOptions& o) {
  set_threads(o.threads);
  if (o.json || o.stride != 0 || o.max_tokens != 0)
    throw Error("--json, --stride and --max-tokens are for GPT checkpoints; " +
                o.checkpoint.string() + " is an encoder or seq2seq (see slope eval --help)");
  const model::EncDecConfig config = io::read_encdec_config(o.checkpoint);
  model::EncDec<float> m = load_model(o.checkpoint);
  const fs::path csv_path = o.csv.empty() ? o.checkpoint / io::kEvalCsvFile : o.csv;
  fs::path png = o.png;
  if (png.empty()) png = fs::path(csv_path).replace_extension(".png");
  std::ostringstream csv;
  csv.precision(9);
  std::string plot_note;

  if (config.arch == model::Arch::encoder) {
    const data::PreparedCorpus corpus = data::open_prepared_corpus(o.data_dir);
    const int32_t mask_id = static_cast<int32_t>(corpus.tokenizer->vocab_size());
    if (mask_id + 1 != config.vocab_size)
      throw Error("the corpus in " + o.data_dir.string() + " has " + std::to_string(mask_id) +
                  " tokens, but the checkpoint was trained on " +
                  std::to_string(config.vocab_size - 1) + ": evaluate on its corpus");
    const int64_t batches = o.eval_batches;
    std::printf("%s (encoder, %s, trained on windows up to %lld), val split of %s\n",
                o.checkpoint.c_str(), model::position_name(config.pos),
                static_cast<long long>(config.block_size), o.data_dir.c_str());
    std::printf("%8s %10s %12s\n", "length", "mlm loss", "windows");
    csv << "length,windows,mlm_loss\n";
    PlotSeries series{model::position_name(config.pos), {}, {}};
    for (int64_t L : o.lengths) {
      if (static_cast<int64_t>(corpus.val.size()) < L ||
          (config.pos == model::Position::learned && L > config.block_size)) {
        std::printf("%8lld  skipped: %s\n", static_cast<long long>(L),
                    config.pos == model::Position::learned && L > config.block_size
                        ? "beyond the learned positions' block_size"
                        : "the val split is shorter");
        continue;
      }
      const double loss =
          train::mlm_loss(m, corpus.val, L, o.batch_size, batches, mask_id, o.mask_prob, o.seed);
      std::printf("%8lld %10.4f %12lld\n", static_cast<long long>(L), loss,
                  static_cast<long long>(batches * o.batch_size));
      csv << L << "," << batches * o.batch_size << "," << loss << "\n";
      series.x.push_back(static_cast<double>(L)), series.y.push_back(loss);
    }
    files::write_file_atomic(csv_path, csv.str());
    plot_note = series.x.empty()
                    ? "no length was evaluated: no plot"
                    : plot_png(png, "masked-token loss vs sequence length",
                               "sequence length (tokens)", "MLM loss (nats)", {series},
                               static_cast<double>(config.block_size), "longest training window");
  } else {
    const data::PreparedPairs pairs = data::open_prepared_pairs(o.data_dir);
    const G2pVocab vocab = checkpoint_vocab(o.checkpoint);
    if (vocab.src.tokens != pairs.src_vocab.tokens || vocab.tgt.tokens != pairs.tgt_vocab.tokens)
      throw Error("the corpus in " + o.data_dir.string() +
                  " has other vocabularies than the checkpoint " + o.checkpoint.string() +
                  ": evaluate on the corpus it was trained on");
    const std::vector<data::PairExample>* split = &pairs.test;
    if (o.split == "val") split = &pairs.val;
    if (o.split == "train") split = &pairs.train;
    std::vector<data::PairExample> examples = *split;
    if (o.max_words > 0 && static_cast<int64_t>(examples.size()) > o.max_words)
      examples.resize(static_cast<size_t>(o.max_words));
    // The longest word trained on: the run's --max-src-len (train_options.json) cuts the split.
    const int64_t max_src_len = trained_max_src_len(o.checkpoint);
    int64_t longest_train = 0;
    for (const data::PairExample& e : pairs.train) {
      const int64_t n = static_cast<int64_t>(e.src.size());
      if (max_src_len == 0 || n <= max_src_len) longest_train = std::max(longest_train, n);
    }
    if (config.pos == model::Position::learned)
      examples.erase(std::remove_if(examples.begin(), examples.end(),
                                    [&](const data::PairExample& e) {
                                      return static_cast<int64_t>(e.src.size()) > config.block_size;
                                    }),
                     examples.end());
    if (examples.empty()) throw Error("no word of the " + o.split + " split to decode");
    const model::DecodeOptions d = decode_options(o.beam, examples);
    const bool tty = isatty(fileno(stderr));
    const train::G2pReport r = train::evaluate_g2p(
        m, examples, vocab.tgt, d, o.batch_size, o.bucket_width, [&](int64_t done, int64_t n) {
          if (tty)
            std::fprintf(stderr, "\rdecoding %lld/%lld words", static_cast<long long>(done),
                         static_cast<long long>(n));
        });
    if (tty) std::fprintf(stderr, "\n");
    std::printf("%s (seq2seq, %s), %s split of %s: %lld words, %s\n", o.checkpoint.c_str(),
                model::position_name(config.pos), o.split.c_str(), o.data_dir.c_str(),
                static_cast<long long>(r.all.words),
                o.beam > 1 ? ("beam " + std::to_string(o.beam)).c_str() : "greedy");
    std::printf("%12s %8s %10s %8s\n", "word chars", "words", "word acc", "PER");
    csv << "min_chars,max_chars,words,correct,word_accuracy,phoneme_errors,ref_phonemes,per\n";
    PlotSeries series{std::string(model::position_name(config.pos)) + " word accuracy", {}, {}};
    for (const train::G2pBucket& b : r.buckets) {
      const std::string range = std::to_string(b.min_chars) + "-" + std::to_string(b.max_chars);
      std::printf("%12s %8lld %9.2f%% %7.2f%%%s\n", range.c_str(), static_cast<long long>(b.words),
                  100 * b.accuracy(), 100 * b.per(),
                  b.min_chars > longest_train ? "  (longer than any training word)" : "");
      csv << b.min_chars << "," << b.max_chars << "," << b.words << "," << b.correct << ","
          << b.accuracy() << "," << b.edits << "," << b.ref_phonemes << "," << b.per() << "\n";
      series.x.push_back(0.5 * static_cast<double>(b.min_chars + b.max_chars));
      series.y.push_back(100 * b.accuracy());
    }
    std::printf("%12s %8lld %9.2f%% %7.2f%%\n", "all", static_cast<long long>(r.all.words),
                100 * r.all.accuracy(), 100 * r.all.per());
    csv << "0,0," << r.all.words << "," << r.all.correct << "," << r.all.accuracy() << ","
        << r.all.edits << "," << r.all.ref_phonemes << "," << r.all.per() << "\n";
    files::write_file_atomic(csv_path, csv.str());
    if (!o.predictions.empty()) {
      std::ostringstream tsv;
      tsv << "word\tpredicted\tclosest_reference\tcorrect\n";
      for (const auto& e : r.examples)
        tsv << e.word << "\t" << e.predicted << "\t" << e.reference << "\t" << e.correct << "\n";
      files::write_file_atomic(o.predictions, tsv.str());
      std::printf("wrote %s\n", o.predictions.c_str());
    }
    plot_note = plot_png(png, "G2P word accuracy vs word length (" + o.split + ")",
                         "word length (characters, bucket centre)", "word accuracy (%)", {series},
                         static_cast<double>(longest_train), "longest training word");
  }
  std::printf("wrote %s%s\n", csv_path.c_str(),
              plot_note.empty() ? (" and " + png.string()).c_str() : "");
  if (!plot_note.empty()) std::fprintf(stderr, "slope eval: %s\n", plot_note.c_str());
  return 0;
}

}  // namespace slope::cli
