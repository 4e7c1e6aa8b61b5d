// `slope sample` and `slope eval` for encoder and seq2seq checkpoints (see encdec_cli.cpp);
// run_sample and run_eval hand such checkpoints over.
#pragma once

#include "cli/eval.h"
#include "cli/sample.h"

namespace slope::cli {

// seq2seq: decodes --word (or --prompt) greedily or with --beam, one line per word:
// "word<TAB>PH1 PH2 ...<TAB>(log p)". An encoder checkpoint is refused. Throws slope::Error.
int run_sample_encdec(const SampleOptions& o);

// seq2seq: word accuracy and PER per word-length bucket on --split of the G2P corpus --data;
// encoder: masked-token loss at each --lengths on the val split of --data. Prints a table,
// writes the CSV and the plot. Throws slope::Error.
int run_eval_encdec(const EvalOptions& o);

}  // namespace slope::cli
