// `--config FILE.toml` for a subcommand: the same keys as its flags (n-layer = 4, or nanoGPT's
// n_layer = 4), flags on the command line winning over the file.
//
// CLI11 2.1 reads a config file only for the top-level app, so `slope train --config F` would
// be ignored. A subcommand made as a ConfigurableSubcommand reads it itself after parsing:
// apply_config() parses the file with CLI11's own TOML reader and runs the options' checks and
// callbacks on the values it set. Unknown keys are errors (a typo must not be ignored).
#pragma once

#include <CLI/CLI.hpp>
#include <algorithm>
#include <istream>
#include <string>
#include <vector>

#include "slope/error.h"  // slope::Error

namespace slope::cli {

// CLI11's TOML reader, with '_' in key names read as '-'.
class DashedTomlConfig : public CLI::ConfigTOML {
 public:
  std::vector<CLI::ConfigItem> from_config(std::istream& input) const override {
    std::vector<CLI::ConfigItem> parsed = CLI::ConfigTOML::from_config(input);
    for (CLI::ConfigItem& item : parsed) std::replace(item.name.begin(), item.name.end(), '_', '-');
    return parsed;
  }
};

class ConfigurableSubcommand : public CLI::App {
 public:
  ConfigurableSubcommand(std::string name, std::string description)
      : CLI::App(std::move(description), std::move(name)) {
    set_config("--config", "", "TOML file of options (the flags' names as keys); flags win")
        ->type_name("FILE.toml");
    config_formatter(std::make_shared<DashedTomlConfig>());
    allow_config_extras(CLI::config_extras_mode::error);
  }

  // Call after app.parse() when this subcommand was given. Throws slope::Error naming the file
  // and the key (an unknown key, a value that fails its check, an unreadable file).
  void apply_config() {
    try {
      _process_config_file();
      for (CLI::Option* opt : get_options())
        if (opt->count() > 0 && !opt->get_callback_run()) opt->run_callback();
    } catch (const CLI::Error& e) {
      const CLI::Option* config = get_config_ptr();
      const std::string file = config && config->count() > 0 ? config->as<std::string>() : "";
      throw Error("--config " + file + ": " + e.what() +
                  " (keys are the flags' names without dashes: n-layer = 4, lr = 1e-3)");
    }
  }

  // True when the option was given, on the command line or in the config file.
  bool given(const std::string& flag) const {
    const CLI::Option* opt = get_option_no_throw(flag);
    return opt && opt->count() > 0;
  }
};

}  // namespace slope::cli
