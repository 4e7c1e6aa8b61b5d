// Position surgery (Composer's ALiBi method, MosaicML): a GPT trained with learned positions
// becomes an ALiBi GPT. wpe is dropped; every other tensor is copied bit for bit; `alibi` adds
// no parameter (Press's slopes are fixed), `alibi-learned` adds one slope vector per layer,
// started at Press's slopes (alibi_slopes(n_head, max_bias)). block_size stays in the config as
// the length it was trained at, but no longer limits the input: an ALiBi GPT runs any length.
#pragma once

#include "model/gpt.h"

namespace slope::model {

// Throws slope::Error unless `to` is alibi or alibi-learned, and unless the source has learned
// positions (or already ALiBi: then only alibi → alibi-learned is a change; same → same is
// refused as pointless).
Gpt<float> position_surgery(const Gpt<float>& source, Position to, double max_bias);

}  // namespace slope::model
