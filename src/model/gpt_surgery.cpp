// Position surgery (see gpt_surgery.h).
#include "model/gpt_surgery.h"

#include <algorithm>
#include <string>

#include "slope/error.h"

namespace slope::model {

Gpt<float> position_surgery(const Gpt<float>& source, Position to, double max_bias) {
  if (to != Position::alibi && to != Position::alibi_learned)
    throw Error(std::string("surgery --pos ") + position_name(to) +
                ": slope's surgery installs alibi or alibi-learned");
  const GptConfig& from = source.config();
  if (from.pos == to)
    throw Error(std::string("the checkpoint already has pos ") + position_name(to) +
                ": nothing to do");
  if (from.pos != Position::learned &&
      !(from.pos == Position::alibi && to == Position::alibi_learned))
    throw Error(std::string("surgery starts from learned positions (or alibi → alibi-learned); "
                            "the checkpoint has pos ") +
                position_name(from.pos));
  GptConfig config = from;
  config.pos = to;
  config.max_bias = max_bias;
  Gpt<float> out(config);  // alibi-learned's slopes start at Press's slopes (init_params)
  for (const ParamSpec& s : out.table().specs()) {
    const ParamSpec* src = source.table().find(s.name);
    if (!src) continue;  // the new slopes
    if (src->shape != s.shape || src->size != s.size)
      throw Error("surgery: tensor " + s.name + " changed shape (a bug)");
    std::copy_n(source.params() + src->offset, s.size, out.params() + s.offset);
  }
  return out;
}

}  // namespace slope::model
