//! The C ABI of libflashsampling. This build exports the version only; the sampling API is
//! issue 5.

/// The library version as `major * 10000 + minor * 100 + patch`.
#[no_mangle]
pub extern "C" fn flashsampling_version() -> u32 {
    let v = |s: &str| s.parse::<u32>().unwrap_or(0);
    v(env!("CARGO_PKG_VERSION_MAJOR")) * 10_000
        + v(env!("CARGO_PKG_VERSION_MINOR")) * 100
        + v(env!("CARGO_PKG_VERSION_PATCH"))
}
