//! slope from Rust: fused attention with ALiBi (per-head slopes, never a T×T bias tensor), an
//! optional mask, padding, grouped queries, packed sequences, a sliding window, softcap and
//! dropout — forward (out, logsumexp) and backward (dq, dk, dv, slope gradients) — over slope's
//! C interface (libslope.so, include/slope/slope.h).
//!
//! Tensors are contiguous `f32` slices: q (B, H, Tq, D), k (B, Hkv, Tk, D), v (B, Hkv, Tk, Dv),
//! out (B, H, Tq, Dv), lse (B, H, Tq); with packed sequences (total, H, D) and lse (H, total_q).
//! Every slice length is checked against the shapes before the library is called, and the
//! library checks the problem itself; both kinds of error come back as [`Error`].
//!
//! ```no_run
//! let (b, h, t, d) = (1, 4, 16, 32);
//! let q = vec![0.1f32; b * h * t * d];
//! let (k, v) = (q.clone(), q.clone());
//! let slopes = slope::alibi_slopes(h, slope::DEFAULT_MAX_BIAS).unwrap();
//! let mut attn = slope::Attention::new(b, h, h, t, t, d);
//! attn.causal = true;
//! let (mut out, mut lse) = (vec![0.0; b * h * t * d], vec![0.0; b * h * t]);
//! attn.forward(&q, &k, &v, slope::Slopes::Symmetric(&slopes), &mut out, &mut lse).unwrap();
//! ```
pub mod ffi;

use std::ffi::CStr;
use std::fmt;
use std::os::raw::c_void;
use std::ptr;

/// Press et al.'s slopes: the default `max_bias` of the presets.
pub const DEFAULT_MAX_BIAS: f64 = ffi::SLOPE_DEFAULT_MAX_BIAS;

/// What went wrong: the C status codes, plus `Shape` for a slice whose length disagrees with the
/// problem (found by this crate before calling the library).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    NullPointer,
    InvalidArgument,
    StructSize,
    OutOfMemory,
    Internal,
    Shape,
}

/// An error with its message: the library's (`slope_last_error()`) or this crate's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.kind, self.message)
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

fn shape_error(message: String) -> Error {
    Error { kind: ErrorKind::Shape, message }
}

fn static_str(s: *const std::os::raw::c_char) -> &'static str {
    // SAFETY: the library returns non-null NUL-terminated strings of static storage.
    unsafe { CStr::from_ptr(s) }.to_str().unwrap_or("?")
}

/// The status of a C call as a Result, with the thread's last message on an error.
fn check(status: ffi::slope_status) -> Result<()> {
    let kind = match status {
        ffi::SLOPE_OK => return Ok(()),
        ffi::SLOPE_ERROR_NULL_POINTER => ErrorKind::NullPointer,
        ffi::SLOPE_ERROR_INVALID_ARGUMENT => ErrorKind::InvalidArgument,
        ffi::SLOPE_ERROR_STRUCT_SIZE => ErrorKind::StructSize,
        ffi::SLOPE_ERROR_OUT_OF_MEMORY => ErrorKind::OutOfMemory,
        _ => ErrorKind::Internal,
    };
    // SAFETY: never null; valid until the next slope_* call on this thread (we copy it now).
    let message = unsafe { CStr::from_ptr(ffi::slope_last_error()) }.to_string_lossy().into_owned();
    Err(Error { kind, message })
}

/// The library's version, "MAJOR.MINOR.PATCH".
pub fn version() -> &'static str {
    static_str(unsafe { ffi::slope_version() })
}

/// The vector instruction set the kernels use: "avx512", "avx2" or "generic".
pub fn cpu_isa() -> &'static str {
    static_str(unsafe { ffi::slope_cpu_isa() })
}

fn to_i64(x: usize, what: &str) -> Result<i64> {
    i64::try_from(x).map_err(|_| shape_error(format!("{what} = {x} does not fit in int64")))
}

/// Press et al.'s ALiBi slopes for `n_heads` heads, generalised by `max_bias` (MPT, BLOOM,
/// llama.cpp); `DEFAULT_MAX_BIAS` gives `get_slopes`.
pub fn alibi_slopes(n_heads: usize, max_bias: f64) -> Result<Vec<f32>> {
    let mut s = vec![0.0f32; n_heads.max(1)];
    check(unsafe {
        ffi::slope_alibi_slopes(to_i64(n_heads, "n_heads")?, max_bias, s.as_mut_ptr())
    })?;
    Ok(s)
}

