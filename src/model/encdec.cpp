// The encoder's and the encoder–decoder's forward and backward passes (see encdec.h).
//
// Both stacks run through one pair of functions, stack_forward / stack_backward (model/stack.h,
// the GPT's too): an encoder
// stack is bidirectional with the config's slopes and the source's key lengths; a decoder stack
// is causal and adds, in each block, a cross-attention sub-block over the encoder's output
// ("memory"). Memory per stack and block: GPT's 16·B·T·C values, plus 5·B·T·C + 2·B·S·C for
// the cross sub-block.
#include "model/encdec.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "model/stack.h"
#include "nn/layers.h"
#include "slope/attention.h"

namespace slope::model {

namespace {

// Everything one forward keeps: the encoder stack over (B, S), the decoder's over (B, T) when
// T > 0, and the output head over the last stack.
template <class Real>
struct Acts {
  StackActs<Real> enc, dec;
  Real* branch;             // (B, max(S,T), C) a branch's output on its way to the residual
  Real* logits;             // (B, Tout, Vp)
  Real *losses, *loss_lse;  // (B, Tout)
};

template <class Real>
Acts<Real> carve_acts(Carver<Real>& a, const EncDecConfig& c, int64_t B, int64_t S, int64_t T) {
  const int64_t C = c.n_embd, H = c.n_head;
  Acts<Real> acts;
  acts.enc = carve_stack(a, c.n_layer, B, S, C, H, 0);
  if (T > 0) acts.dec = carve_stack(a, c.n_dec_layer, B, T, C, H, S);
  acts.branch = a.take(B * std::max(S, T) * C);
  const int64_t Tout = T > 0 ? T : S;
  const int64_t Vp = T > 0 ? c.padded_tgt_vocab_size() : c.padded_vocab_size();
  acts.logits = a.take(B * Tout * Vp);
  acts.losses = a.take(B * Tout), acts.loss_lse = a.take(B * Tout);
  return acts;
}

// The calls of the two stacks: the encoder bidirectional over the source's key lengths, the
// decoder causal over the memory (the encoder's output) and its lengths.
template <class Real>
StackCall<Real> encoder_call(const StackOffsets& encoder, const EncDecConfig& c, int64_t B,
                             int64_t S, const int32_t* src, const Real* pos,
                             const int32_t* lengths) {
  StackCall<Real> call{&encoder, false,        B,   S,   c.n_embd,
                       c.n_head, c.vocab_size, src, pos, {false, nullptr, nullptr, lengths},
                       nullptr,  nullptr,      0};
  call.bias.rel = relative_bias_of_real<Real>(relative_bias_of(c.pos, true));  // bidirectional
  return call;
}

template <class Real>
StackCall<Real> decoder_call(const StackOffsets& decoder, const EncDecConfig& c, int64_t B,
                             int64_t T, const int32_t* tgt, const Real* memory,
                             const int32_t* memory_lengths, int64_t S) {
  return {&decoder,
          true,
          B,
          T,
          c.n_embd,
          c.n_head,
          c.tgt_vocab_size,
          tgt,
          nullptr,
          {true, nullptr, nullptr, nullptr},
          memory,
          memory_lengths,
          S};
}

}  // namespace

template <class Real>
EncDec<Real>::EncDec(const EncDecConfig& config, uint64_t seed)
    : EncDec(config, encdec_layout(config), seed) {}

template <class Real>
EncDec<Real>::EncDec(const EncDecConfig& config, EncDecLayout layout, uint64_t seed)
    : ParamArena<Real>(std::move(layout.params.table)),
      config_(config),
      encoder_(std::move(layout.encoder)),
      decoder_(std::move(layout.decoder)),
      encoder_slopes_(slope_scheme(StackRole::encoder, config.pos), encoder_, config.n_head,
                      config.max_bias) {
  if (config.arch == Arch::seq2seq)
    decoder_slopes_ = StackSlopes<Real>(slope_scheme(StackRole::decoder, config.pos), decoder_,
                                        config.n_head, config.max_bias);
  // An encoder has no decoder: its n_dec_layer (any value, unvalidated) counts nowhere.
  const int64_t dec_layers = static_cast<int64_t>(decoder_.blocks.size());
  init_params(this->params(), this->table(), layout.params.init, config_.n_layer + dec_layers,
              config_.n_head, config_.max_bias, seed);
  init_relative_bias(this->params(), encoder_, relative_bias_of(config_.pos, true), config_.n_head,
                     static_cast<double>(config_.block_size), seed);
}

template <class Real>
void EncDec<Real>::refresh_slopes() {
  // The encoder's learned relative bias (Kerple, T5) projected into its domain in place, as the
  // GPT's (Gpt::forward).
  clamp_relative_bias(this->params(), encoder_, relative_bias_of(config_.pos, true),
                      config_.n_head);
  encoder_slopes_.refresh(this->params());
  decoder_slopes_.refresh(this->params());
}

template <class Real>
const Real* EncDec<Real>::positions(int64_t T) {
  if (config_.pos != Position::sinusoidal) return nullptr;  // wpe is read by the caller
  const int64_t C = config_.n_embd;
  if (static_cast<int64_t>(pos_table_.size()) < T * C) {
    pos_table_.resize(static_cast<size_t>(T * C));
    nn::sinusoidal_positions(pos_table_.data(), T, C);
  }
  return pos_table_.data();
}

template <class Real>
void EncDec<Real>::check_length(const char* what, int64_t T) const {
  if (config_.pos == Position::learned && T > config_.block_size)
    throw Error(std::string("EncDec: ") + what + " length " + std::to_string(T) +
                " exceeds block_size " + std::to_string(config_.block_size) +
                " of a model with learned positions (wpe has no rows beyond it)");
}

namespace {

void check_lengths(const char* what, const int32_t* lengths, int64_t B, int64_t S) {
  if (!lengths) return;
  for (int64_t b = 0; b < B; ++b)
    if (lengths[b] < 1 || lengths[b] > S)
      throw Error(std::string("EncDec: ") + what + "[" + std::to_string(b) + "] = " +
                  std::to_string(lengths[b]) + " is outside [1, " + std::to_string(S) + "]");
}

}  // namespace

template <class Real>
Real EncDec<Real>::forward_mlm(const int32_t* idx, const int32_t* lengths, const int32_t* targets,
                               int64_t B, int64_t S) {
  if (config_.arch != Arch::encoder)
    throw Error("EncDec::forward_mlm: the model is a seq2seq; call forward_seq2seq");
  nn::check_sizes("EncDec::forward_mlm", {{"B", B}, {"S", S}});
  nn::check_given("EncDec::forward_mlm", {{"idx", idx}});
  B_ = 0, has_targets_ = false;  // a failed forward leaves nothing to differentiate
  // The lengths first: the targets are read against them.
  check_lengths("src_lengths", lengths, B, S);
  if (targets && lengths)
    for (int64_t b = 0; b < B; ++b)
      for (int64_t t = std::max<int64_t>(lengths[b], 0); t < S; ++t)
        if (targets[b * S + t] != nn::kIgnoreIndex)
          throw Error("EncDec::forward_mlm: target at padded position (" + std::to_string(b) +
                      ", " + std::to_string(t) + ") is not -1: padding never counts in the loss");
  return run_forward(idx, lengths, nullptr, targets, B, S, 0);
}

template <class Real>
Real EncDec<Real>::forward_seq2seq(const int32_t* src, const int32_t* src_lengths,
                                   const int32_t* tgt, const int32_t* targets, int64_t B, int64_t S,
                                   int64_t T) {
  if (config_.arch != Arch::seq2seq)
    throw Error("EncDec::forward_seq2seq: the model is an encoder; call forward_mlm");
  nn::check_sizes("EncDec::forward_seq2seq", {{"B", B}, {"S", S}, {"T", T}});
  nn::check_given("EncDec::forward_seq2seq", {{"src", src}, {"tgt", tgt}});
  B_ = 0, has_targets_ = false;  // a failed forward leaves nothing to differentiate
  return run_forward(src, src_lengths, tgt, targets, B, S, T);
}

template <class Real>
Real EncDec<Real>::run_forward(const int32_t* src, const int32_t* src_lengths, const int32_t* tgt,
                               const int32_t* targets, int64_t B, int64_t S, int64_t T) {
  const EncDecConfig& c = config_;
  check_length("source", S);
  check_lengths("src_lengths", src_lengths, B, S);
  const int64_t C = c.n_embd;
  Carver<Real> counter;
  carve_acts(counter, c, B, S, T);
  if (static_cast<int64_t>(acts_.size()) < counter.used)
    acts_.assign(static_cast<size_t>(counter.used), Real(0));
  Carver<Real> carver{acts_.data()};
  const Acts<Real> a = carve_acts(carver, c, B, S, T);
  B_ = S_ = T_ = 0, has_targets_ = false;  // until this forward has succeeded
  src_.assign(src, src + B * S);
  src_lengths_.assign(src_lengths ? src_lengths : nullptr, src_lengths ? src_lengths + B : nullptr);
  if (tgt) tgt_.assign(tgt, tgt + B * T);
  refresh_slopes();

  const ForwardDropout<Real> drop = forward_dropout<Real>(c.dropout);
  const Real* P = this->params();
  const int32_t* lens = src_lengths_.empty() ? nullptr : src_lengths_.data();

  const StackCall<Real> enc =
      encoder_call<Real>(encoder_, c, B, S, src_.data(), positions(S), lens);
  stack_forward(a.enc, a.branch, enc, P, encoder_slopes_, drop);
  const Real* head_in = a.enc.ln_f;
  const Real* wte = P + encoder_.wte;
  int64_t Tout = S, V = c.vocab_size, Vp = c.padded_vocab_size();
  if (T > 0) {
    const StackCall<Real> dec =
        decoder_call<Real>(decoder_, c, B, T, tgt_.data(), a.enc.ln_f, lens, S);
    stack_forward(a.dec, a.branch, dec, P, decoder_slopes_, drop);
    head_in = a.dec.ln_f, wte = P + decoder_.wte;
    Tout = T, V = c.tgt_vocab_size, Vp = c.padded_tgt_vocab_size();
  }
  nn::matmul_forward(a.logits, head_in, wte, nullptr, B, Tout, C, Vp);

  forward_done(drop);
  B_ = B, S_ = S, T_ = T;
  if (!targets) return std::numeric_limits<Real>::quiet_NaN();
  const Real loss =
      nn::crossentropy_forward(a.losses, a.loss_lse, a.logits, targets, B, Tout, V, Vp);
  targets_.assign(targets, targets + B * Tout);
  has_targets_ = true;
  return loss;
}

template <class Real>
void EncDec<Real>::backward() {
  if (B_ == 0 || !has_targets_)
    throw Error("EncDec::backward: the last forward had no targets (or failed)");
  const EncDecConfig& c = config_;
  const int64_t B = B_, S = S_, T = T_, C = c.n_embd;
  Carver<Real> carver{acts_.data()};
  const Acts<Real> a = carve_acts(carver, c, B, S, T);
  const int64_t N = B * std::max(S, T);
  const int64_t grad_logits_size =
      B * (T > 0 ? T * c.padded_tgt_vocab_size() : S * c.padded_vocab_size());
  Carver<Real> counter;
  carve_grad_acts(counter, grad_logits_size, N, C, B, S);
  if (static_cast<int64_t>(grad_acts_.size()) < counter.used)
    grad_acts_.assign(static_cast<size_t>(counter.used), Real(0));
  Carver<Real> gcarver{grad_acts_.data()};
  const GradActs<Real> g = carve_grad_acts(gcarver, grad_logits_size, N, C, B, S);
  const Real* P = this->params();
  Real* G = this->grads();
  const int32_t* lens = src_lengths_.empty() ? nullptr : src_lengths_.data();

  const BackwardDropout<Real> undrop = backward_dropout(g.dbranch);
  const int64_t Tout = T > 0 ? T : S;
  const int64_t V = T > 0 ? c.tgt_vocab_size : c.vocab_size;
  const int64_t Vp = T > 0 ? c.padded_tgt_vocab_size() : c.padded_vocab_size();
  const StackOffsets& head = T > 0 ? decoder_ : encoder_;
  zero(g.dlogits, B * Tout * Vp);
  nn::crossentropy_backward(g.dlogits, a.logits, a.loss_lse, targets_.data(), Real(1), B, Tout, V,
                            Vp);
  // d(head input): the decoder's ln_f output, or the encoder's (its only use in a MLM). The
  // stack's backward reads it once, first, so a scratch buffer it reuses later may hold it.
  zero(g.dmemory, B * S * C);
  Real* dhead = T > 0 ? g.dsmall : g.dmemory;
  zero(dhead, B * Tout * C);
  nn::matmul_backward(dhead, G + head.wte, nullptr, g.dlogits, T > 0 ? a.dec.ln_f : a.enc.ln_f,
                      P + head.wte, B, Tout, C, Vp);
  if (T > 0) {
    const StackCall<Real> dec =
        decoder_call<Real>(decoder_, c, B, T, tgt_.data(), a.enc.ln_f, lens, S);
    stack_backward(g, a.dec, dhead, dec, P, G, decoder_slopes_, undrop);
  }
  const StackCall<Real> enc = encoder_call<Real>(encoder_, c, B, S, src_.data(), nullptr, lens);
  stack_backward(g, a.enc, g.dmemory, enc, P, G, encoder_slopes_, undrop);
}

template <class Real>
const Real* EncDec<Real>::logits() const {
  if (B_ == 0) throw Error("EncDec::logits: no forward has run yet");
  Carver<Real> a{const_cast<Real*>(acts_.data())};
  return carve_acts(a, config_, B_, S_, T_).logits;
}

template <class Real>
void EncDec<Real>::encode(const int32_t* src, const int32_t* src_lengths, int64_t B, int64_t S) {
  if (config_.arch != Arch::seq2seq) throw Error("EncDec::encode: the model has no decoder");
  nn::check_sizes("EncDec::encode", {{"B", B}, {"S", S}});
  nn::check_given("EncDec::encode", {{"src", src}});
  check_length("source", S);
  check_lengths("src_lengths", src_lengths, B, S);
  const EncDecConfig& c = config_;
  const int64_t C = c.n_embd, H = c.n_head;
  memory_B_ = memory_S_ = 0;
  B_ = 0;  // src_ is about to change: the training forward's state is gone
  refresh_slopes();
  Carver<Real> counter;  // counts with the same aligned takes as the carving below
  carve_stack(counter, c.n_layer, B, S, C, H, 0);
  counter.take(B * S * C);
  if (static_cast<int64_t>(infer_acts_.size()) < counter.used)
    infer_acts_.assign(static_cast<size_t>(counter.used), Real(0));
  Carver<Real> carver{infer_acts_.data()};
  const StackActs<Real> st = carve_stack(carver, c.n_layer, B, S, C, H, 0);
  Real* branch = carver.take(B * S * C);
  src_.assign(src, src + B * S);
  memory_lengths_.assign(src_lengths ? src_lengths : nullptr,
                         src_lengths ? src_lengths + B : nullptr);
  if (memory_lengths_.empty())
    memory_lengths_.assign(static_cast<size_t>(B), static_cast<int32_t>(S));
  const StackCall<Real> enc =
      encoder_call<Real>(encoder_, c, B, S, src_.data(), positions(S), memory_lengths_.data());
  stack_forward(st, branch, enc, this->params(), encoder_slopes_, [](Real*, int64_t, uint64_t) {});
  memory_.assign(st.ln_f, st.ln_f + B * S * C);
  memory_B_ = B, memory_S_ = S;
}

template <class Real>
const Real* EncDec<Real>::decode(const int32_t* tgt, const int32_t* rows, int64_t B2, int64_t T) {
  if (memory_B_ == 0) throw Error("EncDec::decode: call encode first");
  nn::check_sizes("EncDec::decode", {{"B", B2}, {"T", T}});
  nn::check_given("EncDec::decode", {{"tgt", tgt}, {"rows", rows}});
  const EncDecConfig& c = config_;
  const int64_t C = c.n_embd, H = c.n_head, S = memory_S_, Vp = c.padded_tgt_vocab_size();
  std::vector<int32_t> lens(static_cast<size_t>(B2));
  gathered_.resize(static_cast<size_t>(B2 * S * C));
  for (int64_t r = 0; r < B2; ++r) {
    if (rows[r] < 0 || rows[r] >= memory_B_)
      throw Error("EncDec::decode: rows[" + std::to_string(r) + "] = " + std::to_string(rows[r]) +
                  " is not a row of the encoded batch of " + std::to_string(memory_B_));
    std::copy_n(memory_.data() + rows[r] * S * C, S * C, gathered_.data() + r * S * C);
    lens[static_cast<size_t>(r)] = memory_lengths_[static_cast<size_t>(rows[r])];
  }
  Carver<Real> counter;  // counts with the same aligned takes as the carving below
  carve_stack(counter, c.n_dec_layer, B2, T, C, H, S);
  counter.take(B2 * T * C), counter.take(B2 * T * Vp);  // branch, logits
  if (static_cast<int64_t>(infer_acts_.size()) < counter.used)
    infer_acts_.assign(static_cast<size_t>(counter.used), Real(0));
  Carver<Real> carver{infer_acts_.data()};
  const StackActs<Real> st = carve_stack(carver, c.n_dec_layer, B2, T, C, H, S);
  Real* branch = carver.take(B2 * T * C);
  Real* logits = carver.take(B2 * T * Vp);
  tgt_.assign(tgt, tgt + B2 * T);
  const StackCall<Real> dec =
      decoder_call<Real>(decoder_, c, B2, T, tgt_.data(), gathered_.data(), lens.data(), S);
  const Real* P = this->params();
  stack_forward(st, branch, dec, P, decoder_slopes_, [](Real*, int64_t, uint64_t) {});
  nn::matmul_forward(logits, st.ln_f, P + decoder_.wte, nullptr, B2, T, C, Vp);
  B_ = 0;  // the training forward's activations are gone
  return logits;
}

template class EncDec<float>;
template class EncDec<double>;

}  // namespace slope::model
