// load_tokenizer: the one place that maps tokenizer.json's "kind" to a class.
#include "data/tokenizer.h"

#include "data/byte_bpe_tokenizer.h"
#include "files/json_file.h"
#include "slope/error.h"

namespace slope::data {
namespace fs = std::filesystem;

std::unique_ptr<Tokenizer> load_tokenizer(const fs::path& dir) {
  const fs::path meta_path = dir / kTokenizerMetaFile;
  const nlohmann::json meta = files::read_json_file(meta_path);
  // A byte-level BPE's tokenizer.json is Hugging Face's own file, not slope's description.
  if (ByteLevelBpeTokenizer::is_hf_tokenizer_json(meta))
    return std::make_unique<ByteLevelBpeTokenizer>(
        ByteLevelBpeTokenizer::from_hf_json(meta, meta_path.string()));
  files::check_json_format(meta, "slope-tokenizer", kTokenizerFormatVersion, meta_path);
  const auto kind = files::json_field<std::string>(meta, "kind", meta_path);
  if (kind == "char") return std::make_unique<CharTokenizer>(CharTokenizer::load(dir));
  if (kind == "bpe") return std::make_unique<BpeTokenizer>(BpeTokenizer::load(dir));
  throw Error(meta_path.string() + ": unknown tokenizer kind \"" + kind +
              "\" (this build knows char, bpe and Hugging Face byte-level BPE)");
}

}  // namespace slope::data
