use std::process::ExitCode;

use flashsampling::conformance::{self, Level};
use flashsampling::{open, Result};

use crate::BackendArg;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    backend: BackendArg,
    /// quick (CPU-sized) or full (GPU-sized: millions of samples).
    #[arg(long, default_value = "quick", value_parser = ["quick", "full"])]
    level: String,
    /// Only the cases whose name contains this text.
    #[arg(long)]
    filter: Option<String>,
}

pub fn run(args: &Args) -> Result<ExitCode> {
    let backend = open(args.backend.backend)?;
    let devices: Vec<String> = backend.info().devices.into_iter().map(|d| d.name).collect();
    println!("verifying backend {} on {}", backend.name(), devices.join(", "));
    let level = if args.level == "full" { Level::Full } else { Level::Quick };
    let cases: Vec<_> = conformance::battery(level)
        .into_iter()
        .filter(|c| args.filter.as_ref().is_none_or(|f| c.name.contains(f.as_str())))
        .collect();
    let mut failed = 0;
    for (i, case) in cases.iter().enumerate() {
        eprint!("[{}/{}] {} … ", i + 1, cases.len(), case.name);
        let r = conformance::run(case, backend.as_ref());
        eprintln!("{:.1} s", r.seconds);
        let p = r.p_value.map(|p| format!("p={p:.4}")).unwrap_or_else(|| "-".into());
        println!("{} {:<10} {}: {}", if r.passed { "PASS" } else { "FAIL" }, p, r.case, r.detail);
        failed += usize::from(!r.passed);
    }
    println!(
        "{} of {} cases passed on {} (p-values Bonferroni-adjusted per case; pass at p > {})",
        cases.len() - failed,
        cases.len(),
        backend.name(),
        conformance::P_THRESHOLD
    );
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
