// Sampling: the prompt runs through the cache once, then each new token is one forward of one
// position per sample. Models with learned positions cannot go past block_size: from then on
// the context is cropped to its last block_size tokens and run again without the cache
// (nanoGPT's generate), which is slower but exact.
#include "cli/sample.h"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <vector>

#include "cli/encdec_cli.h"
#include "cli/train.h"  // set_threads
#include "data/random.h"
#include "data/tokenizer.h"
#include "io/checkpoint_files.h"
#include "io/encdec_checkpoint.h"
#include "io/gpt_checkpoint.h"
#include "model/gpt_inference.h"
#include "model/sampling.h"
#include "slope/attention.h"  // slope::Error

namespace slope::cli {

namespace fs = std::filesystem;

void add_sample_options(CLI::App& app, SampleOptions& o) {
  app.description(
      "Generate text from a GPT checkpoint of `slope train` (temperature, top-k), or transcribe "
      "words (--word) with a seq2seq checkpoint (greedy or --beam).");
  app.footer(
      "Examples:\n"
      "  slope sample --checkpoint out/names/best --num-samples 10 --stop-at-newline\n"
      "  slope sample --checkpoint out/bible --prompt 'In the beginning' --max-new-tokens 300 "
      "--top-k 40\n");
  app.add_option("--checkpoint", o.checkpoint, "checkpoint DIR (OUT or OUT/best of slope train)")
      ->required()
      ->type_name("DIR");
  app.add_option("--prompt", o.prompt, "text to continue (default: a new line)");
  app.add_option("--max-new-tokens", o.max_new_tokens, "tokens to generate per sample")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 30))
      ->capture_default_str();
  app.add_option("--temperature", o.temperature, "softmax temperature (0: most likely token)")
      ->capture_default_str();
  app.add_option("--top-k", o.top_k, "sample among the k most likely tokens (0: all)")
      ->capture_default_str();
  app.add_option("--seed", o.seed, "seed of the sampling")->capture_default_str();
  app.add_option("--num-samples", o.num_samples, "samples, decoded side by side")
      ->check(CLI::Range(int64_t{1}, int64_t{4096}))
      ->capture_default_str();
  app.add_flag("--stop-at-newline", o.stop_at_newline,
               "end each sample at its first generated newline (one name, one line)");
  app.add_flag("--timing", o.timing,
               "GPT: print the prompt's and the generation's tokens/s on stderr (as llama.cpp "
               "counts them: the prompt is one forward; generation is every later token)");
  app.add_option("--word", o.words,
                 "seq2seq checkpoints: a word to transcribe (repeatable); printed as "
                 "word<TAB>phonemes<TAB>(log p)");
  app.add_option("--beam", o.beam, "seq2seq checkpoints: beam width (1: greedy decoding)")
      ->check(CLI::Range(int64_t{1}, int64_t{64}))
      ->capture_default_str();
  app.add_option("--threads", o.threads, "threads (0: all cores or OMP_NUM_THREADS)")
      ->check(CLI::Range(0, 1024))
      ->capture_default_str();
}

fs::path checkpoint_tokenizer_dir(const fs::path& checkpoint) {
  std::error_code ec;
  for (const fs::path& dir : {io::tokenizer_dir(checkpoint), io::tokenizer_dir(checkpoint / "..")})
    if (fs::exists(dir / data::kTokenizerMetaFile, ec)) return dir;
  throw Error(checkpoint.string() +
              " has no tokenizer/ (checkpoints of `slope train` carry one): copy the "
              "tokenizer/ directory of the corpus it was trained on into it");
}

void check_checkpoint_dir(const fs::path& checkpoint) {
  std::error_code ec;
  if (!fs::is_directory(checkpoint, ec))
    throw Error("--checkpoint " + checkpoint.string() +
                " is not a directory: pass OUT or OUT/best of `slope train --out OUT`");
}

