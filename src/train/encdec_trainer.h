// `slope train --arch encoder | seq2seq` (model/encdec.h): the GPT's loop (train_loop.h: AdamW,
// warmup + cosine, clipping, evals, the JSON-lines log, latest and best checkpoints; gradient
// accumulation is refused here) over other batches and another model.
//
//   encoder   masked LM on a `slope prepare` corpus: windows of --min-len .. --block-size
//             tokens padded to the longest of the batch (key lengths, no mask tensor), 15 % of
//             tokens selected (80 % → <mask>, 10 % random, 10 % kept). The vocabulary is the
//             corpus's plus <mask> (its last id). Evals: masked-token loss of windows of exactly
//             --block-size tokens, train and val.
//   seq2seq   G2P on a `slope prepare --task g2p` corpus: random (word, pronunciation) pairs,
//             sources padded by key lengths; --max-src-len trains on short words only (the
//             length-extrapolation experiment). Evals: teacher-forced loss per phoneme on the
//             first eval_iters·batch_size words of train and val.
//
// A checkpoint directory (OUT/ and OUT/best/) holds config.json and model.safetensors
// (io/encdec_checkpoint.h), train_options.json (the run's flags), and what decoding needs: the
// corpus's tokenizer/ (encoder) or src_vocab.json and tgt_vocab.json (seq2seq). OUT/ is also a
// training checkpoint (optimizer.safetensors, train_state.json: train/train_state.h), so
// --resume continues exactly, as a GPT run does. Writes are atomic; a crash loses at most the
// steps since the last eval.
#pragma once

#include "train/trainer.h"

namespace slope::train {

// Throws slope::Error: bad options (naming the flag), a missing or wrong corpus, an OUT that
// already holds a checkpoint, a diverged loss. observer may be null. comm: the ranks of a
// data-parallel run (train_loop.h); null: one process.
TrainSummary train_encdec(const TrainOptions& options, TrainObserver* observer = nullptr,
                          dist::Communicator* comm = nullptr);

// The model config of a run on a corpus with these vocabularies (tgt 0 for an encoder).
model::EncDecConfig encdec_config(const TrainOptions& options, int64_t vocab_size,
                                  int64_t tgt_vocab_size);

}  // namespace slope::train
