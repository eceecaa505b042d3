//! `flashsampling`: information, a demo on a synthetic LM head, the conformance battery, and the
//! benchmark.

mod cmd;
mod hostbw;
mod synthetic;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use flashsampling::{BackendKind, DType};

#[derive(Parser)]
#[command(name = "flashsampling", version, about = "Exact fused LM-head sampling (FlashSampling)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Backends and devices found, with their limits, and why the others are unavailable.
    Info,
    /// Demo: sample from a synthetic LM head; prints tokens, time and achieved bandwidth.
    Sample(cmd::sample::Args),
    /// Runs the conformance battery on one backend and prints each case with its p-value.
    Verify(cmd::verify::Args),
    /// Times the benchmark shapes on one backend; prints a table and writes CSV.
    Bench(cmd::bench::Args),
}

/// Options shared by the commands that run a backend.
#[derive(clap::Args, Clone)]
pub struct BackendArg {
    /// auto, cpu, cpu-reference, cuda or wgpu (auto honours FLASHSAMPLING_BACKEND).
    #[arg(long, default_value = "auto", value_parser = parse_backend)]
    pub backend: BackendKind,
}

fn parse_backend(s: &str) -> Result<BackendKind, String> {
    s.parse().map_err(|e: flashsampling::Error| e.to_string())
}

pub fn parse_dtype(s: &str) -> Result<DType, String> {
    s.parse().map_err(|e: flashsampling::Error| e.to_string())
}

pub fn default_csv(name: &str) -> PathBuf {
    PathBuf::from("bench-out").join(name)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Info => cmd::info::run(),
        Command::Sample(args) => cmd::sample::run(&args),
        Command::Verify(args) => cmd::verify::run(&args),
        Command::Bench(args) => cmd::bench::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("flashsampling: {e}");
            ExitCode::FAILURE
        }
    }
}
