#include "cli/convert.h"

#include <CLI/CLI.hpp>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <vector>

#include "cli/sample.h"  // checkpoint_tokenizer_dir
#include "data/byte_bpe_tokenizer.h"
#include "data/staged_dir.h"
#include "files/json_file.h"
#include "io/checkpoint_files.h"
#include "io/gpt_checkpoint.h"
#include "io/hf_gpt2.h"
#include "model/gpt_surgery.h"
#include "slope/error.h"

namespace slope::cli {
namespace fs = std::filesystem;
namespace {

// The files a made checkpoint holds, config.json last (its presence says the rest is there).
std::vector<std::string> outputs(bool with_tokenizer) {
  std::vector<std::string> names;
  if (with_tokenizer) names.push_back(io::kTokenizerDir);
  for (const char* n : {io::kOriginFile, io::kModelFile, io::kConfigFile}) names.push_back(n);
  return names;
}

// Writes gpt, the tokenizer (if any) and origin.json into `out`, all or nothing.
void write_made_checkpoint(const fs::path& out, const model::Gpt<float>& gpt,
                           const data::Tokenizer* tokenizer, const nlohmann::ordered_json& origin,
                           bool force) {
  data::StagedDir staging(out, outputs(tokenizer != nullptr));
  io::save_gpt(staging.path(), gpt);
  if (tokenizer) tokenizer->save(staging.path() / io::kTokenizerDir);
  files::write_json_file(staging.path() / io::kOriginFile, origin);
  staging.commit(force);
}

// A checkpoint's origin.json, or null when it has none (trained from scratch).
nlohmann::json read_origin(const fs::path& checkpoint) {
  std::error_code ec;
  const fs::path p = checkpoint / io::kOriginFile;
  return fs::exists(p, ec) ? files::read_json_file(p) : nlohmann::json(nullptr);
}

}  // namespace

int import_hf_gpt2(const fs::path& source, const fs::path& out) {
  const model::Gpt<float> gpt = io::read_hf_gpt2(source);
  const model::GptConfig& c = gpt.config();
  std::unique_ptr<data::Tokenizer> tokenizer;
  std::string tokenizer_note = "no tokenizer files in the source";
  std::error_code ec;
  if (fs::exists(source / data::kTokenizerMetaFile, ec) ||
      fs::exists(source / data::kHfVocabFile, ec)) {
    auto t =
        std::make_unique<data::ByteLevelBpeTokenizer>(data::ByteLevelBpeTokenizer::load(source));
    if (static_cast<int64_t>(t->vocab_size()) == c.vocab_size) {
      tokenizer = std::move(t);
      tokenizer_note = "tokenizer/ (byte-level BPE) copied";
    } else {
      tokenizer_note = "tokenizer not copied: it has " + std::to_string(t->vocab_size()) +
                       " tokens, the model " + std::to_string(c.vocab_size);
    }
  }
  nlohmann::ordered_json origin;
  origin["made_by"] = "slope import";
  origin["from"] = "hf-gpt2";
  origin["source"] = fs::absolute(source).string();
  write_made_checkpoint(out, gpt, tokenizer.get(), origin, /*force=*/true);
  std::printf("imported %s (hf-gpt2) into %s: L%lld H%lld C%lld, vocab %lld, block_size %lld, %s\n",
              source.c_str(), out.c_str(), static_cast<long long>(c.n_layer),
              static_cast<long long>(c.n_head), static_cast<long long>(c.n_embd),
              static_cast<long long>(c.vocab_size), static_cast<long long>(c.block_size),
              model::activation_name(c.activation));
  std::printf("  %s\n", tokenizer_note.c_str());
  return 0;
}

void add_surgery_options(CLI::App& app, SurgeryOptions& o) {
  app.description(
      "Composer's ALiBi surgery: turn a GPT checkpoint with learned positions into an ALiBi "
      "one. wpe is dropped, Press's slopes are installed (fixed with --pos alibi; trainable, "
      "started there, with --pos alibi-learned) and every other weight is copied bit for bit. "
      "The result runs at any length (block_size no longer limits it); fine-tune it with "
      "`slope train --init-from OUT`.");
  app.footer(
      "Example:\n"
      "  slope surgery --pos alibi out/base/best out/base-alibi\n"
      "  slope train --data data/bible --init-from out/base-alibi --train-block-size 64 ...\n");
  app.add_option("--pos", o.pos, "alibi | alibi-learned")
      ->check(CLI::IsMember({"alibi", "alibi-learned"}))
      ->capture_default_str();
  app.add_option("--max-bias", o.max_bias, "the slopes' max_bias (8: Press et al.'s)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("checkpoint", o.source, "the checkpoint (learned positions)")
      ->required()
      ->check(CLI::ExistingDirectory)
      ->type_name("CKPT");
  app.add_option("out", o.out, "where to write the ALiBi checkpoint")->required()->type_name("OUT");
  app.add_flag("--force", o.force, "replace OUT's checkpoint if it has one");
}

int run_surgery(const SurgeryOptions& o) {
  data::check_output_dir(o.out, outputs(true), o.force);
  const model::GptConfig config = io::read_gpt_config(o.source / io::kConfigFile);
  model::Gpt<float> source(config);
  io::load_gpt(o.source, source);
  const model::Gpt<float> out =
      model::position_surgery(source, model::parse_position(o.pos), o.max_bias);
  std::unique_ptr<data::Tokenizer> tokenizer;
  std::error_code ec;
  if (fs::exists(io::tokenizer_dir(o.source) / data::kTokenizerMetaFile, ec) ||
      fs::exists(io::tokenizer_dir(o.source / "..") / data::kTokenizerMetaFile, ec))
    tokenizer = data::load_tokenizer(checkpoint_tokenizer_dir(o.source));
  nlohmann::ordered_json origin;
  origin["made_by"] = "slope surgery";
  origin["pos"] = o.pos;
  origin["from_pos"] = model::position_name(config.pos);
  origin["max_bias"] = o.max_bias;
  origin["dropped"] = config.pos == model::Position::learned
                          ? nlohmann::ordered_json::array({"transformer.wpe.weight"})
                          : nlohmann::ordered_json::array();
  origin["source"] = fs::absolute(o.source).string();
  origin["source_origin"] = read_origin(o.source);
  write_made_checkpoint(o.out, out, tokenizer.get(), origin, o.force);
  std::printf("surgery %s -> %s: pos %s -> %s (max_bias %g), %s, %lld parameters kept\n",
              o.source.c_str(), o.out.c_str(), model::position_name(config.pos), o.pos.c_str(),
              o.max_bias,
              config.pos == model::Position::learned ? "wpe dropped" : "slopes now trainable",
              static_cast<long long>(out.table().size()));
  return 0;
}

}  // namespace slope::cli