/// The plain geometric 2^(−max_bias·h/H), h = 1..H, of many hand-written ports.
pub fn alibi_slopes_geometric(n_heads: usize, max_bias: f64) -> Result<Vec<f32>> {
    let mut s = vec![0.0f32; n_heads.max(1)];
    let n = to_i64(n_heads, "n_heads")?;
    check(unsafe { ffi::slope_alibi_slopes_geometric(n, max_bias, s.as_mut_ptr()) })?;
    Ok(s)
}

/// The ALiBi authors' "nonsymmetric" encoder slopes: (left, right), the first half of the heads
/// looking left (right slope +∞), the second half right. Pass them as `Slopes::LeftRight`.
pub fn alibi_slopes_nonsymmetric(n_heads: usize, max_bias: f64) -> Result<(Vec<f32>, Vec<f32>)> {
    let (mut l, mut r) = (vec![0.0f32; n_heads.max(1)], vec![0.0f32; n_heads.max(1)]);
    let n = to_i64(n_heads, "n_heads")?;
    check(unsafe {
        ffi::slope_alibi_slopes_nonsymmetric(n, max_bias, l.as_mut_ptr(), r.as_mut_ptr())
    })?;
    Ok((l, r))
}

/// The position bias: none, one slope vector for both sides, or a left and a right vector.
/// Each vector is (H), shared by the batch, or (B, H): per-batch slopes. A slope is any finite
/// real, or +∞ to mask that side.
#[derive(Clone, Copy, Debug)]
pub enum Slopes<'a> {
    None,
    Symmetric(&'a [f32]),
    LeftRight(&'a [f32], &'a [f32]),
}

/// Where the queries sit among the keys (`slope_query_positions`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueryPositions {
    /// The last query is the last key (flash-attn ≥ 2.1, decoding against a full buffer).
    LowerRight,
    /// Query i at position i (torch SDPA's is_causal).
    UpperLeft,
    /// The queries end where each row's keys end (`key_lengths`, a KV cache).
    KeyLengths,
}

/// The mask's values: bool (nonzero: the key may be attended) or additive (−∞ masks).
#[derive(Clone, Copy, Debug)]
pub enum MaskValues<'a> {
    Bool(&'a [u8]),
    Additive(&'a [f32]),
}

/// An explicit mask, contiguous (Bm, Hm, Tq, Tk): Bm = 1 when `broadcast_batch`, else B; Hm = 1
/// when `broadcast_heads`, else H. With packed sequences it is indexed by each document's own
/// (i, j).
#[derive(Clone, Copy, Debug)]
pub struct Mask<'a> {
    pub values: MaskValues<'a>,
    pub broadcast_batch: bool,
    pub broadcast_heads: bool,
}

/// Attention dropout: the keep mask is a pure function of (seed, offset, b, h, i, j); the
/// backward regenerates it. Advance `offset` per call for a fresh mask.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Dropout {
    pub p: f32,
    pub seed: u64,
    pub offset: u64,
}

/// Where the backward writes: dq, dk, dv like q, k, v; slope gradients like the slopes, or None.
pub struct Gradients<'g> {
    pub dq: &'g mut [f32],
    pub dk: &'g mut [f32],
    pub dv: &'g mut [f32],
    pub dslopes_left: Option<&'g mut [f32]>,
    pub dslopes_right: Option<&'g mut [f32]>,
}

/// The attention problem (DESIGN.md): sizes and options. Fields are public; `new` gives the
/// defaults (no bias options, scale 1/√D, far-tile skipping at 2⁻²⁴).
#[derive(Clone, Debug)]
pub struct Attention<'a> {
    pub batch: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub q_len: usize,
    pub k_len: usize,
    pub head_dim: usize,
    pub v_head_dim: usize,
    /// None: 1/√head_dim.
    pub scale: Option<f32>,
    pub causal: bool,
    /// (B): keys j ≥ key_lengths[b] are masked (padding).
    pub key_lengths: Option<&'a [i32]>,
    pub query_positions: QueryPositions,
    /// Packed sequences: (cu_seqlens_q, cu_seqlens_k), each (B + 1), from 0, non-decreasing;
    /// `batch` is then the number of documents and q_len/k_len the longest one's length.
    pub cu_seqlens: Option<(&'a [i32], &'a [i32])>,
    /// Sliding window (left, right): key j visible from position p if p − left ≤ j ≤ p + right.
    pub window: (Option<usize>, Option<usize>),
    /// 0: off; else the scaled score x becomes softcap·tanh(x/softcap).
    pub softcap: f32,
    pub mask: Option<Mask<'a>>,
    pub dropout: Option<Dropout>,
    /// Far-tile skipping (ALiBi): each row loses at most this much softmax mass; 0: off.
    pub skip_tolerance: f32,
}

