//! The crate against a small pure-Rust float64 reference: causal ALiBi attention with a bool mask
//! and padding (key lengths), grouped queries, forward and backward; and the errors, from this
//! crate's shape checks and from the library's own checks.
use slope::{Attention, ErrorKind, Gradients, Mask, MaskValues, Slopes};

/// A small deterministic generator (xorshift64*), uniform in [-1, 1).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> f32 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let x = self.0.wrapping_mul(0x2545F4914F6CDD1D) >> 40; // 24 bits
        x as f32 / (1u64 << 23) as f32 - 1.0
    }
    fn vec(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.next()).collect()
    }
}

/// The problem the reference computes: causal (queries and keys aligned, Tq = Tk = T), ALiBi
/// slopes per head, keys j >= len[b] masked, mask[b, i, j] (broadcast over heads) false masks.
struct Case {
    b: usize,
    h: usize,
    hkv: usize,
    t: usize,
    d: usize,
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    dout: Vec<f32>,
    slopes: Vec<f32>,
    lens: Vec<i32>,
    mask: Vec<u8>, // (B, 1, T, T)
}

struct Reference {
    out: Vec<f64>,
    lse: Vec<f64>,
    dq: Vec<f64>,
    dk: Vec<f64>,
    dv: Vec<f64>,
    dslopes: Vec<f64>,
}

/// Attention from its definition, in f64: P = softmax(scale·q·kᵀ − m_h·(i − j)) over the
/// visible keys, out = P·v; backward dP = dout·vᵀ, dS = P∘(dP − rowsum(P∘dP)), dq = scale·dS·k,
/// dk = scale·dSᵀ·q, dv = Pᵀ·dout, dm_h = Σ dS_ij·(−(i − j)).
fn reference(c: &Case) -> Reference {
    let (t, d) = (c.t, c.d);
    let scale = 1.0 / (d as f64).sqrt();
    let n_q = c.b * c.h * t * d;
    let n_k = c.b * c.hkv * t * d;
    let mut r = Reference {
        out: vec![0.0; n_q],
        lse: vec![0.0; c.b * c.h * t],
        dq: vec![0.0; n_q],
        dk: vec![0.0; n_k],
        dv: vec![0.0; n_k],
        dslopes: vec![0.0; c.h],
    };
    for b in 0..c.b {
        for h in 0..c.h {
            let hk = h / (c.h / c.hkv);
            let qrow = |i: usize| ((b * c.h + h) * t + i) * d;
            let krow = |j: usize| ((b * c.hkv + hk) * t + j) * d;
            for i in 0..t {
                let visible =
                    |j: usize| j <= i && (j as i32) < c.lens[b] && c.mask[(b * t + i) * t + j] != 0;
                let mut s = vec![f64::NEG_INFINITY; t];
                for j in (0..t).filter(|&j| visible(j)) {
                    let dot: f64 =
                        (0..d).map(|x| c.q[qrow(i) + x] as f64 * c.k[krow(j) + x] as f64).sum();
                    s[j] = scale * dot - c.slopes[h] as f64 * (i - j) as f64;
                }
                let mx = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let lrow = (b * c.h + h) * t + i;
                if mx == f64::NEG_INFINITY {
                    r.lse[lrow] = f64::NEG_INFINITY; // no visible key: out 0, gradients 0
                    continue;
                }
                let sum: f64 = s.iter().map(|&x| (x - mx).exp()).sum();
                r.lse[lrow] = mx + sum.ln();
                let p: Vec<f64> = s.iter().map(|&x| (x - r.lse[lrow]).exp()).collect();
                for x in 0..d {
                    r.out[qrow(i) + x] = (0..t).map(|j| p[j] * c.v[krow(j) + x] as f64).sum();
                }
                let dp: Vec<f64> = (0..t)
                    .map(|j| {
                        (0..d).map(|x| c.dout[qrow(i) + x] as f64 * c.v[krow(j) + x] as f64).sum()
                    })
                    .collect();
                let di: f64 = (0..t).map(|j| p[j] * dp[j]).sum();
                for j in 0..t {
                    let ds = p[j] * (dp[j] - di);
                    for x in 0..d {
                        r.dq[qrow(i) + x] += scale * ds * c.k[krow(j) + x] as f64;
                        r.dk[krow(j) + x] += scale * ds * c.q[qrow(i) + x] as f64;
                        r.dv[krow(j) + x] += p[j] * c.dout[qrow(i) + x] as f64;
                    }
                    if p[j] > 0.0 {
                        r.dslopes[h] += ds * -((i - j) as f64);
                    }
                }
            }
        }
    }
    r
}