int run_sample(const SampleOptions& o) {
  check_checkpoint_dir(o.checkpoint);
  if (io::is_encdec_checkpoint(o.checkpoint)) return run_sample_encdec(o);
  if (!o.words.empty() || o.beam != 1)
    throw Error("--word and --beam are for seq2seq checkpoints; " + o.checkpoint.string() +
                " is a GPT: pass --prompt");
  const model::SamplingConfig sampling{o.temperature, o.top_k};
  model::validate(sampling);
  set_threads(o.threads);
  const model::GptConfig config = io::read_gpt_config(o.checkpoint / io::kConfigFile);
  const std::unique_ptr<data::Tokenizer> tokenizer =
      data::load_tokenizer(checkpoint_tokenizer_dir(o.checkpoint));
  if (static_cast<int64_t>(tokenizer->vocab_size()) != config.vocab_size)
    throw Error("the tokenizer of " + o.checkpoint.string() + " has " +
                std::to_string(tokenizer->vocab_size()) + " tokens, the model " +
                std::to_string(config.vocab_size) + ": they come from different corpora");
  model::Gpt<float> gpt(config);
  io::load_gpt(o.checkpoint, gpt);

  if (const auto* chars = dynamic_cast<const data::CharTokenizer*>(tokenizer.get()))
    if (const auto at = chars->find_unknown(o.prompt))
      throw Error("--prompt: the character at byte " + std::to_string(*at) +
                  " is not in the model's vocabulary (it never saw it in training)");
  // Without a prompt, start where a document starts: after a newline.
  std::vector<uint32_t> start = tokenizer->encode(o.prompt.empty() ? "\n" : o.prompt);
  if (start.empty()) start.push_back(0);

  const int64_t B = o.num_samples;
  std::vector<std::vector<int32_t>> context(static_cast<size_t>(B),
                                            std::vector<int32_t>(start.begin(), start.end()));
  std::vector<std::vector<uint32_t>> generated(static_cast<size_t>(B));
  std::vector<bool> done(static_cast<size_t>(B), false);
  std::vector<std::mt19937_64> rngs;  // one stream per sample: sample b does not depend on B
  for (int64_t b = 0; b < B; ++b)
    rngs.emplace_back(data::splitmix64(o.seed ^ data::splitmix64(static_cast<uint64_t>(b))));
  const std::vector<uint32_t> newline = tokenizer->encode("\n");

  model::GptInference<float> decoder(gpt, B);
  const int64_t Vp = config.padded_vocab_size();
  int64_t pending = static_cast<int64_t>(start.size());  // context tokens not yet in the cache
  std::vector<int32_t> idx;
  using Clock = std::chrono::steady_clock;
  const Clock::time_point t0 = Clock::now();
  Clock::time_point t_prompt = t0;  // the end of the first forward (the prompt's)
  int64_t steps = 0;
  for (int64_t step = 0; step < o.max_new_tokens; ++step) {
    if (step == 1) t_prompt = Clock::now();
    steps = step + 1;
    const int64_t n = static_cast<int64_t>(context[0].size());
    if (decoder.max_length() > 0 && decoder.length() + pending > decoder.max_length()) {
      decoder.reset();  // learned positions: crop to the last block_size tokens
      pending = std::min(n, decoder.max_length());
    }
    idx.clear();
    for (int64_t b = 0; b < B; ++b)
      idx.insert(idx.end(), context[b].end() - pending, context[b].end());
    const float* logits = decoder.forward(idx.data(), pending);
    for (int64_t b = 0; b < B; ++b) {
      const float* last = logits + (b * pending + pending - 1) * Vp;
      const int32_t token = model::sample_token(last, config.vocab_size, sampling, rngs[b]);
      context[b].push_back(token);
      if (done[b]) continue;
      if (o.stop_at_newline && newline.size() == 1 && static_cast<uint32_t>(token) == newline[0]) {
        done[b] = true;
        continue;
      }
      generated[b].push_back(static_cast<uint32_t>(token));
    }
    pending = 1;
    if (std::all_of(done.begin(), done.end(), [](bool d) { return d; })) break;
  }

  if (o.timing && steps > 0) {
    const Clock::time_point t_end = Clock::now();
    if (steps == 1) t_prompt = t_end;
    const double prompt_s = std::chrono::duration<double>(t_prompt - t0).count();
    const double gen_s = std::chrono::duration<double>(t_end - t_prompt).count();
    std::fprintf(stderr,
                 "timing: prompt %zu tokens x %lld samples in %.3f s (%.1f tokens/s); generation "
                 "%lld steps x %lld samples in %.3f s (%.2f tokens/s)\n",
                 start.size(), static_cast<long long>(B), prompt_s,
                 static_cast<double>(start.size() * B) / prompt_s,
                 static_cast<long long>(steps - 1), static_cast<long long>(B), gen_s,
                 gen_s > 0 ? static_cast<double>((steps - 1) * B) / gen_s : 0.0);
  }
  for (int64_t b = 0; b < B; ++b) {
    const std::string text = (o.prompt.empty() ? "" : o.prompt) + tokenizer->decode(generated[b]);
    if (o.stop_at_newline) {
      std::printf("%s\n", text.c_str());
    } else {
      if (b > 0) std::printf("---\n");
      std::printf("%s\n", text.c_str());
    }
  }
  return 0;
}

}  // namespace slope::cli
