// A slope GPT out as MPT, and back in: Hugging Face's MptForCausalLM (a directory of
// config.json, model.safetensors and tokenizer files) and llama.cpp's `mpt` architecture (one
// GGUF file). MPT is the ALiBi decoder both clients run.
//
// What MPT holds, in slope's terms (transformers/models/mpt/modeling_mpt.py; llama.cpp's
// llm_build_mpt): a GPT with no biases in linear layers or LayerNorms (`--bias false`), no
// position embedding, ALiBi with the slopes of `alibi_bias_max` (slope's `max_bias`: MPT's and
// llama.cpp's formula give alibi_slopes(H, max_bias) for every H, Press's at 8), scale 1/√D, an
// MLP of 4C, LayerNorm eps 1e-5, and the head tied to the embedding. A checkpoint outside that
// (biases, learned/sinusoidal/no positions, learned slopes) is refused with one line saying why.
//
// Where the clients differ from each other: HF's MptMLP computes nn.GELU() — the exact
// x·Φ(x), as slope does — while llama.cpp's mpt graph calls ggml_gelu, the tanh approximation
// (on CPU looked up in a table indexed by the input rounded to fp16). llama.cpp's logits
// therefore differ from slope's and HF's by more than float rounding; tests/python bound it.
//
// Names (slope / nanoGPT → HF MPT → GGUF):
//   transformer.wte.weight            transformer.wte.weight            token_embd.weight
//   transformer.h.{l}.ln_1.weight     transformer.blocks.{l}.norm_1.weight blk.{l}.attn_norm.weight
//   transformer.h.{l}.attn.c_attn.weight  ….attn.Wqkv.weight           blk.{l}.attn_qkv.weight
//   transformer.h.{l}.attn.c_proj.weight  ….attn.out_proj.weight       blk.{l}.attn_output.weight
//   transformer.h.{l}.ln_2.weight     ….norm_2.weight                   blk.{l}.ffn_norm.weight
//   transformer.h.{l}.mlp.c_fc.weight     ….ffn.up_proj.weight         blk.{l}.ffn_up.weight
//   transformer.h.{l}.mlp.c_proj.weight   ….ffn.down_proj.weight       blk.{l}.ffn_down.weight
//   transformer.ln_f.weight           transformer.norm_f.weight         output_norm.weight
// Every weight keeps PyTorch's (out, in) shape; GGUF stores it as ne = [in, out] (io/gguf.h).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "data/tokenizer.h"
#include "io/gguf.h"
#include "model/gpt.h"

namespace slope::io {

// Empty when an MPT can hold `config`; otherwise one line saying why not and what to train
// instead ("the checkpoint has biases (bias true): MPT has none; train with --bias false").
std::string mpt_refusal(const model::GptConfig& config);

struct MptExportOptions {
  // The context length the files declare (HF max_seq_len, GGUF mpt.context_length); 0 means
  // the checkpoint's block_size. ALiBi runs past it in slope; HF MPT builds its bias table for
  // this many positions and refuses longer inputs.
  int64_t max_seq_len = 0;
  GgmlType gguf_type = GgmlType::F32;  // GGUF: F32, or F16 for the matrices (norms stay F32)
  std::string name;                    // GGUF general.name (default "slope-mpt")
};

// Writes dir/config.json, dir/model.safetensors (F32), dir/tokenizer.json and
// dir/tokenizer_config.json (creating dir; each file atomically) so that
// MptForCausalLM.from_pretrained(dir) and AutoTokenizer.from_pretrained(dir) load them. Throws
// slope::Error with mpt_refusal(), for max_bias other than 8 (transformers' MptModel ignores
// alibi_bias_max and always runs the slopes of 8), or for a tokenizer that cannot be written
// (mpt_tokenizer.h).
void export_hf_mpt(const model::Gpt<float>& gpt, const data::Tokenizer& tokenizer,
                   const std::filesystem::path& dir, const MptExportOptions& options = {});

// Writes one GGUF v3 file of architecture `mpt` with every key llama.cpp reads for it and the
// tokenizer in llama.cpp's form, atomically.
void export_gguf_mpt(const model::Gpt<float>& gpt, const data::Tokenizer& tokenizer,
                     const std::filesystem::path& file, const MptExportOptions& options = {});

// A model read back, with its tokenizer when the files hold one slope can rebuild (null
// otherwise: the caller says so).
struct ImportedGpt {
  std::unique_ptr<model::Gpt<float>> gpt;
  std::unique_ptr<data::Tokenizer> tokenizer;
};

// Reads an MptForCausalLM directory (F32 safetensors). Refuses, naming the field, what slope's
// GPT cannot run: clip_qkv, qk_ln, a softmax_scale other than 1/√D, logit_scale, an
// expansion_ratio other than 4, untied embeddings, biases.
ImportedGpt import_hf_mpt(const std::filesystem::path& dir);

// Reads a GGUF file of architecture `mpt` (F32 or F16 tensors; F16 widens exactly to F32).
ImportedGpt import_gguf_mpt(const std::filesystem::path& file);

}  // namespace slope::io
