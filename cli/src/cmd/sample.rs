use std::process::ExitCode;
use std::time::Instant;

use flashsampling::core::bench::median;
use flashsampling::{derive_row_seed, open, HiddenRef, LmHeadRef, Request, Result, RowParams, RowStatus};

use crate::synthetic::Synthetic;
use crate::{parse_dtype, BackendArg};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    backend: BackendArg,
    /// Hidden dimension D.
    #[arg(long, default_value_t = 2048)]
    dim: usize,
    /// Vocabulary size V.
    #[arg(long, default_value_t = 151_936)]
    vocab: usize,
    /// Rows (requests) in the batch.
    #[arg(long, default_value_t = 4)]
    batch: usize,
    /// Samples per row.
    #[arg(long, default_value_t = 1)]
    samples: u32,
    /// Temperature of every row (0 = greedy).
    #[arg(long, default_value_t = 1.0)]
    temperature: f32,
    /// Call seed; each row's seed is derived from it and the row index.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Decode steps to run; the offset advances by one each step.
    #[arg(long, default_value_t = 5)]
    steps: u64,
    /// bf16, f16 or f32.
    #[arg(long, default_value = "bf16", value_parser = parse_dtype)]
    dtype: flashsampling::DType,
}

pub fn run(args: &Args) -> Result<ExitCode> {
    let backend = open(args.backend.backend)?;
    println!(
        "backend: {} ({})",
        backend.name(),
        backend.info().devices.first().map(|d| d.name.as_str()).unwrap_or("?")
    );
    let data = Synthetic::new(args.dim, args.vocab, args.batch, args.dtype, args.seed);
    let start = Instant::now();
    let head = backend.load_lm_head(LmHeadRef::new(data.weights.view(), args.dim)?)?;
    println!("LM head loaded once in {:.1} ms", start.elapsed().as_secs_f64() * 1e3);
    let hidden = HiddenRef::new(data.hidden.view(), args.dim)?;
    let mut times = Vec::new();
    for step in 0..args.steps {
        let rows: Vec<RowParams> = (0..args.batch)
            .map(|b| RowParams::new(args.temperature, derive_row_seed(args.seed, b as u64), step))
            .collect();
        let start = Instant::now();
        let out = backend.sample(&head, &Request::new(hidden, &rows, args.samples))?;
        times.push(start.elapsed().as_secs_f64());
        let shown: Vec<String> = (0..args.batch.min(8))
            .map(|b| match out.status[b] {
                RowStatus::Ok => format!("{:?}", out.row(b)),
                bad => format!("{bad:?}"),
            })
            .collect();
        println!("step {step}: tokens {}{}", shown.join(" "), if args.batch > 8 { " …" } else { "" });
    }
    let t = median(&mut times);
    println!(
        "median {:.3} ms per call (B={}, n={}, D={}, V={}): {:.1} GB/s of W and H",
        t * 1e3,
        args.batch,
        args.samples,
        args.dim,
        args.vocab,
        data.bytes() / t / 1e9
    );
    Ok(ExitCode::SUCCESS)
}
