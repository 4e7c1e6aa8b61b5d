#include "data/prepare.h"

#include <algorithm>
#include <array>
#include <system_error>

#include "data/byte_bpe_tokenizer.h"
#include "data/staged_dir.h"
#include "data/utf8.h"
#include "files/atomic_file.h"
#include "files/json_file.h"
#include "files/read_file.h"
#include "slope/attention.h"

namespace slope::data {
namespace fs = std::filesystem;
namespace {

constexpr const char* kMetaFile = "meta.json";
constexpr const char* kTrainFile = "train.bin";
constexpr const char* kValFile = "val.bin";
// Moved into place in this order: meta.json last, so its presence means the rest is there.
constexpr std::array<const char*, 4> kOutputs = {kTokenizerDir, kTrainFile, kValFile, kMetaFile};

void check_options(const PrepareOptions& o) {
  if (o.task != PrepareTask::kLm) throw Error("prepare_corpus prepares text: use prepare_g2p");
  if (o.inputs.empty()) throw Error("no input files: pass --input PATH (one or more)");
  if (o.out_dir.empty()) throw Error("no output directory: pass --out DIR");
  if (!(o.val_fraction >= 0.0 && o.val_fraction < 1.0)) {
    throw Error("--val-fraction must be in [0, 1), got " + std::to_string(o.val_fraction));
  }
  if (o.tokenizer == TokenizerKind::kChar && o.vocab_size != 0) {
    throw Error(
        "--vocab-size applies to --tokenizer bpe and byte-bpe; a char vocabulary is the set of "
        "characters in the text");
  }
  if (o.tokenizer == TokenizerKind::kGpt2 && o.vocab_size != 0)
    throw Error("--vocab-size does not apply to --tokenizer gpt2: its vocabulary is its files'");
  if (o.tokenizer == TokenizerKind::kGpt2 && o.tokenizer_files.empty())
    throw Error(
        "--tokenizer gpt2 needs --tokenizer-files DIR (a directory with tokenizer.json, or "
        "vocab.json and merges.txt)");
  if (o.tokenizer != TokenizerKind::kGpt2 && !o.tokenizer_files.empty())
    throw Error("--tokenizer-files applies to --tokenizer gpt2 only");
}

nlohmann::ordered_json meta_json(const PrepareOptions& o, const PrepareResult& r) {
  nlohmann::ordered_json sources = nlohmann::ordered_json::array();
  for (const SourceSummary& s : r.sources) {
    sources.push_back({{"path", s.path.string()},
                       {"bytes", s.bytes},
                       {"split", split_mode_name(s.split)},
                       {"train_bytes", s.train_bytes},
                       {"val_bytes", s.val_bytes}});
  }
  nlohmann::ordered_json j;
  j["format"] = "slope-prepared-corpus";
  j["version"] = kPreparedFormatVersion;
  j["tokenizer"] = {
      {"kind", r.tokenizer_kind}, {"vocab_size", r.vocab_size}, {"dir", kTokenizerDir}};
  j["token_bytes"] = r.token_bytes;
  j["train"] = {{"file", kTrainFile}, {"tokens", r.train_tokens}};
  j["val"] = {{"file", kValFile}, {"tokens", r.val_tokens}};
  if (r.tokenizer_kind == "char") j["val_unknown_chars"] = r.val_unknown;
  j["val_fraction"] = o.val_fraction;
  j["seed"] = o.seed;
  j["sources"] = sources;
  return j;
}

// Reads, checks and splits every input; fills result.sources.
void read_and_split(const PrepareOptions& o, std::string& train_text, std::string& val_text,
                    PrepareResult& result) {
  for (const fs::path& path : o.inputs) {
    const std::string text = files::read_file(path);
    if (text.find_first_not_of(" \t\r\n\f\v") == std::string::npos) {
      throw Error("no text in " + path.string() + (text.empty() ? " (the file is empty)" : ""));
    }
    utf8_validate(text, path.string());
    SplitText split = split_text(text, o.val_fraction, o.split, o.seed);
    result.sources.push_back({path, text.size(), split.train.size(), split.val.size(), split.mode});
    train_text += split.train;
    val_text += split.val;
  }
  if (train_text.empty()) throw Error("the training split is empty: lower --val-fraction");
  if (o.val_fraction > 0 && val_text.empty()) {
    throw Error(
        "the validation split is empty (the text is too short to split): give more text "
        "or pass --val-fraction 0");
  }
}

std::unique_ptr<Tokenizer> build_tokenizer(const PrepareOptions& o, const std::string& train_text) {
  if (o.tokenizer == TokenizerKind::kChar) {
    return std::make_unique<CharTokenizer>(CharTokenizer::train(train_text));
  }
  if (o.tokenizer == TokenizerKind::kGpt2)
    return std::make_unique<ByteLevelBpeTokenizer>(ByteLevelBpeTokenizer::load(o.tokenizer_files));
  if (o.tokenizer == TokenizerKind::kByteBpe) {
    ByteBpeTrainOptions byte_bpe;
    byte_bpe.vocab_size = o.vocab_size != 0 ? o.vocab_size : kDefaultBpeVocab;
    return std::make_unique<ByteLevelBpeTokenizer>(
        ByteLevelBpeTokenizer::train(train_text, byte_bpe));
  }
  BpeTrainOptions bpe;
  bpe.vocab_size = o.vocab_size != 0 ? o.vocab_size : kDefaultBpeVocab;
  bpe.num_threads = o.num_threads;
  return std::make_unique<BpeTokenizer>(BpeTokenizer::train(train_text, bpe));
}

// Writes every output into DIR/.tmp-prepare-XXXXXX, then moves them into DIR, meta.json last.
void stage_and_commit(const PrepareOptions& o, const Tokenizer& tokenizer,
                      const std::vector<uint32_t>& train_ids, const std::vector<uint32_t>& val_ids,
                      const PrepareResult& result) {
  StagedDir staging(o.out_dir, {kOutputs.begin(), kOutputs.end()});
  tokenizer.save(staging.path() / kTokenizerDir);
  write_token_shard(staging.path() / kTrainFile, train_ids, result.vocab_size);
  write_token_shard(staging.path() / kValFile, val_ids, result.vocab_size);
  files::write_json_file(staging.path() / kMetaFile, meta_json(o, result));
  staging.commit(o.force);
}

}  // namespace

PrepareResult prepare_corpus(const PrepareOptions& o) {
  // Everything that can fail on bad input happens before anything is written.
  check_options(o);
  check_output_dir(o.out_dir, {kOutputs.begin(), kOutputs.end()}, o.force);
  PrepareResult result;
  std::string train_text, val_text;
  read_and_split(o, train_text, val_text, result);
  const std::unique_ptr<Tokenizer> tokenizer = build_tokenizer(o, train_text);
  const std::vector<uint32_t> train_ids = tokenizer->encode(train_text);
  const std::vector<uint32_t> val_ids = tokenizer->encode(val_text);
  result.tokenizer_kind = tokenizer->kind();
  result.vocab_size = tokenizer->vocab_size();
  result.token_bytes = token_width_for_vocab(result.vocab_size);
  result.train_tokens = train_ids.size();
  result.val_tokens = val_ids.size();
  if (o.tokenizer == TokenizerKind::kChar) {
    result.val_unknown =
        static_cast<uint64_t>(std::count(val_ids.begin(), val_ids.end(), CharTokenizer::kUnkId));
  }
  stage_and_commit(o, *tokenizer, train_ids, val_ids, result);
  return result;
}

PreparedCorpus open_prepared_corpus(const fs::path& dir) {
  const fs::path meta_path = dir / kMetaFile;
  std::error_code ec;
  if (!fs::exists(meta_path, ec)) {
    throw Error(dir.string() +
                " is not a prepared corpus (no meta.json): run `slope prepare "
                "--input FILE --out " +
                dir.string() + "` first");
  }
  const nlohmann::json meta = files::read_json_file(meta_path);
  if (meta.is_object() && meta.contains("format") &&
      files::json_as<std::string>(meta["format"]) == "slope-prepared-pairs")
    throw Error(dir.string() +
                " holds word pairs (slope prepare --task g2p): train them with --arch seq2seq, "
                "or give a text corpus");
  files::check_json_format(meta, "slope-prepared-corpus", kPreparedFormatVersion, meta_path);
  const auto tok = files::json_field<nlohmann::json>(meta, "tokenizer", meta_path);
  const auto train = files::json_field<nlohmann::json>(meta, "train", meta_path);
  const auto val = files::json_field<nlohmann::json>(meta, "val", meta_path);
  const fs::path tok_dir = files::json_name_in_dir(tok, "dir", meta_path, dir);
  const auto vocab = files::json_field<uint32_t>(tok, "vocab_size", meta_path);
  PreparedCorpus corpus{load_tokenizer(tok_dir),
                        TokenShard::open(files::json_name_in_dir(train, "file", meta_path, dir)),
                        TokenShard::open(files::json_name_in_dir(val, "file", meta_path, dir))};
  if (corpus.tokenizer->vocab_size() != vocab) {
    throw Error(meta_path.string() + ": vocab size " + std::to_string(vocab) +
                " but the tokenizer has " + std::to_string(corpus.tokenizer->vocab_size()) +
                ": run `slope prepare --force` again");
  }
  const std::pair<const TokenShard*, const nlohmann::json*> shards[] = {{&corpus.train, &train},
                                                                        {&corpus.val, &val}};
  for (const auto& [shard, part] : shards) {
    const auto tokens = files::json_field<uint64_t>(*part, "tokens", meta_path);
    if (shard->vocab_size() != vocab || shard->size() != tokens) {
      throw Error(shard->path().string() + " does not match " + meta_path.string() +
                  " (vocab size or token count differ): run `slope prepare --force` again");
    }
  }
  return corpus;
}

}  // namespace slope::data
