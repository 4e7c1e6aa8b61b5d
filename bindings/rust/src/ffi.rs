//! Raw declarations of slope's C interface, include/slope/slope.h, written by hand (no bindgen).
//! The struct and every signature mirror the header field for field; see it for the meaning of
//! each field and the errors of each function. Prefer the safe wrapper in the crate root.
#![allow(non_camel_case_types, non_snake_case)]

use std::os::raw::{c_char, c_int, c_void};

/// `slope_status`: a C enum, an `int`.
pub type slope_status = c_int;
pub const SLOPE_OK: slope_status = 0;
pub const SLOPE_ERROR_NULL_POINTER: slope_status = 1;
pub const SLOPE_ERROR_INVALID_ARGUMENT: slope_status = 2;
pub const SLOPE_ERROR_STRUCT_SIZE: slope_status = 3;
pub const SLOPE_ERROR_OUT_OF_MEMORY: slope_status = 4;
pub const SLOPE_ERROR_INTERNAL: slope_status = 5;

pub const SLOPE_QUERY_POSITIONS_LOWER_RIGHT: i32 = 0;
pub const SLOPE_QUERY_POSITIONS_UPPER_LEFT: i32 = 1;
pub const SLOPE_QUERY_POSITIONS_KEY_LENGTHS: i32 = 2;

pub const SLOPE_MASK_NONE: i32 = 0;
pub const SLOPE_MASK_BOOL: i32 = 1;
pub const SLOPE_MASK_ADDITIVE: i32 = 2;

pub const SLOPE_DEFAULT_MAX_BIAS: f64 = 8.0;

/// Strides of a (B, H, T, D) tensor in elements; the last dimension is contiguous.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct slope_strides {
    pub b: i64,
    pub h: i64,
    pub t: i64,
}

/// The attention problem, `slope_attention_problem` of slope.h. Initialise it with
/// `slope_attention_problem_init(&mut p, size_of::<slope_attention_problem>())`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct slope_attention_problem {
    pub struct_size: u64,
    pub B: i64,
    pub H: i64,
    pub Hkv: i64,
    pub Tq: i64,
    pub Tk: i64,
    pub D: i64,
    pub Dv: i64,
    pub q_strides: slope_strides,
    pub k_strides: slope_strides,
    pub v_strides: slope_strides,
    pub out_strides: slope_strides,
    pub key_lengths: *const i32,
    pub cu_seqlens_q: *const i32,
    pub cu_seqlens_k: *const i32,
    pub window_left: i64,
    pub window_right: i64,
    pub slopes_stride_b: i64,
    pub dropout_seed: u64,
    pub dropout_offset: u64,
    pub mask: *const c_void,
    pub mask_stride_b: i64,
    pub mask_stride_h: i64,
    pub mask_stride_t: i64,
    pub scale: f32,
    pub softcap: f32,
    pub dropout_p: f32,
    pub skip_tolerance: f32,
    pub causal: i32,
    pub query_positions: i32,
    pub mask_kind: i32,
    pub reserved: i32,
}

extern "C" {
    pub fn slope_last_error() -> *const c_char;
    pub fn slope_status_name(status: slope_status) -> *const c_char;
    pub fn slope_version() -> *const c_char;
    pub fn slope_cpu_isa() -> *const c_char;

    pub fn slope_attention_problem_init(
        p: *mut slope_attention_problem,
        struct_size: usize,
    ) -> slope_status;
    pub fn slope_attention_contiguous_strides(p: *mut slope_attention_problem) -> slope_status;
    pub fn slope_attention_check(
        p: *const slope_attention_problem,
        q: *const f32,
        k: *const f32,
        v: *const f32,
        slopes_left: *const f32,
        slopes_right: *const f32,
    ) -> slope_status;
    pub fn slope_attention_forward(
        p: *const slope_attention_problem,
        q: *const f32,
        k: *const f32,
        v: *const f32,
        slopes_left: *const f32,
        slopes_right: *const f32,
        out: *mut f32,
        lse: *mut f32,
    ) -> slope_status;
    pub fn slope_attention_backward(
        p: *const slope_attention_problem,
        q: *const f32,
        k: *const f32,
        v: *const f32,
        slopes_left: *const f32,
        slopes_right: *const f32,
        out: *const f32,
        dout: *const f32,
        lse: *const f32,
        dq: *mut f32,
        dk: *mut f32,
        dv: *mut f32,
        dslopes_left: *mut f32,
        dslopes_right: *mut f32,
    ) -> slope_status;

    pub fn slope_alibi_slopes(n_heads: i64, max_bias: f64, slopes: *mut f32) -> slope_status;
    pub fn slope_alibi_slopes_geometric(
        n_heads: i64,
        max_bias: f64,
        slopes: *mut f32,
    ) -> slope_status;
    pub fn slope_alibi_slopes_nonsymmetric(
        n_heads: i64,
        max_bias: f64,
        left: *mut f32,
        right: *mut f32,
    ) -> slope_status;
}