impl<'a> Attention<'a> {
    /// B, H, Hkv, Tq, Tk, D (Dv = D), everything else at its default.
    pub fn new(
        batch: usize,
        heads: usize,
        kv_heads: usize,
        q_len: usize,
        k_len: usize,
        head_dim: usize,
    ) -> Self {
        Attention {
            batch,
            heads,
            kv_heads,
            q_len,
            k_len,
            head_dim,
            v_head_dim: head_dim,
            scale: None,
            causal: false,
            key_lengths: None,
            query_positions: QueryPositions::LowerRight,
            cu_seqlens: None,
            window: (None, None),
            softcap: 0.0,
            mask: None,
            dropout: None,
            skip_tolerance: 2f32.powi(-24),
        }
    }

    /// Rows of q per head over the batch: B·Tq, or total_q when packed.
    fn rows(&self) -> Result<(usize, usize)> {
        match self.cu_seqlens {
            None => Ok((self.batch * self.q_len, self.batch * self.k_len)),
            Some((cq, ck)) => {
                for (name, cu) in [("cu_seqlens_q", cq), ("cu_seqlens_k", ck)] {
                    if cu.len() != self.batch + 1 {
                        return Err(shape_error(format!(
                            "{name} has {} elements; it must have batch + 1 = {}",
                            cu.len(),
                            self.batch + 1
                        )));
                    }
                }
                let total = |cu: &[i32], name: &str| {
                    usize::try_from(cu[self.batch]).map_err(|_| {
                        shape_error(format!(
                            "{name}[{}] = {} is negative",
                            self.batch, cu[self.batch]
                        ))
                    })
                };
                Ok((total(cq, "cu_seqlens_q")?, total(ck, "cu_seqlens_k")?))
            }
        }
    }

    /// Elements of q, k, v, out and lse.
    pub fn sizes(&self) -> Result<[usize; 5]> {
        let (rq, rk) = self.rows()?;
        let mul = |a: &[usize]| {
            a.iter()
                .try_fold(1usize, |acc, &x| acc.checked_mul(x))
                .ok_or_else(|| shape_error("the sizes multiply past usize".to_string()))
        };
        Ok([
            mul(&[rq, self.heads, self.head_dim])?,
            mul(&[rk, self.kv_heads, self.head_dim])?,
            mul(&[rk, self.kv_heads, self.v_head_dim])?,
            mul(&[rq, self.heads, self.v_head_dim])?,
            mul(&[rq, self.heads])?,
        ])
    }

    fn expect_len(name: &str, got: usize, want: usize, shape: &str) -> Result<()> {
        if got == want {
            Ok(())
        } else {
            Err(shape_error(format!("{name} has {got} elements; its shape {shape} needs {want}")))
        }
    }

