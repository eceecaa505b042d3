//! Every kernel variant compiles for sm_80, sm_90a and sm_100a with NVRTC, no GPU needed.
//! Skips when NVRTC is absent, unless FLASHSAMPLING_REQUIRE_NVRTC=1 (CI: .ci/setup-cuda.sh).

use flashsampling_cuda::kernels::{compile, entry_points, CI_ARCHS};

#[test]
fn every_kernel_compiles_for_every_ci_arch() {
    // SAFETY: only tries to open the library.
    if !unsafe { cudarc::nvrtc::sys::is_culib_present() } {
        let required = std::env::var("FLASHSAMPLING_REQUIRE_NVRTC").is_ok_and(|v| v == "1");
        assert!(!required, "FLASHSAMPLING_REQUIRE_NVRTC=1 but libnvrtc.so.13 was not found");
        eprintln!("skipped: NVRTC not found (source .ci/setup-cuda.sh)");
        return;
    }
    for arch in CI_ARCHS {
        let ptx = compile(arch).unwrap_or_else(|e| panic!("{e}"));
        let text = ptx.to_src();
        for name in entry_points() {
            assert!(text.contains(&format!(".entry {name}(")), "{name} missing from the {arch} output");
        }
        // Hopper's own target multiplies the wide variants with wgmma; the others have no wgmma.
        assert_eq!(text.contains("wgmma.mma_async"), arch == "sm_90a", "wgmma in the {arch} output");
        eprintln!("{arch}: {} entry points compiled", entry_points().len());
    }
}
