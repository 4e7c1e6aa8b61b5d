// `slope import` (a Hugging Face GPT-2 in, as a slope checkpoint) and `slope surgery` (learned
// positions out, ALiBi in): the commands that make a checkpoint from another one rather than by
// training. Each writes CKPT/config.json, model.safetensors, tokenizer/ (when the source has
// one) and origin.json through a staging directory: all or nothing, never over an existing
// checkpoint without --force.
#pragma once

#include <filesystem>
#include <string>

namespace CLI {
class App;
}

namespace slope::cli {

struct ImportOptions {
  std::string from;              // the source format: hf-gpt2
  std::filesystem::path source;  // a save_pretrained directory
  std::filesystem::path out;
  bool force = false;
};

void add_import_options(CLI::App& app, ImportOptions& o);
int run_import(const ImportOptions& o);

struct SurgeryOptions {
  std::string pos = "alibi";     // alibi | alibi-learned
  double max_bias = 8.0;         // Press's slopes
  std::filesystem::path source;  // a GPT checkpoint with learned positions
  std::filesystem::path out;
  bool force = false;
};

void add_surgery_options(CLI::App& app, SurgeryOptions& o);
int run_surgery(const SurgeryOptions& o);

}  // namespace slope::cli
