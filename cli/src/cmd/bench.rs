//! The benchmark of DESIGN.md §6 through the backend trait: host-visible time per call (a GPU
//! backend's own benchmark, with device events and in-run peers, lives in its crate); up to
//! B = 64 also the feature variants the backend offers (logprobs, top-k 50 + top-p 0.9, both). On
//! wgpu also `passes`: the device time of the sampling passes alone, without the call's host round
//! trip (`WgpuBackend::passes_time`), and `passes-greedy`, the same with greedy rows (no noise).

use std::fs;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use crate::hostbw::{host_bandwidth, HostBandwidth};
use flashsampling::core::bench::{
    bytes_moved, median, trait_path_times, Record, BATCHES, SHAPES, TRAIT_PATH_MAX_BATCH,
};
use flashsampling::{derive_row_seed, open, Backend, DType, Error, HiddenRef, LmHeadRef, Request, Result, RowParams};

use crate::synthetic::Synthetic;
use crate::{default_csv, parse_dtype, BackendArg};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    backend: BackendArg,
    /// Shapes as DxV, comma-separated, or `all` (DESIGN.md §6). Default: all on a GPU, 2048x151936 on the CPU.
    #[arg(long)]
    shapes: Option<String>,
    /// Batch sizes, comma-separated, or `all`. Default: all on a GPU, 1,4,16 on the CPU.
    #[arg(long)]
    batches: Option<String>,
    /// Timed calls per configuration (the median is reported; at least 100 on CUDA).
    #[arg(long, default_value_t = 10)]
    iters: usize,
    #[arg(long, default_value = "bf16", value_parser = parse_dtype)]
    dtype: DType,
    /// Where to write the CSV.
    #[arg(long)]
    csv: Option<PathBuf>,
}

fn parse_list<T>(text: &str, all: &[T], item: impl Fn(&str) -> Option<T>) -> Result<Vec<T>>
where
    T: Clone,
{
    if text == "all" {
        return Ok(all.to_vec());
    }
    text.split(',')
        .map(|s| {
            item(s.trim()).ok_or_else(|| Error::Param { row: None, what: format!("cannot read {s:?} in {text:?}") })
        })
        .collect()
}

pub fn run(args: &Args) -> Result<ExitCode> {
    let backend = open(args.backend.backend)?;
    #[cfg(feature = "cuda")]
    if backend.name() == "cuda" {
        let shapes = parse_list(args.shapes.as_deref().unwrap_or("all"), &SHAPES, parse_shape)?;
        let batches = parse_list(args.batches.as_deref().unwrap_or("all"), &BATCHES, |s| s.parse().ok())?;
        drop(backend);
        let records = flashsampling_cuda::bench::run(&shapes, &batches, args.iters)?;
        return finish(args, "cuda", &records);
    }
    #[cfg(feature = "wgpu")]
    if backend.name() == "wgpu" {
        drop(backend);
        let wgpu = flashsampling_wgpu::WgpuBackend::open()?;
        let bw = wgpu.bandwidth()?;
        let bandwidth = HostBandwidth { read: bw.read, copy: bw.copy };
        return run_through_trait(args, &wgpu, Some(bandwidth), |head, hidden| {
            Ok(vec![
                ("passes", wgpu_passes_us(&wgpu, head, hidden, args.iters, Rows::Sampled)?),
                ("passes-greedy", wgpu_passes_us(&wgpu, head, hidden, args.iters, Rows::Greedy)?),
            ])
        });
    }
    let bandwidth = backend.name().starts_with("cpu").then(host_bandwidth);
    run_through_trait(args, backend.as_ref(), bandwidth, |_, _| Ok(vec![]))
}

