//! The conformance suite: every case of the battery on every backend this build has and this
//! machine can run. It prints which backends ran and which were skipped, and why.
//!
//! `FLASHSAMPLING_REQUIRE=wgpu,cuda` makes a skipped backend a failure (CI sets it where an
//! adapter is expected); `FLASHSAMPLING_CONFORMANCE_BACKENDS=cuda,cpu` runs only those backends
//! and opens no other.

use flashsampling::conformance::{self, Level};
use flashsampling::{open, Backend, BackendKind};

fn backends() -> Vec<Box<dyn Backend>> {
    let required = std::env::var("FLASHSAMPLING_REQUIRE").unwrap_or_default();
    let only = std::env::var("FLASHSAMPLING_CONFORMANCE_BACKENDS").ok();
    let chosen = |kind: &BackendKind| only.as_deref().is_none_or(|o| o.split(',').any(|n| n.trim() == kind.name()));
    let mut ran = Vec::new();
    for kind in BackendKind::CONCRETE.into_iter().filter(chosen) {
        match open(kind) {
            Ok(b) => {
                eprintln!("conformance: running on {}", describe(b.as_ref()));
                ran.push(b);
            }
            Err(e) => {
                eprintln!("conformance: skipped {}: {e}", kind.name());
                assert!(
                    !required.split(',').any(|r| r.trim() == kind.name()),
                    "{} is required but unavailable: {e}",
                    kind.name()
                );
            }
        }
    }
    ran
}

fn describe(b: &dyn Backend) -> String {
    let info = b.info();
    let devices: Vec<String> = info.devices.iter().map(|d| d.name.clone()).collect();
    format!("{} [{}]", b.name(), devices.join(", "))
}

/// Runs the cases whose name starts with `prefix` on every backend (the reference only where the
/// case is cheap enough for it).
fn run(prefix: &str) {
    let cases: Vec<_> = conformance::battery(Level::Quick).into_iter().filter(|c| c.name.starts_with(prefix)).collect();
    assert!(!cases.is_empty(), "no case named {prefix}…");
    let mut failures = Vec::new();
    for backend in backends() {
        let slow = backend.name() == BackendKind::CpuReference.name();
        for case in &cases {
            if slow && !case.cheap_for_reference() {
                eprintln!("  [{}] {}: skipped (too slow for the reference sampler)", backend.name(), case.name);
                continue;
            }
            let r = conformance::run(case, backend.as_ref());
            let p = r.p_value.map(|p| format!(" p={p:.4}")).unwrap_or_default();
            eprintln!(
                "  [{}] {}: {}{p} ({:.1}s) {}",
                r.backend,
                r.case,
                if r.passed { "PASS" } else { "FAIL" },
                r.seconds,
                r.detail
            );
            if !r.passed {
                failures.push(format!("[{}] {}: {}", r.backend, r.case, r.detail));
            }
        }
    }
    assert!(failures.is_empty(), "failed:\n{}", failures.join("\n"));
}

#[test]
fn distributions() {
    run("distribution");
}

#[test]
fn tail() {
    run("tail");
}

#[test]
fn independent_streams() {
    run("independent");
}

#[test]
fn batch_invariance() {
    run("batch invariance");
}

#[test]
fn shard_invariance() {
    run("vocabulary-shard");
}

#[test]
fn agreement_with_reference() {
    run("agreement");
}

#[test]
fn constraints() {
    run("constraints");
}

#[test]
fn logprobs() {
    run("logprobs");
}

#[test]
fn truncation() {
    run("truncation");
}

#[test]
fn top_logprobs() {
    run("top-N logprobs");
}

#[test]
fn bad_rows() {
    run("bad rows");
}

#[test]
fn bad_input() {
    run("bad input");
}

#[test]
fn every_output_written() {
    run("every output");
}

#[test]
fn battery_covers_every_case() {
    let names: Vec<String> = conformance::battery(Level::Quick).into_iter().map(|c| c.name).collect();
    let prefixes = [
        "distribution",
        "tail",
        "independent",
        "batch invariance",
        "vocabulary-shard",
        "agreement",
        "constraints",
        "logprobs",
        "truncation",
        "top-N logprobs",
        "bad rows",
        "bad input",
        "every output",
    ];
    for n in &names {
        assert!(prefixes.iter().any(|p| n.starts_with(p)), "case {n} is run by no test");
    }
}
