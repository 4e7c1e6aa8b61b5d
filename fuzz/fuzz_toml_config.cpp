// `slope train --config FILE.toml` (cli/config_file.h): CLI11's TOML reader with slope's
// dashed keys, over the real options of `slope train`.
//
// Input: the whole TOML file. Invariant: a file that is accepted sets only options of
// `slope train`, and reading it a second time into fresh options gives the same values (the
// reader keeps no state between files).
#include <string>
#include <vector>

#include "cli/config_file.h"
#include "cli/train.h"
#include "fuzz_common.h"
#include "slope/error.h"
#include "train/train_options.h"

namespace {

// Parses `slope train --config path` as main.cpp does and returns the options it set, as JSON.
// Throws slope::Error or CLI::Error.
std::string read_config(const std::string& path) {
  CLI::App app{"slope"};
  slope::cli::TrainCliOptions options;
  auto train = std::make_shared<slope::cli::ConfigurableSubcommand>("train", "");
  app.add_subcommand(train);
  slope::cli::add_train_options(*train, options);
  // `slope train --config PATH`; CLI11 takes the arguments in reverse order.
  std::vector<std::string> args = {path, "--config", "train"};
  app.parse(args);
  train->apply_config();
  return slope::train::options_to_json(options.train).dump() + options.arch + options.pos +
         std::to_string(options.threads);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto path = slope::fuzz::write_scratch("train.toml", slope::fuzz::as_text(data, size));
  std::string first;
  try {
    first = read_config(path.string());
  } catch (const slope::Error&) {
    return 0;
  } catch (const CLI::Error& e) {
    // A CLI11 parse error of the command line itself (never of the file: apply_config turns
    // those into slope::Error); the command line here is fixed, so this must not happen.
    FUZZ_CHECK(false, std::string("CLI::Error escaped apply_config: ") + e.what());
  }
  FUZZ_CHECK(read_config(path.string()) == first, "a second read differs");
  return 0;
}
