// `slope sample`: text from a checkpoint, decoded with a KV cache (model/gpt_inference.h).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace slope::cli {

struct SampleOptions {
  std::filesystem::path checkpoint;  // a directory with config.json, model.safetensors, tokenizer/
  std::string prompt;                // empty: start from a newline (a new line, a new name)
  int64_t max_new_tokens = 200;
  double temperature = 1.0;
  int64_t top_k = 0;  // 0: no limit
  uint64_t seed = 1337;
  int64_t num_samples = 1;
  bool stop_at_newline = false;
  std::vector<std::string> words;  // seq2seq checkpoints: the sources to decode
  int64_t beam = 1;                // seq2seq: beam width (1: greedy)
  int threads = 0;
  bool timing = false;  // GPT: prompt and generation speed on stderr (bench/decode.py reads it)
};

void add_sample_options(CLI::App& app, SampleOptions& o);

// Prints the samples on stdout: one per line with --stop-at-newline, else separated by "---"
// lines. Throws slope::Error.
int run_sample(const SampleOptions& o);

// The tokenizer of a checkpoint: DIR/tokenizer/, or (for OUT/best/) the one of the directory
// above. Throws slope::Error saying where it looked.
std::filesystem::path checkpoint_tokenizer_dir(const std::filesystem::path& checkpoint);
// Throws slope::Error unless --checkpoint is a directory.
void check_checkpoint_dir(const std::filesystem::path& checkpoint);

}  // namespace slope::cli
