//! `smollm2`: SmolLM2-135M-Instruct generating text, with FlashSampling (or, for comparison,
//! candle's own projection + softmax + multinomial) as its LM head and sampler.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use flashsampling::{open, BackendKind, DType, Truncation};
use smollm2_demo::generate::{Generator, HeadSampler, Sampling};
use smollm2_demo::{chat, default_model_path, model::Gguf, tokenizer, Result};

#[derive(Parser)]
#[command(about = "SmolLM2-135M-Instruct with FlashSampling as its LM head and sampler")]
struct Args {
    /// A user message; repeat for a batch of prompts.
    #[arg(long, default_value = "Write a short poem about the sea.")]
    prompt: Vec<String>,
    #[arg(long, default_value_t = 80)]
    max_tokens: usize,
    /// 0 = greedy.
    #[arg(long, default_value_t = 0.7)]
    temperature: f32,
    /// Keep the k most likely tokens (1 to 1024).
    #[arg(long)]
    top_k: Option<u32>,
    /// Keep the most likely tokens holding this much of the mass, after top-k.
    #[arg(long)]
    top_p: Option<f32>,
    /// Keep the tokens at least this many times as likely as the most likely one.
    #[arg(long)]
    min_p: Option<f32>,
    /// Call seed; each prompt's seed is derived from it and the prompt's index.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// auto, cpu, cpu-reference, cuda, wgpu.
    #[arg(long, default_value = "auto")]
    backend: String,
    /// dtype of the LM head (the dequantised tied embedding): bf16 or f32.
    #[arg(long, default_value = "bf16")]
    head_dtype: String,
    /// Path of the GGUF (default: the cache that tools/fetch-smollm2.sh fills).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Also run candle's own projection + softmax + multinomial and compare the timings.
    #[arg(long)]
    compare_candle: bool,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let gguf = Gguf::open(&args.model.clone().unwrap_or_else(default_model_path))?;
    let vocab = tokenizer::from_gguf(&gguf.content()?)?;
    let backend = open(args.backend.parse::<BackendKind>()?)?;
    let head_dtype: DType = args.head_dtype.parse()?;
    let ours = HeadSampler::flashsampling(backend, &gguf, head_dtype)?;
    println!("SmolLM2-135M-Instruct: D={}, V={}; sampler: {}", gguf.dim, gguf.vocab, ours.name());
    let prompts: Vec<Vec<u32>> = args
        .prompt
        .iter()
        .map(|p| Ok(vocab.tokenizer.encode(chat::prompt(p), false)?.get_ids().to_vec()))
        .collect::<Result<_>>()?;
    run(&args, &gguf, &vocab, &prompts, ours)?;
    if args.compare_candle {
        run(&args, &gguf, &vocab, &prompts, HeadSampler::candle(&gguf, args.seed)?)?;
    }
    Ok(())
}

fn run(
    args: &Args,
    gguf: &Gguf,
    vocab: &tokenizer::Vocabulary,
    prompts: &[Vec<u32>],
    sampler: HeadSampler,
) -> Result<()> {
    let stream = prompts.len() == 1;
    let mut generator = Generator::new(gguf, prompts, vocab.eos, sampler)?;
    let truncation = Truncation { top_k: args.top_k, top_p: args.top_p, min_p: args.min_p };
    let sampling = Sampling { temperature: args.temperature, truncation };
    let mut printed = 0;
    while generator.step(&sampling, args.seed, args.max_tokens)? {
        if stream {
            let text = vocab.tokenizer.decode(&generator.outputs[0], true)?;
            print!("{}", &text[printed.min(text.len())..]);
            std::io::stdout().flush()?;
            printed = text.len();
        }
    }
    // The loop: prompt processing and decode steps (loading the bodies is not part of it).
    let wall = generator.body_time + generator.head_time;
    for (i, out) in generator.outputs.iter().enumerate() {
        if !stream {
            println!("\n[{i}] {}", vocab.tokenizer.decode(out, true)?);
        }
    }
    let tokens: usize = generator.outputs.iter().map(Vec::len).sum();
    let share = |d: Duration| 100.0 * d.as_secs_f64() / wall.as_secs_f64();
    println!(
        "\n[{}] {tokens} tokens in {:.2} s: {:.1} tokens/s; body {:.1}%, LM head + sampling {:.1}% of the loop ({:.2} ms per step)",
        generator.sampler.name(),
        wall.as_secs_f64(),
        tokens as f64 / wall.as_secs_f64(),
        share(generator.body_time),
        share(generator.head_time),
        generator.head_time.as_secs_f64() * 1e3 / generator.steps.max(1) as f64,
    );
    Ok(())
}
