use std::process::ExitCode;

use flashsampling::{probe, Result, BACKEND_ENV};

pub fn run() -> Result<ExitCode> {
    println!("flashsampling {}", env!("CARGO_PKG_VERSION"));
    match std::env::var(BACKEND_ENV) {
        Ok(v) => println!("{BACKEND_ENV}={v} (overrides --backend auto)"),
        Err(_) => println!("{BACKEND_ENV} unset: auto tries cuda, wgpu, then cpu"),
    }
    for (kind, backend) in probe() {
        match backend {
            Ok(b) => {
                println!("\n{}: available", kind.name());
                for d in b.info().devices {
                    println!("  device: {}", d.name);
                    if let Some(m) = d.memory_bytes {
                        println!("    memory: {:.1} GiB", m as f64 / (1u64 << 30) as f64);
                    }
                    if let Some(c) = d.compute_units {
                        println!("    compute units: {c}");
                    }
                    for line in d.details {
                        println!("    {line}");
                    }
                }
            }
            Err(e) => println!("\n{}: unavailable: {e}", kind.name()),
        }
    }
    Ok(ExitCode::SUCCESS)
}
