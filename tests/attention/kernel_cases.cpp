// The cases the kernels are checked on (test_kernels.cpp): awkward shapes, every bias variant,
// and the features of issue 12 (windows, softcap, per-batch and negative slopes, query
// positions, packed documents, dropout).
#include "attention/kernel_cases.h"

#include <string>
#include <utility>
#include <vector>

namespace slope::testing {
namespace {

// Issue 12: sliding windows that cut tiles, softcap, per-batch (B, H) and negative slopes, alone
// and together, on ragged shapes.
std::vector<Case> issue12_cases() {
  std::vector<Case> v;
  auto add = [&](Case c, auto&& set) {
    set(c);
    v.push_back(std::move(c));
  };
  add(mk("window_causal_alibi_T300", 2, 4, 4, 300, 300, 32, 32, true, Bias::kAlibi),
      [](Case& c) { c.window_left = 70; });  // cuts tiles; causal bounds the right side
  add(mk("window_symmetric_gqa_113x203", 2, 6, 2, 113, 203, 48, 40, false, Bias::kSymmetric),
      [](Case& c) { c.window_left = 37, c.window_right = 50, c.ragged = true; });
  add(mk("window_diagonal_only_T130", 1, 2, 2, 130, 130, 16, 16, false, Bias::kNone),
      [](Case& c) { c.window_left = 0, c.window_right = 0; });
  add(mk("window_tq_gt_tk_causal", 1, 3, 3, 203, 113, 16, 16, true, Bias::kLearned),
      [](Case& c) { c.window_left = 10; });  // rows before the first key see nothing
  add(mk("window_right_wider_than_T_nonsym", 1, 4, 4, 150, 150, 24, 24, false, Bias::kNonsymmetric),
      [](Case& c) { c.window_left = 65, c.window_right = 1000; });
  add(mk("window_bool_mask_decode_ragged", 3, 4, 2, 1, 239, 32, 32, true, Bias::kAlibi),
      [](Case& c) { c.window_left = 100, c.ragged = true, c.mask = MaskKind::kBool; });
  add(mk("softcap_alibi_causal_T150", 2, 4, 4, 150, 150, 64, 64, true, Bias::kAlibi),
      [](Case& c) { c.softcap = 2.0f, c.input_scale = 2.0f; });  // |x/softcap| ~ 2: curved
  add(mk("softcap_learned_inputs_1e3", 1, 4, 4, 97, 97, 64, 64, false, Bias::kLearned),
      [](Case& c) { c.softcap = 30.0f, c.input_scale = 1e3f; });  // saturated: sech² ~ 0
  add(mk("softcap_gqa_ragged_D24_Dv20", 3, 4, 2, 70, 150, 24, 20, false, Bias::kNone),
      [](Case& c) { c.softcap = 1.0f, c.ragged = true; });
  // Far tiles of the odd heads are the heavy ones; slopes up to −0.9 on both sides make a
  // skip test that ignored the sign drop tiles that matter (checked: it fails then).
  add(mk("negative_learned_T300_skip_on", 1, 6, 6, 300, 300, 32, 32, false, Bias::kLearned),
      [](Case& c) { c.negative_slopes = true; });
  add(mk("negative_learned_causal_gqa", 2, 6, 3, 113, 203, 32, 32, true, Bias::kLearned),
      [](Case& c) { c.negative_slopes = true; });
  add(mk("per_batch_learned_ragged", 3, 4, 4, 100, 130, 32, 32, false, Bias::kLearned),
      [](Case& c) { c.per_batch_slopes = true, c.ragged = true; });
  add(mk("per_batch_shared_negative_causal", 2, 5, 5, 65, 65, 16, 16, true, Bias::kLearned),
      [](Case& c) { c.per_batch_slopes = c.shared_slopes = c.negative_slopes = true; });
  add(mk("all_window_softcap_per_batch_negative_strided", 2, 6, 3, 150, 170, 40, 24, true,
         Bias::kLearned),
      [](Case& c) {
        c.window_left = 45, c.softcap = 3.0f, c.input_scale = 2.0f;
        c.per_batch_slopes = c.negative_slopes = c.strided = true;
      });
  return v;
}

// Query positions other than the buffer end (QueryPositions).
std::vector<Case> position_cases() {
  std::vector<Case> v;
  {
    Case c = mk("upper_left_alibi_causal_113x203", 1, 6, 6, 113, 203, 64, 64, true, Bias::kAlibi);
    c.positions = QueryPositions::kUpperLeft;
    v.push_back(c);
  }
  {
    Case c = mk("upper_left_symmetric_203x113", 2, 4, 2, 203, 113, 32, 32, false, Bias::kSymmetric);
    c.positions = QueryPositions::kUpperLeft;
    v.push_back(c);
  }
  {
    // Decoding from a KV buffer: 3 new queries end where each row's keys end (one row empty).
    Case c = mk("key_lengths_alibi_causal_gqa", 3, 12, 4, 3, 200, 64, 64, true, Bias::kAlibi);
    c.positions = QueryPositions::kKeyLengths;
    c.key_lengths = {13, 0, 200};
    v.push_back(c);
  }
  {
    // More queries than keys in row 0 (its first queries sit before every key).
    Case c = mk("key_lengths_learned_70x150", 2, 4, 4, 70, 150, 24, 20, false, Bias::kLearned);
    c.positions = QueryPositions::kKeyLengths;
    c.key_lengths = {30, 150};
    v.push_back(c);
  }
  return v;
}

// Packed sequences (cu_seqlens): documents of awkward lengths, Tq_b ≠ Tk_b, empty ones.
std::vector<Case> packed_cases() {
  std::vector<Case> v;
  {
    Case c = mk("packed_1doc_alibi_causal", 1, 4, 4, 1, 1, 32, 32, true, Bias::kAlibi);
    c.docs_q = {200};
    c.docs_k = {200};
    v.push_back(c);
  }
  {
    Case c = mk("packed_3docs_alibi_causal_gqa", 1, 6, 2, 1, 1, 64, 48, true, Bias::kAlibi);
    c.docs_q = {65, 63, 1};  // the last document has no keys: a zero row, lse −inf
    c.docs_k = {200, 64, 0};
    v.push_back(c);
  }
  {
    Case c = mk("packed_8docs_learned_strided_gqa", 1, 4, 2, 1, 1, 32, 32, false, Bias::kLearned);
    c.docs_q = {0, 1, 63, 64, 65, 200, 3, 64};
    c.docs_k = {1, 0, 65, 63, 200, 64, 64, 200};
    c.strided = true;
    v.push_back(c);
  }
  {
    Case c =
        mk("packed_8docs_nonsymmetric_D24_Dv20", 1, 6, 3, 1, 1, 24, 20, false, Bias::kNonsymmetric);
    c.docs_q = {64, 200, 0, 1, 65, 63, 3, 130};
    c.docs_k = {65, 130, 3, 0, 1, 64, 200, 63};
    v.push_back(c);
  }
  {
    Case c = mk("packed_3docs_bool_mask_symmetric", 1, 4, 4, 1, 1, 16, 16, false, Bias::kSymmetric);
    c.docs_q = {70, 1, 33};
    c.docs_k = {20, 90, 65};
    c.mask = MaskKind::kBool;
    v.push_back(c);
  }
  {
    Case c = mk("packed_upper_left_alibi_causal", 1, 4, 4, 1, 1, 32, 32, true, Bias::kAlibi);
    c.docs_q = {100, 5, 64};
    c.docs_k = {50, 80, 65};
    c.positions = QueryPositions::kUpperLeft;
    v.push_back(c);
  }
  return v;
}

}  // namespace

// Issue 19: the learned relative biases (Kerple, T5, FIRE), alone and with the features around
// them: ragged keys, grouped queries, packing, windows, softcap, dropout, far-tile skipping.
std::vector<Case> relative_bias_cases() {
  std::vector<Case> v;
  auto add = [&](Case c, RelativeBiasKind kind, auto&& set) {
    c.rel.kind = kind;
    set(c);
    v.push_back(std::move(c));
  };
  auto none = [](Case&) {};
  add(mk("kerple_log_causal_T300", 2, 4, 4, 300, 300, 32, 32, true, Bias::kNone),
      RelativeBiasKind::kKerpleLog, none);
  // r1 up to 40: far tiles fall below the skip threshold and are skipped (the suffix-maximum
  // bound), their dropped mass inside the error model's droppable-key term.
  add(mk("kerple_log_strong_skips_T400", 1, 4, 2, 400, 400, 32, 32, false, Bias::kNone),
      RelativeBiasKind::kKerpleLog, [](Case& c) { c.rel.scale = 20.0f; });
  add(mk("kerple_power_ragged_gqa_113x203", 2, 6, 3, 113, 203, 48, 40, false, Bias::kNone),
      RelativeBiasKind::kKerplePower, [](Case& c) { c.ragged = true; });
  add(mk("t5_bidirectional_T200_softcap", 2, 4, 4, 200, 200, 32, 32, false, Bias::kNone),
      RelativeBiasKind::kT5, [](Case& c) { c.softcap = 3.0f, c.input_scale = 2.0f; });
  add(mk("t5_causal_T300_window", 1, 4, 4, 300, 300, 24, 24, true, Bias::kNone),
      RelativeBiasKind::kT5, [](Case& c) {
        c.rel.bidirectional = false;
        c.window_left = 150;
      });
  add(mk("t5_causal_packed_dropout", 1, 4, 2, 1, 1, 32, 32, true, Bias::kNone),
      RelativeBiasKind::kT5, [](Case& c) {
        c.rel.bidirectional = false;
        c.docs_q = {70, 0, 130};
        c.docs_k = {70, 5, 130};
        c.dropout_p = 0.2f;
      });
  // L = 40: rows before it take the distance histogram, rows after it the per-score path.
  add(mk("fire_causal_T300_L40", 2, 4, 4, 300, 300, 32, 32, true, Bias::kNone),
      RelativeBiasKind::kFire, none);
  // L past every row: one normaliser, the histogram path only.
  add(mk("fire_causal_T200_L512_gqa", 1, 6, 2, 200, 200, 64, 64, true, Bias::kNone),
      RelativeBiasKind::kFire, [](Case& c) { c.rel.fire_L = 512.0; });
  // Bidirectional: keys right of max(L, p_i) are clamped to u = 1.
  add(mk("fire_bidirectional_ragged_97x150", 2, 4, 4, 97, 150, 32, 24, false, Bias::kNone),
      RelativeBiasKind::kFire, [](Case& c) {
        c.ragged = true;
        c.rel.fire_L = 20.0;
        c.rel.fire_grid = 64;
      });
  return v;
}

std::vector<Case> kernel_cases() {
  std::vector<Case> v = relative_bias_cases();
  v.push_back(mk("none_T1", 1, 1, 1, 1, 1, 16, 16, false, Bias::kNone));
  v.push_back(mk("none_tile_plus_one", 2, 5, 5, 65, 65, 32, 32, false, Bias::kNone));
  v.push_back(mk("causal_113x203", 1, 6, 6, 113, 203, 64, 64, true, Bias::kNone));
  v.push_back(mk("causal_tq_gt_tk", 1, 1, 1, 203, 113, 16, 16, true, Bias::kNone));
  v.push_back(mk("alibi_causal_T65", 2, 12, 12, 65, 65, 64, 64, true, Bias::kAlibi));
  v.push_back(mk("alibi_causal_1x239", 2, 5, 5, 1, 239, 80, 80, true, Bias::kAlibi));
  v.push_back(mk("alibi_causal_gqa", 2, 6, 2, 113, 203, 128, 64, true, Bias::kAlibi));
  v.push_back(mk("alibi_causal_T200_D128", 1, 12, 12, 200, 200, 128, 128, true, Bias::kAlibi));
  v.push_back(mk("symmetric_113x203", 1, 5, 5, 113, 203, 80, 80, false, Bias::kSymmetric));
  {
    Case c = mk("symmetric_ragged", 3, 6, 6, 130, 130, 32, 32, false, Bias::kSymmetric);
    c.ragged = true;
    v.push_back(c);
  }
  v.push_back(mk("nonsymmetric_T129", 1, 6, 6, 129, 129, 64, 64, false, Bias::kNonsymmetric));
  {
    Case c =
        mk("nonsymmetric_ragged_D80_Dv48", 2, 6, 3, 97, 150, 80, 48, false, Bias::kNonsymmetric);
    c.ragged = true;
    v.push_back(c);
  }
  v.push_back(mk("learned_113x203", 1, 5, 5, 113, 203, 16, 16, false, Bias::kLearned));
  {
    Case c = mk("learned_shared", 1, 6, 6, 65, 65, 32, 32, false, Bias::kLearned);
    c.shared_slopes = true;
    v.push_back(c);
  }
  {
    Case c = mk("alibi_causal_inputs_1e3", 1, 6, 6, 97, 97, 64, 64, true, Bias::kAlibi);
    c.input_scale = 1e3f;  // P one-hot: exact dq, dk, dslopes ~0 from cancelling terms
    v.push_back(c);
  }
  {
    Case c = mk("bool_mask_symmetric", 2, 5, 5, 70, 90, 16, 16, false, Bias::kSymmetric);
    c.mask = MaskKind::kBool;
    v.push_back(c);
  }
  {
    Case c = mk("additive_mask_causal", 1, 6, 6, 65, 130, 32, 32, true, Bias::kNone);
    c.mask = MaskKind::kAdditive;
    v.push_back(c);
  }
  {
    Case c = mk("strided_alibi_gqa", 2, 6, 3, 100, 100, 64, 64, true, Bias::kAlibi);
    c.strided = true;
    v.push_back(c);
  }
  {
    Case c = mk("decode_ragged_gqa", 3, 12, 4, 1, 239, 64, 64, true, Bias::kAlibi);
    c.ragged = true;
    v.push_back(c);
  }
  v.push_back(mk("symmetric_H1_T300", 1, 1, 1, 300, 300, 32, 32, false, Bias::kSymmetric));
  {
    // Skipping off, steep heads far from the diagonal: probabilities below fp32's range come
    // out of exp as 0 (the error model counts them as droppable, as skipped ones).
    Case c = mk("alibi_causal_1x239_skip_off", 2, 5, 5, 1, 239, 80, 80, true, Bias::kAlibi);
    c.skip_tolerance = 0.0f;
    v.push_back(c);
  }
  // Non-power-of-two slopes with ragged tiles: the forward's fast-path tiles and the backward's
  // general-path tiles must round the biased score alike (found in review: dv was 2.7× the
  // fp32 error on AVX2/AVX-512 before the general path used one multiply-add too).
  {
    // Rows far past a short key length have |lse| ~ 10², where an ulp of |s| shows.
    Case c = mk("learned_short_keys_T300", 2, 4, 4, 300, 300, 32, 32, false, Bias::kLearned);
    c.key_lengths = {30, 300};
    v.push_back(c);
  }
  {
    Case c = mk("learned_ragged_D24_Dv20", 3, 4, 4, 150, 150, 24, 20, false, Bias::kLearned);
    c.ragged = true;  // lengths 0, Tk and one partial; D, Dv not whole vectors: padded tiles
    v.push_back(c);
  }
  {
    // Tk = 1: every row has one key, P = 1
    v.push_back(mk("learned_tq_gt_tk_noncausal", 1, 3, 3, 100, 1, 16, 16, false, Bias::kLearned));
  }
  {
    Case c = mk("alibi_H12_causal_ragged", 3, 12, 12, 130, 130, 32, 32, true, Bias::kAlibi);
    c.ragged = true;
    v.push_back(c);
  }
  for (Case& c : position_cases()) v.push_back(c);
  for (Case& c : packed_cases()) v.push_back(c);
  // Dropout (p = 0.1, 0.5, 0.9): the same mask in the kernels, the reference and the model.
  auto dropout = [&](Case c, float p) {
    c.dropout_p = p;
    v.push_back(c);
  };
  dropout(mk("dropout_01_alibi_causal_gqa", 2, 6, 2, 113, 203, 64, 64, true, Bias::kAlibi), 0.1f);
  dropout(mk("dropout_05_none_tile_plus_one", 2, 5, 5, 65, 65, 32, 32, false, Bias::kNone), 0.5f);
  dropout(mk("dropout_09_causal_tq_gt_tk", 1, 2, 1, 203, 113, 16, 16, true, Bias::kNone), 0.9f);
  {
    Case c = mk("dropout_05_symmetric_ragged", 3, 6, 6, 130, 130, 32, 32, false, Bias::kSymmetric);
    c.ragged = true;
    dropout(c, 0.5f);
  }
  {
    Case c =
        mk("dropout_09_learned_ragged_D24_Dv20", 3, 4, 2, 97, 150, 24, 20, false, Bias::kLearned);
    c.ragged = true;
    dropout(c, 0.9f);
  }
  {
    Case c = mk("dropout_01_strided_nonsymmetric", 2, 6, 3, 100, 129, 64, 48, false,
                Bias::kNonsymmetric);
    c.strided = true;
    dropout(c, 0.1f);
  }
  {
    Case c = mk("dropout_05_decode_ragged_gqa", 3, 12, 4, 1, 239, 64, 64, true, Bias::kAlibi);
    c.ragged = true;
    dropout(c, 0.5f);
  }
  {
    Case c = mk("dropout_05_alibi_causal_inputs_1e3", 1, 6, 6, 97, 97, 64, 64, true, Bias::kAlibi);
    c.input_scale = 1e3f;
    dropout(c, 0.5f);
  }
  {
    // Packed documents: the mask's (b, i, j) are the document's and its own rows and keys.
    Case c =
        mk("dropout_05_packed_3docs_alibi_causal_gqa", 1, 6, 2, 1, 1, 32, 32, true, Bias::kAlibi);
    c.docs_q = {65, 63, 1};
    c.docs_k = {200, 64, 0};
    dropout(c, 0.5f);
  }
  {
    Case c = mk("dropout_09_upper_left_learned", 2, 4, 4, 70, 130, 32, 32, true, Bias::kLearned);
    c.positions = QueryPositions::kUpperLeft;
    dropout(c, 0.9f);
  }
  {
    // With the rest of issue 12: a window, softcap, per-batch slopes of either sign.
    Case c = mk("dropout_05_window_softcap_per_batch_negative", 2, 4, 2, 97, 150, 32, 32, false,
                Bias::kLearned);
    c.window_left = 40, c.window_right = 70, c.softcap = 5.0f;
    c.per_batch_slopes = c.negative_slopes = c.ragged = true;
    dropout(c, 0.5f);
  }
  for (Case& c : issue12_cases()) v.push_back(std::move(c));
  return v;
}

}  // namespace slope::testing
