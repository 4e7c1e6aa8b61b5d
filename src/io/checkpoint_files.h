// Every file of a checkpoint directory, by name: the one place that spells them. The names are
// a public format (PyTorch users load model.safetensors + config.json; `--resume` reads the
// rest), so they never change.
//
//   `slope train --out OUT` writes
//
//   OUT/config.json             the model's config (io/gpt_checkpoint.h, io/encdec_checkpoint.h)
//   OUT/model.safetensors       the weights
//   OUT/optimizer.safetensors   AdamW's moments                       } a training checkpoint
//   OUT/train_state.json        step, batcher, dropout, checksums     } (train/train_state.h)
//   OUT/train_options.json      the run's flags (encoder and seq2seq runs)
//   OUT/tokenizer/              the corpus's tokenizer (GPT and encoder runs; data/tokenizer.h)
//   OUT/src_vocab.json,         the corpus's vocabularies (seq2seq runs; named by the corpus
//       tgt_vocab.json          format: data::kSrcVocabFile, data::kTgtVocabFile)
//   OUT/log.jsonl               one JSON line per eval (unless --log moves it)
//   OUT/origin.json             where the weights came from, when not from scratch: `slope
//                               import`, `slope surgery`, `slope train --init-from` (each
//                               keeps its source's origin inside its own, so the chain is whole)
//   OUT/best/                   the model with the lowest val loss: config, weights and what
//                               decoding needs (tokenizer/ or the vocabularies, train_options)
//
// and `slope eval --checkpoint DIR` adds DIR/eval.csv unless --csv moves it.
#pragma once

#include <filesystem>

namespace slope::io {

constexpr char kConfigFile[] = "config.json";
constexpr char kModelFile[] = "model.safetensors";
constexpr char kOptimizerFile[] = "optimizer.safetensors";
constexpr char kTrainStateFile[] = "train_state.json";
constexpr char kTrainOptionsFile[] = "train_options.json";
constexpr char kTokenizerDir[] = "tokenizer";
constexpr char kLogFile[] = "log.jsonl";
constexpr char kBestDir[] = "best";
constexpr char kEvalCsvFile[] = "eval.csv";
constexpr char kOriginFile[] = "origin.json";

// OUT/best/: where a run keeps its best model.
inline std::filesystem::path best_dir(const std::filesystem::path& out) { return out / kBestDir; }

// DIR/tokenizer/: the tokenizer a GPT or encoder checkpoint carries.
inline std::filesystem::path tokenizer_dir(const std::filesystem::path& checkpoint) {
  return checkpoint / kTokenizerDir;
}

}  // namespace slope::io
