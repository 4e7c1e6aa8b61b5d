//! A decoder block's attention from Rust: x → q, k, v projections → causal ALiBi attention over a
//! padded batch → merged heads, and the backward for learned slopes. The code of
//! docs/c-and-rust.md; the tests run it (`cargo run --example decoder_attention`).
use slope::{Attention, Gradients, Slopes};

/// Weights of a toy projection, deterministic: w[o][i] = sin(seed·o + i) / sqrt(fan_in).
fn projection(out_dim: usize, in_dim: usize, seed: f32) -> Vec<f32> {
    let s = 1.0 / (in_dim as f32).sqrt();
    (0..out_dim * in_dim)
        .map(|n| (seed * (n / in_dim) as f32 + (n % in_dim) as f32).sin() * s)
        .collect()
}

/// y (T, out) = x (T, in) · wᵀ.
fn linear(x: &[f32], w: &[f32], in_dim: usize) -> Vec<f32> {
    let out_dim = w.len() / in_dim;
    let t = x.len() / in_dim;
    let mut y = vec![0.0; t * out_dim];
    for i in 0..t {
        for o in 0..out_dim {
            y[i * out_dim + o] = (0..in_dim).map(|c| x[i * in_dim + c] * w[o * in_dim + c]).sum();
        }
    }
    y
}

/// (B, T, H, D) rows of a projection as the (B, H, T, D) layout slope reads.
fn split_heads(x: &[f32], t: usize, h: usize, d: usize) -> Vec<f32> {
    let mut y = vec![0.0; x.len()];
    for (n, e) in y.iter_mut().enumerate() {
        let (bb, hh, tt, dd) = (n / (h * t * d), n / (t * d) % h, n / d % t, n % d);
        *e = x[((bb * t + tt) * h + hh) * d + dd];
    }
    y
}

fn main() -> Result<(), slope::Error> {
    let (b, t, c, h) = (2, 12, 32, 4); // batch, tokens, channels, heads
    let d = c / h;
    // Embeddings of two sequences; the second has 7 real tokens, then padding.
    let x: Vec<f32> = (0..b * t * c).map(|n| ((n * 37 % 101) as f32 / 50.0) - 1.0).collect();
    let key_lengths = [12, 7];

    // The block's projections, then heads.
    let (wq, wk, wv) = (projection(c, c, 0.7), projection(c, c, 1.3), projection(c, c, 2.1));
    let q = split_heads(&linear(&x, &wq, c), t, h, d);
    let k = split_heads(&linear(&x, &wk, c), t, h, d);
    let v = split_heads(&linear(&x, &wv, c), t, h, d);

    // Causal ALiBi with Press et al.'s slopes; padding by key lengths, no mask tensor.
    let slopes = slope::alibi_slopes(h, slope::DEFAULT_MAX_BIAS)?;
    let mut attn = Attention::new(b, h, h, t, t, d);
    attn.causal = true;
    attn.key_lengths = Some(&key_lengths);

    let mut out = vec![0.0; b * h * t * d]; // (B, H, T, D)
    let mut lse = vec![0.0; b * h * t]; // (B, H, T)
    attn.forward(&q, &k, &v, Slopes::Symmetric(&slopes), &mut out, &mut lse)?;

    // Backward, as a training step would: here dout = out (the gradient of ½‖out‖²).
    let (mut dq, mut dk, mut dv) = (vec![0.0; q.len()], vec![0.0; k.len()], vec![0.0; v.len()]);
    let mut dslopes = vec![0.0; h];
    let grads = Gradients {
        dq: &mut dq,
        dk: &mut dk,
        dv: &mut dv,
        dslopes_left: Some(&mut dslopes),
        dslopes_right: None,
    };
    attn.backward(&q, &k, &v, Slopes::Symmetric(&slopes), &out, &out, &lse, grads)?;

    let norm = out.iter().map(|e| e * e).sum::<f32>().sqrt();
    println!(
        "slope {} ({}): |out| = {norm:.4}, dslopes = {dslopes:?}",
        slope::version(),
        slope::cpu_isa()
    );
    assert!(norm.is_finite() && dslopes.iter().all(|g| g.is_finite()));

    // A mistake is an Err with the library's message, never a crash.
    let mut wrong = attn.clone();
    wrong.kv_heads = 3;
    match wrong.forward(&q, &k, &v, Slopes::Symmetric(&slopes), &mut out, &mut lse) {
        Err(e) => println!("kv_heads = 3: {e}"),
        Ok(()) => panic!("kv_heads = 3 was accepted"),
    }
    Ok(())
}