fn decoder_case() -> Case {
    let (b, h, hkv, t, d) = (2, 4, 2, 19, 8);
    let mut rng = Rng(0x5eed);
    let mut mask = vec![1u8; b * t * t];
    for (n, m) in mask.iter_mut().enumerate() {
        if n % 7 == 3 {
            *m = 0;
        }
    }
    // Row 1, query 0: its only causal key masked, so the row has no visible key at all.
    mask[t * t] = 0;
    Case {
        b,
        h,
        hkv,
        t,
        d,
        q: rng.vec(b * h * t * d),
        k: rng.vec(b * hkv * t * d),
        v: rng.vec(b * hkv * t * d),
        dout: rng.vec(b * h * t * d),
        slopes: slope::alibi_slopes(h, slope::DEFAULT_MAX_BIAS).unwrap(),
        lens: vec![19, 11], // row 1: 11 real tokens, 8 of padding
        mask,
    }
}

fn attention(c: &Case) -> Attention<'_> {
    let mut a = Attention::new(c.b, c.h, c.hkv, c.t, c.t, c.d);
    a.causal = true;
    a.key_lengths = Some(&c.lens);
    a.mask = Some(Mask {
        values: MaskValues::Bool(&c.mask),
        broadcast_batch: false,
        broadcast_heads: true,
    });
    a
}

/// max |got − want| / (1 + |want|) over finite elements; infinities must agree exactly.
fn max_rel_error(got: &[f32], want: &[f64]) -> f64 {
    assert_eq!(got.len(), want.len());
    got.iter()
        .zip(want)
        .map(|(&g, &w)| {
            if w.is_infinite() || g.is_infinite() {
                assert_eq!(g as f64, w, "an infinity differs");
                0.0
            } else {
                (g as f64 - w).abs() / (1.0 + w.abs())
            }
        })
        .fold(0.0, f64::max)
}

#[test]
fn causal_alibi_with_mask_and_padding_matches_the_reference() {
    let c = decoder_case();
    let a = attention(&c);
    let mut out = vec![f32::NAN; c.q.len()];
    let mut lse = vec![f32::NAN; c.b * c.h * c.t];
    a.forward(&c.q, &c.k, &c.v, Slopes::Symmetric(&c.slopes), &mut out, &mut lse).unwrap();
    let r = reference(&c);
    // fp32 with |q|, |k|, |v| <= 1, D = 8 and at most 19 keys: errors of a few 1e-7; 1e-5
    // leaves room for any summation order yet fails on any wrong mask, slope or length.
    assert!(max_rel_error(&out, &r.out) < 1e-5, "out: {}", max_rel_error(&out, &r.out));
    assert!(max_rel_error(&lse, &r.lse) < 1e-5, "lse: {}", max_rel_error(&lse, &r.lse));
    // The fully masked row: out 0 and lse −∞, never NaN.
    let row = (c.h * c.t) * c.d; // b = 1, h = 0, i = 0
    assert!(out[row..row + c.d].iter().all(|&x| x == 0.0));
    assert_eq!(lse[c.h * c.t], f32::NEG_INFINITY);

    let (mut dq, mut dk, mut dv) =
        (vec![0.0; c.q.len()], vec![0.0; c.k.len()], vec![0.0; c.v.len()]);
    let mut dslopes = vec![0.0; c.h];
    let grads = Gradients {
        dq: &mut dq,
        dk: &mut dk,
        dv: &mut dv,
        dslopes_left: Some(&mut dslopes),
        dslopes_right: None,
    };
    a.backward(&c.q, &c.k, &c.v, Slopes::Symmetric(&c.slopes), &out, &c.dout, &lse, grads).unwrap();
    assert!(max_rel_error(&dq, &r.dq) < 1e-5, "dq: {}", max_rel_error(&dq, &r.dq));
    assert!(max_rel_error(&dk, &r.dk) < 1e-5, "dk: {}", max_rel_error(&dk, &r.dk));
    assert!(max_rel_error(&dv, &r.dv) < 1e-5, "dv: {}", max_rel_error(&dv, &r.dv));
    // The slope gradient sums B·T·T terms of size up to T: scale the bound by that sum.
    let dsl_err = max_rel_error(&dslopes, &r.dslopes);
    assert!(dsl_err < 1e-4, "dslopes: {dsl_err} ({dslopes:?} vs {:?})", r.dslopes);
}

