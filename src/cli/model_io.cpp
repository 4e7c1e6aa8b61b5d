// `slope export` / `slope import` (see model_io.h).
#include "cli/model_io.h"

#include <CLI/CLI.hpp>
#include <cstdio>

#include "cli/convert.h"  // import_hf_gpt2
#include "cli/sample.h"   // checkpoint_tokenizer_dir, check_checkpoint_dir
#include "data/tokenizer.h"
#include "io/checkpoint_files.h"
#include "io/encdec_checkpoint.h"
#include "io/gpt_checkpoint.h"
#include "io/mpt.h"
#include "slope/error.h"

namespace slope::cli {

namespace fs = std::filesystem;

void add_export_options(CLI::App& app, ExportOptions& o) {
  app.description(
      "Write a GPT checkpoint as a model other programs run: a Hugging Face MPT directory "
      "(MptForCausalLM and AutoTokenizer load it) or a GGUF file of architecture mpt "
      "(llama.cpp). The model must be one MPT holds: trained with --bias false and --pos alibi.");
  app.footer(
      "Examples:\n"
      "  slope export --format hf-mpt out/names/best exported/names-mpt\n"
      "  slope export --format gguf --dtype f16 out/names/best names.gguf\n"
      "See docs/export.md.");
  app.add_option("--format", o.format, "hf-mpt (a directory) or gguf (one file)")
      ->required()
      ->check(CLI::IsMember({"hf-mpt", "gguf"}));
  app.add_option("checkpoint", o.checkpoint,
                 "GPT checkpoint DIR of `slope train` (OUT or OUT/best)")
      ->required()
      ->type_name("CKPT");
  app.add_option("out", o.out, "hf-mpt: the directory to write; gguf: the .gguf file")
      ->required()
      ->type_name("OUT");
  app.add_option("--dtype", o.dtype, "gguf: f32, or f16 for the weight matrices (norms stay f32)")
      ->check(CLI::IsMember({"f32", "f16"}))
      ->capture_default_str();
  app.add_option("--max-seq-len", o.max_seq_len,
                 "context length the files declare (default: the checkpoint's block size; "
                 "ALiBi evaluates beyond it, HF MPT refuses longer inputs)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 30));
}

void add_import_options(CLI::App& app, ImportOptions& o) {
  app.description(
      "Read a model written by another program into a slope GPT checkpoint (config.json, "
      "model.safetensors, tokenizer/) that sample, eval and train --init-from use.");
  app.footer(
      "Examples:\n"
      "  slope import --from hf-mpt exported/names-mpt --out out/names-back\n"
      "  slope import --from gguf names.gguf --out out/names-back\n"
      "  slope import --from hf-gpt2 gpt2/ --out ckpt/gpt2   (GPT2LMHeadModel.save_pretrained;\n"
      "      Conv1D weights transposed, GPT-2's tanh GELU kept, its tokenizer carried along:\n"
      "      docs/composer-recipe.md)\n"
      "nanoGPT's ckpt.pt: python -m slope.convert nanogpt ckpt.pt OUT.\n");
  app.add_option("--from", o.from,
                 "hf-mpt (an MptForCausalLM directory), gguf (a file of "
                 "architecture mpt, F32 or F16) or hf-gpt2 (a GPT2LMHeadModel directory)")
      ->required()
      ->check(CLI::IsMember({"hf-mpt", "gguf", "hf-gpt2"}));
  app.add_option("in", o.in, "the directory (hf-mpt) or file (gguf) to read")
      ->required()
      ->type_name("IN");
  app.add_option("--out", o.out,
                 "checkpoint directory to write (created; existing files in it "
                 "are replaced atomically one by one)")
      ->required()
      ->type_name("DIR");
}

int run_export(const ExportOptions& o) {
  check_checkpoint_dir(o.checkpoint);
  if (io::is_encdec_checkpoint(o.checkpoint))
    throw Error(o.checkpoint.string() + " is an encoder or seq2seq checkpoint; export writes GPTs");
  const model::GptConfig config = io::read_gpt_config(o.checkpoint / io::kConfigFile);
  // Refuse before loading the weights or touching OUT.
  if (const std::string why = io::mpt_refusal(config); !why.empty())
    throw Error(o.checkpoint.string() + ": " + why);
  const std::unique_ptr<data::Tokenizer> tokenizer =
      data::load_tokenizer(checkpoint_tokenizer_dir(o.checkpoint));
  model::Gpt<float> gpt(config);
  io::load_gpt(o.checkpoint, gpt);
  io::MptExportOptions options;
  options.max_seq_len = o.max_seq_len;
  options.gguf_type = o.dtype == "f16" ? io::GgmlType::F16 : io::GgmlType::F32;
  options.name = o.checkpoint.filename().string() == io::kBestDir
                     ? o.checkpoint.parent_path().filename().string()
                     : o.checkpoint.filename().string();
  if (o.format == "hf-mpt") {
    io::export_hf_mpt(gpt, *tokenizer, o.out, options);
  } else {
    io::export_gguf_mpt(gpt, *tokenizer, o.out, options);
  }
  std::printf("wrote %s (%s, %lld parameters)\n", o.out.string().c_str(), o.format.c_str(),
              static_cast<long long>(gpt.num_params()));
  return 0;
}

int run_import(const ImportOptions& o) {
  if (o.from == "hf-gpt2") return import_hf_gpt2(o.in, o.out);
  io::ImportedGpt imported =
      o.from == "hf-mpt" ? io::import_hf_mpt(o.in) : io::import_gguf_mpt(o.in);
  fs::create_directories(o.out);
  if (imported.tokenizer) imported.tokenizer->save(io::tokenizer_dir(o.out));
  io::save_gpt(o.out, *imported.gpt);
  std::printf("wrote %s (GPT L%lld H%lld C%lld, vocab %lld)\n", o.out.string().c_str(),
              static_cast<long long>(imported.gpt->config().n_layer),
              static_cast<long long>(imported.gpt->config().n_head),
              static_cast<long long>(imported.gpt->config().n_embd),
              static_cast<long long>(imported.gpt->config().vocab_size));
  if (!imported.tokenizer)
    std::fprintf(stderr,
                 "slope: %s holds a tokenizer slope cannot rebuild: copy a tokenizer/ directory "
                 "into %s before sampling\n",
                 o.in.string().c_str(), o.out.string().c_str());
  return 0;
}

}  // namespace slope::cli