    /// The C problem, with every slice length checked. The pointers it holds borrow `self`.
    fn raw(
        &self,
        q: &[f32],
        k: &[f32],
        v: &[f32],
        out_len: usize,
        lse_len: usize,
    ) -> Result<ffi::slope_attention_problem> {
        let [nq, nk, nv, nout, nlse] = self.sizes()?;
        let (tq, tk) =
            if self.cu_seqlens.is_some() { ("total_q", "total_k") } else { ("B·Tq", "B·Tk") };
        Self::expect_len("q", q.len(), nq, &format!("({tq}, H, D)"))?;
        Self::expect_len("k", k.len(), nk, &format!("({tk}, Hkv, D)"))?;
        Self::expect_len("v", v.len(), nv, &format!("({tk}, Hkv, Dv)"))?;
        Self::expect_len("out", out_len, nout, &format!("({tq}, H, Dv)"))?;
        Self::expect_len("lse", lse_len, nlse, &format!("({tq}, H)"))?;

        // SAFETY: an all-zero slope_attention_problem is a valid value (integers, floats and
        // null pointers); init then writes the defaults.
        let mut p: ffi::slope_attention_problem = unsafe { std::mem::zeroed() };
        check(unsafe {
            ffi::slope_attention_problem_init(
                &mut p,
                std::mem::size_of::<ffi::slope_attention_problem>(),
            )
        })?;
        p.B = to_i64(self.batch, "batch")?;
        p.H = to_i64(self.heads, "heads")?;
        p.Hkv = to_i64(self.kv_heads, "kv_heads")?;
        p.Tq = to_i64(self.q_len, "q_len")?;
        p.Tk = to_i64(self.k_len, "k_len")?;
        p.D = to_i64(self.head_dim, "head_dim")?;
        p.Dv = to_i64(self.v_head_dim, "v_head_dim")?;
        if let Some(s) = self.scale {
            p.scale = s;
        }
        p.causal = self.causal as i32;
        if let Some(kl) = self.key_lengths {
            Self::expect_len("key_lengths", kl.len(), self.batch, "(B)")?;
            p.key_lengths = kl.as_ptr();
        }
        p.query_positions = match self.query_positions {
            QueryPositions::LowerRight => ffi::SLOPE_QUERY_POSITIONS_LOWER_RIGHT,
            QueryPositions::UpperLeft => ffi::SLOPE_QUERY_POSITIONS_UPPER_LEFT,
            QueryPositions::KeyLengths => ffi::SLOPE_QUERY_POSITIONS_KEY_LENGTHS,
        };
        if let Some((cq, ck)) = self.cu_seqlens {
            p.cu_seqlens_q = cq.as_ptr();
            p.cu_seqlens_k = ck.as_ptr();
        }
        let window = |w: Option<usize>, name| w.map_or(Ok(-1), |x| to_i64(x, name));
        p.window_left = window(self.window.0, "window left")?;
        p.window_right = window(self.window.1, "window right")?;
        p.softcap = self.softcap;
        if let Some(d) = self.dropout {
            p.dropout_p = d.p;
            p.dropout_seed = d.seed;
            p.dropout_offset = d.offset;
        }
        p.skip_tolerance = self.skip_tolerance;
        check(unsafe { ffi::slope_attention_contiguous_strides(&mut p) })?;
        if let Some(m) = self.mask {
            let bm = if m.broadcast_batch { 1 } else { self.batch };
            let hm = if m.broadcast_heads { 1 } else { self.heads };
            let plane = self.q_len.checked_mul(self.k_len);
            let want = plane.and_then(|x| x.checked_mul(hm)).and_then(|x| x.checked_mul(bm));
            let want = want.ok_or_else(|| shape_error("the mask's size overflows".into()))?;
            let (len, kind, data) = match m.values {
                MaskValues::Bool(x) => (x.len(), ffi::SLOPE_MASK_BOOL, x.as_ptr() as *const c_void),
                MaskValues::Additive(x) => {
                    (x.len(), ffi::SLOPE_MASK_ADDITIVE, x.as_ptr() as *const c_void)
                }
            };
            Self::expect_len("mask", len, want, "(Bm, Hm, Tq, Tk)")?;
            p.mask_kind = kind;
            p.mask = data;
            p.mask_stride_t = p.Tk;
            p.mask_stride_h = if m.broadcast_heads { 0 } else { p.Tq * p.Tk };
            p.mask_stride_b = if m.broadcast_batch { 0 } else { hm as i64 * p.Tq * p.Tk };
        }
        Ok(p)
    }

    /// The slopes as pointers, with (B, H) slopes setting the batch stride.
    fn slopes(
        &self,
        s: Slopes,
        p: &mut ffi::slope_attention_problem,
    ) -> Result<(*const f32, *const f32, usize)> {
        let layout = |x: &[f32], name: &str| -> Result<usize> {
            if x.len() == self.heads {
                Ok(0)
            } else if Some(x.len()) == self.batch.checked_mul(self.heads) {
                Ok(self.heads)
            } else {
                Err(shape_error(format!(
                    "{name} has {} elements; slopes are (H) = {} or (B, H) = {}",
                    x.len(),
                    self.heads,
                    self.batch.saturating_mul(self.heads)
                )))
            }
        };
        let (l, r, stride) = match s {
            Slopes::None => (ptr::null(), ptr::null(), 0),
            Slopes::Symmetric(x) => (x.as_ptr(), ptr::null(), layout(x, "slopes")?),
            Slopes::LeftRight(x, y) => {
                let (sx, sy) = (layout(x, "left slopes")?, layout(y, "right slopes")?);
                if sx != sy {
                    return Err(shape_error(
                        "left and right slopes must have the same layout, (H) or (B, H)".into(),
                    ));
                }
                (x.as_ptr(), y.as_ptr(), sx)
            }
        };
        p.slopes_stride_b = stride as i64;
        let len = match s {
            Slopes::None => 0,
            Slopes::Symmetric(x) | Slopes::LeftRight(x, _) => x.len(),
        };
        Ok((l, r, len))
    }