/// The benchmark through the backend trait, with `passes(head, hidden)`: the device times of the
/// sampling passes alone (named variants), where the backend can tell them.
fn run_through_trait(
    args: &Args,
    backend: &dyn Backend,
    bandwidth: Option<HostBandwidth>,
    passes: impl Fn(&flashsampling::LmHead, HiddenRef<'_>) -> Result<Vec<(&'static str, f64)>>,
) -> Result<ExitCode> {
    let cpu = backend.name().starts_with("cpu");
    let shapes =
        parse_list(args.shapes.as_deref().unwrap_or(if cpu { "2048x151936" } else { "all" }), &SHAPES, parse_shape)?;
    let batches = parse_list(args.batches.as_deref().unwrap_or(if cpu { "1,4,16" } else { "all" }), &BATCHES, |s| {
        s.parse().ok()
    })?;
    let device = backend.info().devices.first().map(|d| d.name.clone()).unwrap_or_default();
    if let Some(bw) = &bandwidth {
        println!(
            "{} bandwidth: read-only stream {:.1} GB/s, copy {:.1} GB/s (bytes read + written)",
            if cpu { "host" } else { "device" },
            bw.read / 1e9,
            bw.copy / 1e9
        );
    }
    let mut records = Vec::new();
    for &(dim, vocab) in &shapes {
        let max_batch = *batches.iter().max().unwrap_or(&1);
        let data = Synthetic::new(dim, vocab, max_batch, args.dtype, 0xBE7C);
        let head = backend.load_lm_head(LmHeadRef::new(data.weights.view(), dim)?)?;
        for &batch in &batches {
            eprint!("  D={dim} V={vocab} B={batch} … ");
            let hidden = HiddenRef::new(data.hidden.view().slice(0..batch * dim), dim)?;
            let median_us = time_calls(backend, &head, hidden, args.iters)?;
            eprintln!("{median_us:.0} µs");
            let mut features = passes(&head, hidden)?;
            if batch <= TRAIT_PATH_MAX_BATCH {
                features.extend(trait_path_times(backend, &head, hidden, args.iters)?);
            }
            let bytes = bytes_moved(dim, vocab, batch, args.dtype.size(), args.dtype.size());
            let floor_us = bandwidth.as_ref().map(|bw| bytes / bw.read.max(bw.copy) * 1e6).unwrap_or(0.0);
            for (variant, median_us) in [("fused", median_us)].into_iter().chain(features) {
                records.push(Record {
                    backend: backend.name().into(),
                    device: device.clone(),
                    variant: variant.into(),
                    dim,
                    vocab,
                    batch,
                    dtype: args.dtype.name().into(),
                    median_us,
                    floor_us,
                });
            }
        }
    }
    finish(args, backend.name(), &records)
}

/// Passes of the sampling passes back to back per timed wgpu call.
#[cfg(feature = "wgpu")]
const WGPU_PASS_REPEATS: u32 = 10;

/// Which rows a timing samples: the benchmark's own, or greedy rows (no noise, the cost of the
/// matmul and the argmax alone).
#[cfg(feature = "wgpu")]
#[derive(Clone, Copy)]
enum Rows {
    Sampled,
    Greedy,
}

/// Median device time of wgpu's sampling passes over `hidden` (without the call's host round
/// trip), each timing at the next offset.
#[cfg(feature = "wgpu")]
fn wgpu_passes_us(
    wgpu: &flashsampling_wgpu::WgpuBackend,
    head: &flashsampling::LmHead,
    hidden: HiddenRef<'_>,
    iters: usize,
    which: Rows,
) -> Result<f64> {
    let mut times = (0..iters)
        .map(|step| {
            let rows = match which {
                Rows::Sampled => rows_at(hidden.batch, step),
                Rows::Greedy => vec![RowParams::greedy(); hidden.batch],
            };
            Ok(wgpu.passes_time(head, &Request::new(hidden, &rows, 1), WGPU_PASS_REPEATS)?.as_secs_f64() * 1e6)
        })
        .collect::<Result<Vec<f64>>>()?;
    Ok(median(&mut times))
}

fn parse_shape(s: &str) -> Option<(usize, usize)> {
    let (d, v) = s.split_once('x')?;
    Some((d.parse().ok()?, v.parse().ok()?))
}

