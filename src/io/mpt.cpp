// A slope GPT as Hugging Face MPT and as llama.cpp's GGUF `mpt`, and back (see mpt.h).
#include "io/mpt.h"

#include <cmath>
#include <nlohmann/json.hpp>

#include "files/atomic_file.h"
#include "files/json_file.h"
#include "io/checkpoint_files.h"
#include "io/gpt_checkpoint.h"  // kLmHead
#include "io/mpt_tokenizer.h"
#include "io/safetensors.h"
#include "model/param_table.h"
#include "nn/layernorm.h"  // kLayerNormEps
#include "slope/error.h"

namespace slope::io {

namespace fs = std::filesystem;

namespace {

constexpr int64_t kMptExpansionRatio = 4;  // slope's MLP is 4C
// transformers' MptModel.forward calls build_mpt_alibi_tensor without the config's
// alibi_bias_max, so HF runs the slopes of 8 whatever config.json says (transformers 5.24; its
// MptAttentionConfig also types the field as int).
constexpr double kHfMptMaxBias = 8.0;
constexpr char kHfTokenizerFile[] = "tokenizer.json";
constexpr char kHfTokenizerConfigFile[] = "tokenizer_config.json";

struct MptName {
  std::string slope, hf, gguf;
  bool is_norm;  // 1-D: stays F32 in an F16 GGUF, as llama.cpp's converters keep norms
};

// Every tensor of an MPT-shaped GPT under its three names, in slope's table order.
std::vector<MptName> mpt_names(const model::GptConfig& config) {
  std::vector<MptName> names{
      {"transformer.wte.weight", "transformer.wte.weight", "token_embd.weight", false}};
  for (int64_t l = 0; l < config.n_layer; ++l) {
    const std::string s = "transformer.h." + std::to_string(l) + ".";
    const std::string h = "transformer.blocks." + std::to_string(l) + ".";
    const std::string g = "blk." + std::to_string(l) + ".";
    names.push_back({s + "ln_1.weight", h + "norm_1.weight", g + "attn_norm.weight", true});
    names.push_back(
        {s + "attn.c_attn.weight", h + "attn.Wqkv.weight", g + "attn_qkv.weight", false});
    names.push_back(
        {s + "attn.c_proj.weight", h + "attn.out_proj.weight", g + "attn_output.weight", false});
    names.push_back({s + "ln_2.weight", h + "norm_2.weight", g + "ffn_norm.weight", true});
    names.push_back({s + "mlp.c_fc.weight", h + "ffn.up_proj.weight", g + "ffn_up.weight", false});
    names.push_back(
        {s + "mlp.c_proj.weight", h + "ffn.down_proj.weight", g + "ffn_down.weight", false});
  }
  names.push_back(
      {"transformer.ln_f.weight", "transformer.norm_f.weight", "output_norm.weight", true});
  return names;
}

// Checks that `names` cover every tensor of the model's table (nothing silently left at its
// initial value by an import).
void check_covers_table(const model::Gpt<float>& gpt, const std::vector<MptName>& names) {
  if (names.size() != gpt.table().specs().size())
    throw Error("internal error: the MPT name table has " + std::to_string(names.size()) +
                " tensors, the model " + std::to_string(gpt.table().specs().size()));
}

int64_t declared_length(const model::GptConfig& config, const MptExportOptions& options) {
  if (options.max_seq_len < 0) throw Error("--max-seq-len must be positive");
  return options.max_seq_len > 0 ? options.max_seq_len : config.block_size;
}

void refuse_unless_mpt(const model::GptConfig& config) {
  const std::string why = mpt_refusal(config);
  if (!why.empty()) throw Error(why);
}

model::GptConfig mpt_config(int64_t max_seq_len, int64_t vocab_size, int64_t n_layer,
                            int64_t n_head, int64_t n_embd, double max_bias) {
  model::GptConfig c;
  c.block_size = max_seq_len;
  c.vocab_size = vocab_size;
  c.n_layer = n_layer;
  c.n_head = n_head;
  c.n_embd = n_embd;
  c.dropout = 0.0;
  c.bias = false;
  c.pos = model::Position::alibi;
  c.max_bias = max_bias;
  model::validate(c);
  return c;
}

}  // namespace

std::string mpt_refusal(const model::GptConfig& config) {
  if (config.bias)
    return "the checkpoint has biases (bias true): MPT has none; train with --bias false";
  if (config.pos != model::Position::alibi)
    return std::string("the checkpoint's positions are \"") + model::position_name(config.pos) +
           "\": MPT holds ALiBi with fixed slopes only; train with --pos alibi";
  if (!(config.max_bias > 0) || !std::isfinite(config.max_bias))
    return "max_bias " + std::to_string(config.max_bias) +
           " is not a positive number, which MPT's alibi_bias_max must be";
  if (config.activation != nn::Activation::gelu)
    return "the checkpoint's MLP uses GPT-2's tanh GELU (activation gelu-tanh, an imported "
           "GPT-2): HF MPT computes the exact GELU, so its logits would differ";
  return "";
}

void export_hf_mpt(const model::Gpt<float>& gpt, const data::Tokenizer& tokenizer,
                   const fs::path& dir, const MptExportOptions& options) {
  const model::GptConfig& config = gpt.config();
  refuse_unless_mpt(config);
  if (config.max_bias != kHfMptMaxBias)
    throw Error("max_bias " + std::to_string(config.max_bias) +
                ": Hugging Face's MptModel builds its ALiBi with alibi_bias_max 8 whatever its "
                "config says (modeling_mpt.py), so it would run other slopes; export as gguf, or "
                "train with --max-bias 8");
  // The tokenizer first: a kind that does not export fails before anything is written.
  const nlohmann::ordered_json tokenizer_json = hf_tokenizer_json(tokenizer);
  const nlohmann::ordered_json tokenizer_config = hf_tokenizer_config_json(tokenizer);
  if (static_cast<int64_t>(tokenizer.vocab_size()) != config.vocab_size)
    throw Error("the tokenizer has " + std::to_string(tokenizer.vocab_size()) +
                " tokens, the model " + std::to_string(config.vocab_size));

  nlohmann::ordered_json j;
  j["architectures"] = {"MptForCausalLM"};
  j["model_type"] = "mpt";
  j["d_model"] = config.n_embd;
  j["n_heads"] = config.n_head;
  j["n_layers"] = config.n_layer;
  j["expansion_ratio"] = kMptExpansionRatio;
  j["max_seq_len"] = declared_length(config, options);
  j["vocab_size"] = config.vocab_size;
  j["resid_pdrop"] = 0.0;
  j["emb_pdrop"] = 0.0;
  j["layer_norm_epsilon"] = nn::kLayerNormEps;
  j["learned_pos_emb"] = false;
  j["no_bias"] = true;
  j["logit_scale"] = nullptr;
  j["norm_type"] = "low_precision_layernorm";
  j["tie_word_embeddings"] = true;
  j["use_cache"] = true;
  j["torch_dtype"] = "float32";
  j["attn_config"] = {{"alibi", true},
                      {"alibi_bias_max", static_cast<int64_t>(kHfMptMaxBias)},
                      {"attn_impl", "torch"},
                      {"attn_pdrop", 0},
                      {"attn_type", "multihead_attention"},
                      {"clip_qkv", nullptr},
                      {"prefix_lm", false},
                      {"qk_ln", false},
                      {"softmax_scale", nullptr}};
  j["slope"] = {{"exported_from", "slope"}, {"block_size", config.block_size}};

  std::vector<TensorView> tensors;
  for (const MptName& n : mpt_names(config))
    tensors.push_back({n.hf, Dtype::F32, gpt.table().at(n.slope).shape, gpt.param(n.slope)});
  fs::create_directories(dir);
  write_safetensors(dir / kModelFile, tensors, {{"format", "pt"}});
  files::write_file_atomic(dir / kHfTokenizerFile, tokenizer_json.dump(2) + "\n");
  files::write_file_atomic(dir / kHfTokenizerConfigFile, tokenizer_config.dump(2) + "\n");
  files::write_file_atomic(dir / kConfigFile, j.dump(2) + "\n");  // last: the directory is whole
}

void export_gguf_mpt(const model::Gpt<float>& gpt, const data::Tokenizer& tokenizer,
                     const fs::path& file, const MptExportOptions& options) {
  const model::GptConfig& config = gpt.config();
  refuse_unless_mpt(config);
  if (static_cast<int64_t>(tokenizer.vocab_size()) != config.vocab_size)
    throw Error("the tokenizer has " + std::to_string(tokenizer.vocab_size()) +
                " tokens, the model " + std::to_string(config.vocab_size));
  const bool f16 = options.gguf_type == GgmlType::F16;
  std::vector<std::pair<std::string, GgufValue>> kv{
      {"general.architecture", GgufValue::string("mpt")},
      {"general.name", GgufValue::string(options.name.empty() ? "slope-mpt" : options.name)},
      // llama_ftype: 0 ALL_F32, 1 MOSTLY_F16
      {"general.file_type", GgufValue::u32(f16 ? 1 : 0)},
      {"mpt.context_length",
       GgufValue::u32(static_cast<uint32_t>(declared_length(config, options)))},
      {"mpt.embedding_length", GgufValue::u32(static_cast<uint32_t>(config.n_embd))},
      {"mpt.block_count", GgufValue::u32(static_cast<uint32_t>(config.n_layer))},
      {"mpt.feed_forward_length",
       GgufValue::u32(static_cast<uint32_t>(kMptExpansionRatio * config.n_embd))},
      {"mpt.attention.head_count", GgufValue::u32(static_cast<uint32_t>(config.n_head))},
      {"mpt.attention.head_count_kv", GgufValue::u32(static_cast<uint32_t>(config.n_head))},
      {"mpt.attention.layer_norm_epsilon", GgufValue::f32(static_cast<float>(nn::kLayerNormEps))},
      {"mpt.attention.max_alibi_bias", GgufValue::f32(static_cast<float>(config.max_bias))},
  };
  for (auto& t : gguf_tokenizer_metadata(tokenizer)) kv.push_back(std::move(t));

  std::vector<GgufTensorView> tensors;
  for (const MptName& n : mpt_names(config))
    tensors.push_back({n.gguf, gpt.table().at(n.slope).shape,
                       f16 && !n.is_norm ? GgmlType::F16 : GgmlType::F32, gpt.param(n.slope)});
  write_gguf(file, kv, tensors);
}

// --- import ---

namespace {

template <class T>
T mpt_field(const nlohmann::json& j, const char* key, const std::string& where) {
  return files::json_field<T>(j, key, where);
}

// Refuses a config.json key that slope's GPT would silently compute differently.
void refuse_if(bool bad, const std::string& where, const std::string& what) {
  if (bad) throw Error(where + ": " + what + ", which slope's GPT does not compute");
}

}  // namespace

ImportedGpt import_hf_mpt(const fs::path& dir) {
  const fs::path config_path = dir / kConfigFile;
  const std::string where = config_path.string();
  const nlohmann::json j = files::read_json_file(config_path);
  if (j.value("model_type", "") != "mpt")
    throw Error(where + ": model_type is not \"mpt\" (is this an MptForCausalLM directory?)");
  const nlohmann::json attn = j.value("attn_config", nlohmann::json::object());
  const auto is_set = [](const nlohmann::json& o, const char* key) {
    return o.contains(key) && !o[key].is_null() && !(o[key].is_boolean() && !o[key].get<bool>());
  };
  refuse_if(is_set(attn, "clip_qkv"), where, "attn_config.clip_qkv is set");
  refuse_if(is_set(attn, "qk_ln"), where, "attn_config.qk_ln is true");
  refuse_if(is_set(j, "logit_scale"), where, "logit_scale is set");
  refuse_if(j.contains("no_bias") && !j["no_bias"].get<bool>(), where,
            "no_bias is false (HF's MptModel has no biases either)");
  refuse_if(j.value("tie_word_embeddings", true) == false, where, "the head is untied");
  refuse_if(j.value("expansion_ratio", kMptExpansionRatio) != kMptExpansionRatio, where,
            "expansion_ratio is not 4");
  const model::GptConfig config = mpt_config(
      mpt_field<int64_t>(j, "max_seq_len", where), mpt_field<int64_t>(j, "vocab_size", where),
      mpt_field<int64_t>(j, "n_layers", where), mpt_field<int64_t>(j, "n_heads", where),
      mpt_field<int64_t>(j, "d_model", where), kHfMptMaxBias);
  refuse_if(attn.value("alibi_bias_max", kHfMptMaxBias) != kHfMptMaxBias, where,
            "attn_config.alibi_bias_max is not 8 (HF's MptModel runs the slopes of 8 anyway)");
  if (is_set(attn, "softmax_scale")) {
    const double scale = attn["softmax_scale"].get<double>();
    refuse_if(std::fabs(scale * std::sqrt(static_cast<double>(config.head_dim())) - 1.0) > 1e-6,
              where, "attn_config.softmax_scale is not 1/sqrt(head_dim)");
  }
  const double eps = j.value("layer_norm_epsilon", nn::kLayerNormEps);
  refuse_if(eps != nn::kLayerNormEps, where, "layer_norm_epsilon is not 1e-5");

  ImportedGpt out{std::make_unique<model::Gpt<float>>(config), nullptr};
  const std::vector<MptName> names = mpt_names(config);
  check_covers_table(*out.gpt, names);
  const SafetensorsReader weights(dir / kModelFile);
  for (const TensorInfo& t : weights.tensors()) {
    bool known = t.name == kLmHead;  // a tied copy, when a file carries one
    for (const MptName& n : names) known = known || n.hf == t.name;
    if (!known)
      throw Error(weights.path().string() + " holds " + t.name +
                  ", which an MPT of this config has no place for");
  }
  for (const MptName& n : names)
    weights.read<float>(n.hf, out.gpt->table().at(n.slope).shape, out.gpt->param(n.slope));
  if (const TensorInfo* head = weights.find(kLmHead)) {
    const std::vector<float> h = weights.read<float>(kLmHead);
    const float* wte = out.gpt->param("transformer.wte.weight");
    if (h.size() != static_cast<size_t>(config.vocab_size * config.n_embd) ||
        !std::equal(h.begin(), h.end(), wte))
      throw Error(weights.path().string() + ": " + head->name +
                  " differs from transformer.wte.weight: slope's GPT ties them");
  }
  const fs::path tok = dir / kHfTokenizerFile;
  if (fs::exists(tok))
    out.tokenizer = tokenizer_from_hf_json(files::read_json_file(tok), tok.string());
  return out;
}

ImportedGpt import_gguf_mpt(const fs::path& file) {
  const GgufReader gguf(file);
  const std::string where = file.string();
  if (gguf.get_string("general.architecture") != "mpt")
    throw Error(where + ": architecture \"" + gguf.get_string("general.architecture") +
                "\"; slope imports \"mpt\"");
  if (gguf.find("mpt.attention.clamp_kqv"))
    throw Error(where + ": mpt.attention.clamp_kqv is set, which slope's GPT does not compute");
  const int64_t n_embd = static_cast<int64_t>(gguf.get_uint("mpt.embedding_length"));
  if (gguf.get_uint("mpt.feed_forward_length") != static_cast<uint64_t>(4 * n_embd))
    throw Error(where + ": mpt.feed_forward_length is not 4 × embedding_length");
  const int64_t n_head = static_cast<int64_t>(gguf.get_uint("mpt.attention.head_count"));
  if (gguf.find("mpt.attention.head_count_kv") &&
      gguf.get_uint("mpt.attention.head_count_kv") != static_cast<uint64_t>(n_head))
    throw Error(where + ": grouped keys and values (head_count_kv) are not an MPT slope runs");
  if (std::fabs(gguf.get_float("mpt.attention.layer_norm_epsilon") - nn::kLayerNormEps) > 1e-12)
    throw Error(where + ": mpt.attention.layer_norm_epsilon is not 1e-5");
  const std::vector<std::string>& tokens = gguf.get_strings("tokenizer.ggml.tokens");
  const model::GptConfig config = mpt_config(
      static_cast<int64_t>(gguf.get_uint("mpt.context_length")),
      static_cast<int64_t>(tokens.size()), static_cast<int64_t>(gguf.get_uint("mpt.block_count")),
      n_head, n_embd, gguf.get_float("mpt.attention.max_alibi_bias"));

  ImportedGpt out{std::make_unique<model::Gpt<float>>(config), nullptr};
  const std::vector<MptName> names = mpt_names(config);
  check_covers_table(*out.gpt, names);
  for (const GgufTensorInfo& t : gguf.tensors()) {
    bool known = false;
    for (const MptName& n : names) known = known || n.gguf == t.name;
    if (!known)
      throw Error(where + " holds tensor " + t.name +
                  ", which slope's GPT has no place for (biases, position embeddings, an untied "
                  "output or q/k norms are not imported)");
  }
  for (const MptName& n : names) {
    const std::vector<int64_t>& shape = out.gpt->table().at(n.slope).shape;
    const std::vector<float> w = gguf.read_f32(n.gguf, shape);
    std::copy(w.begin(), w.end(), out.gpt->param(n.slope));
  }
  out.tokenizer = tokenizer_from_gguf(gguf);
  return out;
}

}  // namespace slope::io
