use std::process::ExitCode;
use std::time::Instant;

use flashsampling::core::bench::median;
use flashsampling::{
    derive_row_seed, open, HiddenRef, LmHeadRef, Request, Result, RowParams, RowStatus, SampleOutput, Truncation,
};

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
    /// Keep each row's k most likely tokens (1 to 1024).
    #[arg(long)]
    top_k: Option<u32>,
    /// Keep the most likely tokens holding this much of the mass (0 < p ≤ 1), after top-k.
    #[arg(long)]
    top_p: Option<f32>,
    /// Keep the tokens at least this many times as likely as the most likely one (0 to 1).
    #[arg(long)]
    min_p: Option<f32>,
    /// Print each sampled token's logprob.
    #[arg(long)]
    logprobs: bool,
    /// Print the N most likely tokens of row 0 with their logprobs (N ≤ 20).
    #[arg(long, default_value_t = 0)]
    top_logprobs: u32,
}

impl Args {
    /// The request of one decode step: every row's truncation and outputs from the options.
    fn request<'a>(&self, hidden: HiddenRef<'a>, rows: &'a [RowParams], truncation: &'a [Truncation]) -> Request<'a> {
        let mut req = Request::new(hidden, rows, self.samples).with_top_logprobs(self.top_logprobs);
        if self.logprobs {
            req = req.with_logprobs();
        }
        if truncation.first().is_some_and(Truncation::is_active) {
            req = req.with_truncation(truncation);
        }
        req
    }
}

/// Row `b`'s tokens, with their logprobs when the call returned them.
fn show_row(out: &SampleOutput, b: usize) -> String {
    if out.status[b] != RowStatus::Ok {
        return format!("{:?}", out.status[b]);
    }
    let tokens = out.row(b);
    match &out.logprobs {
        Some(lp) => {
            let lp = &lp[b * out.samples..(b + 1) * out.samples];
            let shown: Vec<String> = tokens.iter().zip(lp).map(|(t, l)| format!("{t} ({l:.3})")).collect();
            format!("[{}]", shown.join(", "))
        }
        None => format!("{tokens:?}"),
    }
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
    let truncation = vec![Truncation { top_k: args.top_k, top_p: args.top_p, min_p: args.min_p }; args.batch];
    let mut times = Vec::new();
    for step in 0..args.steps {
        let rows: Vec<RowParams> = (0..args.batch)
            .map(|b| RowParams::new(args.temperature, derive_row_seed(args.seed, b as u64), step))
            .collect();
        let start = Instant::now();
        let out = backend.sample(&head, &args.request(hidden, &rows, &truncation))?;
        times.push(start.elapsed().as_secs_f64());
        let shown: Vec<String> = (0..args.batch.min(8)).map(|b| show_row(&out, b)).collect();
        println!("step {step}: tokens {}{}", shown.join(" "), if args.batch > 8 { " …" } else { "" });
        if let Some(top) = &out.top_logprobs {
            let row0: Vec<String> = top.row(0).map(|(t, l)| format!("{t} ({l:.3})")).collect();
            println!("        row 0 most likely: {}", row0.join(", "));
        }
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