    /// Forward: writes `out` (B, H, Tq, Dv) and `lse` (B, H, Tq), the natural-log logsumexp of
    /// each row (−∞ for a row with no visible key, whose output is 0).
    pub fn forward(
        &self,
        q: &[f32],
        k: &[f32],
        v: &[f32],
        slopes: Slopes,
        out: &mut [f32],
        lse: &mut [f32],
    ) -> Result<()> {
        let mut p = self.raw(q, k, v, out.len(), lse.len())?;
        let (sl, sr, _) = self.slopes(slopes, &mut p)?;
        // SAFETY: every slice length matches the shapes of the contiguous layout the problem
        // describes (checked in raw() and slopes()); the library reads and writes only those.
        check(unsafe {
            ffi::slope_attention_forward(
                &p,
                q.as_ptr(),
                k.as_ptr(),
                v.as_ptr(),
                sl,
                sr,
                out.as_mut_ptr(),
                lse.as_mut_ptr(),
            )
        })
    }

    /// Backward from the forward's `out` and `lse` and the output gradient `dout` (out's
    /// shape): overwrites dq, dk, dv and the slope gradients asked for (like the slopes; shared
    /// slopes get the sum over the batch). With `Slopes::Symmetric`, `dslopes_left` gets the
    /// whole gradient.
    #[allow(clippy::too_many_arguments)]
    pub fn backward(
        &self,
        q: &[f32],
        k: &[f32],
        v: &[f32],
        slopes: Slopes,
        out: &[f32],
        dout: &[f32],
        lse: &[f32],
        grads: Gradients,
    ) -> Result<()> {
        let mut p = self.raw(q, k, v, out.len(), lse.len())?;
        Self::expect_len("dout", dout.len(), out.len(), "out's")?;
        Self::expect_len("dq", grads.dq.len(), q.len(), "q's")?;
        Self::expect_len("dk", grads.dk.len(), k.len(), "k's")?;
        Self::expect_len("dv", grads.dv.len(), v.len(), "v's")?;
        let (sl, sr, n_slopes) = self.slopes(slopes, &mut p)?;
        let dslope = |d: Option<&mut [f32]>, name: &str| -> Result<*mut f32> {
            match d {
                None => Ok(ptr::null_mut()),
                Some(x) => {
                    Self::expect_len(name, x.len(), n_slopes, "the slopes'")?;
                    Ok(x.as_mut_ptr())
                }
            }
        };
        let dl = dslope(grads.dslopes_left, "dslopes_left")?;
        let dr = dslope(grads.dslopes_right, "dslopes_right")?;
        // SAFETY: as in forward; the gradients have their tensors' lengths, checked above.
        check(unsafe {
            ffi::slope_attention_backward(
                &p,
                q.as_ptr(),
                k.as_ptr(),
                v.as_ptr(),
                sl,
                sr,
                out.as_ptr(),
                dout.as_ptr(),
                lse.as_ptr(),
                grads.dq.as_mut_ptr(),
                grads.dk.as_mut_ptr(),
                grads.dv.as_mut_ptr(),
                dl,
                dr,
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The offsets slope.h's struct has on 64-bit targets (pinned by the C tests too,
    /// tests/capi/test_capi.cpp, LayoutIsFrozen).
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn the_struct_has_the_c_layout() {
        use ffi::slope_attention_problem as P;
        use std::mem::offset_of;
        assert_eq!(offset_of!(P, struct_size), 0);
        assert_eq!(offset_of!(P, B), 8);
        assert_eq!(offset_of!(P, Dv), 56);
        assert_eq!(offset_of!(P, q_strides), 64);
        assert_eq!(offset_of!(P, out_strides), 136);
        assert_eq!(offset_of!(P, key_lengths), 160);
        assert_eq!(offset_of!(P, window_left), 184);
        assert_eq!(offset_of!(P, dropout_seed), 208);
        assert_eq!(offset_of!(P, mask), 224);
        assert_eq!(offset_of!(P, mask_stride_t), 248);
        assert_eq!(offset_of!(P, scale), 256);
        assert_eq!(offset_of!(P, skip_tolerance), 268);
        assert_eq!(offset_of!(P, causal), 272);
        assert_eq!(offset_of!(P, reserved), 284);
        assert_eq!(std::mem::size_of::<P>(), 288);
    }

    #[test]
    fn version_is_the_crates() {
        assert_eq!(version(), env!("CARGO_PKG_VERSION"));
        assert!(["avx512", "avx2", "generic"].contains(&cpu_isa()));
    }
}
