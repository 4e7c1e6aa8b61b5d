// `slope import --from hf-gpt2` (a Hugging Face GPT-2 in, as a slope checkpoint; the other
// --from formats are model_io.h's) and `slope surgery` (learned positions out, ALiBi in): the
// commands that make a checkpoint from another one rather than by training. Each writes
// CKPT/config.json, model.safetensors, tokenizer/ (when the source has one) and origin.json
// through a staging directory, all or nothing.
#pragma once

#include <filesystem>
#include <string>

namespace CLI {
class App;
}

namespace slope::cli {

// `slope import --from hf-gpt2 DIR --out CKPT`: a GPT2LMHeadModel.save_pretrained directory.
// Existing files of CKPT are replaced (as `slope import` does for every format), all at once.
int import_hf_gpt2(const std::filesystem::path& source, const std::filesystem::path& out);

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
