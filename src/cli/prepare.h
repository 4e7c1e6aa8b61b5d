// `slope prepare`: options and entry point (the work is slope::data::prepare_corpus).
#pragma once

#include "data/prepare.h"

namespace CLI {
class App;
}

namespace slope::cli {

// Registers the options of `slope prepare` on `app`, writing into `o`.
void add_prepare_options(CLI::App& app, data::PrepareOptions& o);

// Prepares the corpus and prints a short summary; returns the exit code. Throws slope::Error.
int run_prepare(const data::PrepareOptions& o);

}  // namespace slope::cli