#[test]
fn padding_matters_and_the_reference_sees_it() {
    // A planted difference must show: without the key lengths the outputs of row 1 change.
    let c = decoder_case();
    let mut a = attention(&c);
    a.key_lengths = None;
    let mut out = vec![0.0; c.q.len()];
    let mut lse = vec![0.0; c.b * c.h * c.t];
    a.forward(&c.q, &c.k, &c.v, Slopes::Symmetric(&c.slopes), &mut out, &mut lse).unwrap();
    assert!(max_rel_error(&out, &reference(&c).out) > 1e-3);
}

#[test]
fn presets() {
    let s = slope::alibi_slopes(8, slope::DEFAULT_MAX_BIAS).unwrap();
    let want: Vec<f32> = (1..=8).map(|h| 2f32.powi(-h)).collect();
    assert_eq!(s, want);
    let g = slope::alibi_slopes_geometric(6, 8.0).unwrap();
    assert_eq!(g[5], 2f32.powi(-8));
    let (l, r) = slope::alibi_slopes_nonsymmetric(4, 8.0).unwrap();
    assert_eq!(l, vec![0.0625, 0.00390625, f32::INFINITY, f32::INFINITY]);
    assert_eq!(r, vec![f32::INFINITY, f32::INFINITY, 0.0625, 0.00390625]);
}

#[test]
fn shape_errors_are_caught_before_the_call() {
    let c = decoder_case();
    let a = attention(&c);
    let mut out = vec![0.0; c.q.len()];
    let mut lse = vec![0.0; c.b * c.h * c.t];
    let e = a
        .forward(&c.q[1..], &c.k, &c.v, Slopes::Symmetric(&c.slopes), &mut out, &mut lse)
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Shape);
    assert!(e.message.contains("q has 1215 elements"), "{e}");
    let e = a
        .forward(&c.q, &c.k, &c.v, Slopes::Symmetric(&c.slopes[..3]), &mut out, &mut lse)
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Shape);
    assert!(e.message.contains("slopes are (H) = 4"), "{e}");
    let mut short = a.clone();
    short.key_lengths = Some(&c.lens[..1]);
    let e = short
        .forward(&c.q, &c.k, &c.v, Slopes::Symmetric(&c.slopes), &mut out, &mut lse)
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Shape);
    assert!(e.message.contains("key_lengths has 1 elements"), "{e}");
    let e = a
        .forward(&c.q, &c.k, &c.v, Slopes::Symmetric(&c.slopes), &mut out, &mut lse[1..])
        .unwrap_err();
    assert!(e.message.contains("lse has"), "{e}");
}

#[test]
fn the_librarys_errors_come_back_with_its_message() {
    let c = decoder_case();
    let mut out = vec![0.0; c.q.len()];
    let mut lse = vec![0.0; c.b * c.h * c.t];
    // A key length longer than the keys.
    let lens = [19, 20];
    let mut a = attention(&c);
    a.key_lengths = Some(&lens);
    let e =
        a.forward(&c.q, &c.k, &c.v, Slopes::Symmetric(&c.slopes), &mut out, &mut lse).unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidArgument);
    assert!(e.message.contains("key_lengths[1] = 20 is outside [0, Tk=19]"), "{e}");
    // A NaN slope.
    let mut bad = c.slopes.clone();
    bad[1] = f32::NAN;
    let e = attention(&c)
        .forward(&c.q, &c.k, &c.v, Slopes::Symmetric(&bad), &mut out, &mut lse)
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidArgument);
    assert!(e.message.contains("is NaN or -inf"), "{e}");
    // Heads that do not group: 4 query heads over 3 key/value heads (k, v sized to match).
    let mut g = Attention::new(1, 4, 3, 2, 2, 4);
    g.causal = true;
    let (q, kv) = (vec![0.0; 4 * 2 * 4], vec![0.0; 3 * 2 * 4]);
    let (mut o, mut l) = (vec![0.0; 4 * 2 * 4], vec![0.0; 4 * 2]);
    let e = g.forward(&q, &kv, &kv, Slopes::None, &mut o, &mut l).unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidArgument);
    assert!(e.message.contains("H=4 is not a multiple of Hkv=3"), "{e}");
    // Zero-sized problems are the library's to refuse.
    let z = Attention::new(1, 1, 1, 0, 1, 4);
    let e = z.forward(&[], &[0.0; 4], &[0.0; 4], Slopes::None, &mut [], &mut []).unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidArgument);
    assert!(e.message.contains("every size must be >= 1"), "{e}");
    // Presets.
    let e = slope::alibi_slopes_nonsymmetric(5, 8.0).unwrap_err();
    assert!(e.message.contains("must be even"), "{e}");
    assert_eq!(slope::alibi_slopes(0, 8.0).unwrap_err().kind, ErrorKind::InvalidArgument);
    assert!(slope::alibi_slopes(4, f64::NAN).unwrap_err().message.contains("max_bias"));
}

