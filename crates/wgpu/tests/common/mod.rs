//! What the wgpu crate's tests share.

use flashsampling_wgpu::{Caps, WgpuBackend};

/// The backend under `caps`, or `None` (the test skipped) where this machine has no adapter and
/// `FLASHSAMPLING_REQUIRE` does not ask for one.
pub fn open(caps: Caps) -> Option<WgpuBackend> {
    match WgpuBackend::open_with_caps(caps) {
        Ok(b) => Some(b),
        Err(e) => {
            assert!(std::env::var("FLASHSAMPLING_REQUIRE").unwrap_or_default().split(',').all(|r| r.trim() != "wgpu"));
            eprintln!("skipped: {e}");
            None
        }
    }
}