fn finish(args: &Args, backend: &str, records: &[Record]) -> Result<ExitCode> {
    print_table(records);
    let path = args.csv.clone().unwrap_or_else(|| default_csv(&format!("bench-{backend}.csv")));
    write_csv(&path, records)?;
    println!("wrote {}", path.display());
    Ok(ExitCode::SUCCESS)
}

/// Calls before timing, for at least this long: a GPU idle while the host prepared the shape
/// runs its first calls at lower clocks (measured on an H100 through wgpu: the first calls of a
/// shape took up to 1.8× the later ones).
const WARM_UP: Duration = Duration::from_millis(500);

/// Median host time of `sample` over `hidden` after [`WARM_UP`], each call at the next offset
/// (fresh noise).
fn time_calls(backend: &dyn Backend, head: &flashsampling::LmHead, hidden: HiddenRef<'_>, iters: usize) -> Result<f64> {
    let rows = |step| rows_at(hidden.batch, step);
    let warm_up = Instant::now();
    let mut step = 0;
    while warm_up.elapsed() < WARM_UP {
        backend.sample(head, &Request::new(hidden, &rows(step), 1))?;
        step += 1;
    }
    let mut times = Vec::with_capacity(iters);
    for _ in 0..iters {
        let rows = rows(step);
        let start = Instant::now();
        backend.sample(head, &Request::new(hidden, &rows, 1))?;
        times.push(start.elapsed().as_secs_f64() * 1e6);
        step += 1;
    }
    Ok(median(&mut times))
}

/// The benchmark's `batch` rows at `step`: temperature 1, a seed per row, the step as offset (fresh
/// noise each call).
fn rows_at(batch: usize, step: usize) -> Vec<RowParams> {
    (0..batch).map(|b| RowParams::new(1.0, derive_row_seed(7, b as u64), step as u64)).collect()
}

/// One line per (D, V, B): each variant's median µs, the floor, the fused kernel's fraction of the
/// floor and every other variant's time over the fused one.
fn print_table(records: &[Record]) {
    let mut variants: Vec<&str> = Vec::new();
    let mut configs: Vec<(usize, usize, usize, f64)> = Vec::new();
    for r in records {
        if !variants.contains(&r.variant.as_str()) {
            variants.push(&r.variant);
        }
        if !configs.iter().any(|c| (c.0, c.1, c.2) == (r.dim, r.vocab, r.batch)) {
            configs.push((r.dim, r.vocab, r.batch, r.floor_us));
        }
    }
    let Some((&first_name, others)) = variants.split_first() else { return };
    let mut header = format!("\n{:>6} {:>7} {:>4}", "D", "V", "B");
    for v in &variants {
        header += &format!(" {:>13}", format!("{v} µs"));
    }
    header += &format!(" {:>9} {:>12}", "floor µs", format!("floor/{first_name}"));
    for v in others {
        header += &format!(" {:>20}", format!("{v}/{first_name}"));
    }
    println!("{header}");
    for (dim, vocab, batch, floor) in configs {
        let time = |v: &str| {
            records
                .iter()
                .find(|r| (r.dim, r.vocab, r.batch) == (dim, vocab, batch) && r.variant == v)
                .map(|r| r.median_us)
        };
        let mut line = format!("{dim:>6} {vocab:>7} {batch:>4}");
        for v in &variants {
            line += &time(v).map_or(format!(" {:>13}", "-"), |t| format!(" {t:>13.1}"));
        }
        let first = time(first_name).unwrap_or(f64::NAN);
        line += &format!(" {floor:>9.1} {:>12.3}", floor / first);
        for v in others {
            line += &time(v).map_or(format!(" {:>20}", "-"), |t| format!(" {:>20.3}", t / first));
        }
        println!("{line}");
    }
}

fn write_csv(path: &PathBuf, records: &[Record]) -> Result<()> {
    let io = |e: std::io::Error| Error::Param { row: None, what: format!("cannot write {}: {e}", path.display()) };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(io)?;
    }
    let mut text = String::from(Record::CSV_HEADER);
    text.push('\n');
    for r in records {
        text.push_str(&r.csv());
        text.push('\n');
    }
    fs::write(path, text).map_err(io)
}