#[test]
fn packed_documents_equal_each_document_alone() {
    // Two documents of 5 and 3 tokens packed as (total, H, D), against each run as its own batch.
    let (h, d) = (2, 4);
    let (cu, lens) = ([0, 5, 8], [5usize, 3]);
    let mut rng = Rng(99);
    let (q, k, v) = (rng.vec(8 * h * d), rng.vec(8 * h * d), rng.vec(8 * h * d));
    let slopes = slope::alibi_slopes(h, slope::DEFAULT_MAX_BIAS).unwrap();
    let mut packed = Attention::new(2, h, h, 5, 5, d);
    packed.causal = true;
    packed.cu_seqlens = Some((&cu, &cu));
    let (mut out, mut lse) = (vec![0.0; 8 * h * d], vec![0.0; h * 8]);
    packed.forward(&q, &k, &v, Slopes::Symmetric(&slopes), &mut out, &mut lse).unwrap();

    // (total, H, D) rows of document `doc` as a (1, H, T, D) tensor.
    let doc_tensor = |x: &[f32], doc: usize| -> Vec<f32> {
        let (start, t) = (cu[doc] as usize, lens[doc]);
        let mut y = vec![0.0; h * t * d];
        for hh in 0..h {
            for i in 0..t {
                for e in 0..d {
                    y[(hh * t + i) * d + e] = x[((start + i) * h + hh) * d + e];
                }
            }
        }
        y
    };
    for doc in 0..2 {
        let t = lens[doc];
        let mut alone = Attention::new(1, h, h, t, t, d);
        alone.causal = true;
        let (mut o, mut l) = (vec![0.0; h * t * d], vec![0.0; h * t]);
        let (qd, kd, vd) = (doc_tensor(&q, doc), doc_tensor(&k, doc), doc_tensor(&v, doc));
        alone.forward(&qd, &kd, &vd, Slopes::Symmetric(&slopes), &mut o, &mut l).unwrap();
        let want = doc_tensor(&out, doc);
        let err = o.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(err < 1e-6, "document {doc}: {err}");
        for hh in 0..h {
            for i in 0..t {
                // lse is (H, total_q) when packed.
                let (a, b) = (l[hh * t + i], lse[hh * 8 + cu[doc] as usize + i]);
                assert!((a - b).abs() < 1e-6, "lse of document {doc}: {a} vs {b}");
            }
        }
    }
}

#[test]
fn per_batch_slopes_are_told_by_their_length() {
    // (B, H) slopes whose rows are the shared (H) slopes give the same output; a different
    // second row changes only the second batch row.
    let c = decoder_case();
    let a = attention(&c);
    let run = |s: &[f32]| {
        let (mut out, mut lse) = (vec![0.0; c.q.len()], vec![0.0; c.b * c.h * c.t]);
        a.forward(&c.q, &c.k, &c.v, Slopes::Symmetric(s), &mut out, &mut lse).unwrap();
        out
    };
    let shared = run(&c.slopes);
    let mut per_batch = [c.slopes.clone(), c.slopes.clone()].concat();
    assert_eq!(run(&per_batch), shared);
    per_batch[c.h] = 2.0;
    let changed = run(&per_batch);
    let half = c.q.len() / 2;
    assert_eq!(changed[..half], shared[..half]);
    assert_ne!(changed[half..], shared[half..]);
}
