//! Every kernel variant compiles for sm_80, sm_90a and sm_100a with NVRTC, no GPU needed. With a
//! `ptxas` at hand (FLASHSAMPLING_PTXAS) every kernel also assembles within the 48 KB of static
//! shared memory a kernel may have (a module that breaks that limit fails to load, and only on a
//! GPU), and on sm_90a, the target whose speed is measured, without spilling registers (spills on
//! the other targets are printed). Skips when NVRTC is absent, unless FLASHSAMPLING_REQUIRE_NVRTC=1
//! (CI: .ci/setup-cuda.sh, which also provides ptxas).

use flashsampling_cuda::kernels::{compile, entry_points, CI_ARCHS};

/// Static shared memory a kernel may declare.
const STATIC_SHARED_LIMIT: u64 = 48 * 1024;

#[test]
fn every_kernel_compiles_for_every_ci_arch() {
    // SAFETY: only tries to open the library.
    if !unsafe { cudarc::nvrtc::sys::is_culib_present() } {
        let required = std::env::var("FLASHSAMPLING_REQUIRE_NVRTC").is_ok_and(|v| v == "1");
        assert!(!required, "FLASHSAMPLING_REQUIRE_NVRTC=1 but libnvrtc.so.13 was not found");
        eprintln!("skipped: NVRTC not found (source .ci/setup-cuda.sh)");
        return;
    }
    let ptxas = std::env::var("FLASHSAMPLING_PTXAS").ok();
    for arch in CI_ARCHS {
        let ptx = compile(arch).unwrap_or_else(|e| panic!("{e}"));
        let text = ptx.to_src();
        for name in entry_points(arch) {
            assert!(text.contains(&format!(".entry {name}(")), "{name} missing from the {arch} output");
        }
        // Hopper's own target multiplies the wide variants with wgmma; the others have no wgmma.
        assert_eq!(text.contains("wgmma.mma_async"), arch == "sm_90a", "wgmma in the {arch} output");
        eprintln!("{arch}: {} entry points compiled", entry_points(arch).len());
        let Some(ptxas) = &ptxas else { continue };
        let entries = assembled(ptxas, arch, &text);
        assert_eq!(entries.len(), entry_points(arch).len(), "entry points ptxas reported for {arch}");
        for e in &entries {
            let shared = e.static_shared;
            assert!(shared <= STATIC_SHARED_LIMIT, "{} declares {shared} bytes of shared memory on {arch}", e.name);
            if e.spilled > 0 {
                assert_ne!(arch, "sm_90a", "{} spills {} bytes on sm_90a", e.name, e.spilled);
                eprintln!("{arch}: {} spills {} bytes", e.name, e.spilled);
            }
        }
        let widest = entries.iter().max_by_key(|e| e.static_shared).expect("entry points");
        eprintln!("{arch}: assembled; most static shared memory {} bytes ({})", widest.static_shared, widest.name);
    }
}

/// What ptxas reports of one entry point (and the functions it calls).
struct Assembled {
    name: String,
    /// Bytes of spill stores and loads.
    spilled: u64,
    static_shared: u64,
}

/// Assembles `ptx` for `arch` with `ptxas -v` and reads its report.
fn assembled(ptxas: &str, arch: &str, ptx: &str) -> Vec<Assembled> {
    let path = std::env::temp_dir().join(format!("flashsampling-{arch}-{}.ptx", std::process::id()));
    std::fs::write(&path, ptx).expect("writing the PTX");
    let out = std::process::Command::new(ptxas)
        .arg(format!("-arch={arch}"))
        .args(["-v", "-o", "/dev/null"])
        .arg(&path)
        .output()
        .unwrap_or_else(|e| panic!("running {ptxas}: {e}"));
    std::fs::remove_file(&path).ok();
    let log = String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "ptxas failed for {arch}:\n{log}");
    let mut entries: Vec<Assembled> = Vec::new();
    for line in log.lines() {
        if let Some(rest) = line.split("Compiling entry function '").nth(1) {
            let name = rest.split('\'').next().unwrap_or_default().to_string();
            entries.push(Assembled { name, spilled: 0, static_shared: 0 });
        } else if let Some(e) = entries.last_mut() {
            e.spilled += number_before(line, " bytes spill stores") + number_before(line, " bytes spill loads");
            e.static_shared = e.static_shared.max(number_before(line, " bytes smem"));
        }
    }
    entries
}

/// The number just before `unit` in `line`, 0 when `unit` is absent.
fn number_before(line: &str, unit: &str) -> u64 {
    line.find(unit).and_then(|at| line[..at].rsplit([' ', ',']).next()).and_then(|n| n.parse().ok()).unwrap_or(0)
}
