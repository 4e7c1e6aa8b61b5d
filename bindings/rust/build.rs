//! Links libslope.so, the C interface of slope (include/slope/slope.h). Where it is:
//!   1. SLOPE_LIB_DIR, the directory holding libslope.so (the tests set it to the build tree's);
//!   2. else `pkg-config --variable=libdir slope` (an installed prefix on PKG_CONFIG_PATH).
//!
//! The directory also goes into the tests' and examples' rpath, so they run without
//! LD_LIBRARY_PATH.
use std::env;
use std::process::Command;

fn pkg_config_libdir() -> Option<String> {
    let out = Command::new("pkg-config").args(["--variable=libdir", "slope"]).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let dir = String::from_utf8(out.stdout).ok()?.trim().to_string();
    if dir.is_empty() {
        None
    } else {
        Some(dir)
    }
}

fn main() {
    println!("cargo:rerun-if-env-changed=SLOPE_LIB_DIR");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");
    let dir = match env::var("SLOPE_LIB_DIR") {
        Ok(d) if !d.is_empty() => d,
        _ => pkg_config_libdir().unwrap_or_else(|| {
            panic!(
                "libslope.so not found: set SLOPE_LIB_DIR to the directory holding it (a build's \
                 src/capi, or an installed prefix's lib), or put an installed slope's \
                 lib/pkgconfig on PKG_CONFIG_PATH"
            )
        }),
    };
    println!("cargo:rerun-if-changed={dir}/libslope.so");
    println!("cargo:rustc-link-search=native={dir}");
    println!("cargo:rustc-link-lib=dylib=slope");
    println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
}
