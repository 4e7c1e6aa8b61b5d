// `slope export` and `slope import`: a GPT checkpoint out as Hugging Face MPT or as GGUF for
// llama.cpp (io/mpt.h), and such files back in as a slope checkpoint.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

namespace CLI {
class App;
}

namespace slope::cli {

struct ExportOptions {
  std::string format;                // hf-mpt | gguf
  std::filesystem::path checkpoint;  // a GPT checkpoint directory of `slope train`
  std::filesystem::path out;         // hf-mpt: a directory; gguf: a file
  std::string dtype = "f32";         // gguf: f32 | f16
  int64_t max_seq_len = 0;           // 0: the checkpoint's block_size
};

struct ImportOptions {
  std::string from;           // hf-mpt | gguf
  std::filesystem::path in;   // hf-mpt: a directory; gguf: a file
  std::filesystem::path out;  // the checkpoint directory to write
};

void add_export_options(CLI::App& app, ExportOptions& o);
void add_import_options(CLI::App& app, ImportOptions& o);

// Each returns the exit code; throws slope::Error.
int run_export(const ExportOptions& o);
int run_import(const ImportOptions& o);

}  // namespace slope::cli
