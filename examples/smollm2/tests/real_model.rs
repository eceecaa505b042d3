//! The sampler on a real model (issue: SmolLM2 end to end). Needs the model: run
//! `tools/fetch-smollm2.sh` (CI does); without it the tests say so and pass, unless
//! FLASHSAMPLING_REQUIRE names `smollm2`.

use flashsampling::core::stats::{chi_square, histogram};
use flashsampling::core::tensor::OwnedTensor;
use flashsampling::{derive_row_seed, probe, Backend, DType, HiddenRef, LmHeadRef, Request, RowParams, Truncation};
use smollm2_demo::generate::{Generator, HeadSampler, Sampling};
use smollm2_demo::model::{hidden_state, Gguf};
use smollm2_demo::{chat, default_model_path, tokenizer};

const PROMPTS: [&str; 2] = ["What is the capital of France?", "Write a haiku about autumn leaves."];

fn model() -> Option<Gguf> {
    match Gguf::open(&default_model_path()) {
        Ok(g) => Some(g),
        Err(e) => {
            let required = std::env::var("FLASHSAMPLING_REQUIRE").unwrap_or_default();
            assert!(!required.split(',').any(|r| r.trim() == "smollm2"), "the model is required: {e}");
            eprintln!("skipped: {e}");
            None
        }
    }
}

fn prompt_tokens(gguf: &Gguf, text: &str) -> Vec<u32> {
    let vocab = tokenizer::from_gguf(&gguf.content().unwrap()).unwrap();
    vocab.tokenizer.encode(chat::prompt(text), false).unwrap().get_ids().to_vec()
}

/// `count` real final hidden states: each prompt, then the states along its greedy continuation.
fn real_hidden_states(gguf: &Gguf, count: usize) -> Vec<Vec<f32>> {
    let head = gguf.lm_head(DType::F32).unwrap();
    let head = LmHeadRef::new(head.view(), gguf.dim).unwrap();
    let mut states = Vec::new();
    for text in PROMPTS {
        let mut body = gguf.body().unwrap();
        let prompt = prompt_tokens(gguf, text);
        let mut h = hidden_state(&mut body, &prompt, 0).unwrap();
        for pos in prompt.len()..prompt.len() + count / PROMPTS.len() {
            states.push(h.clone());
            let logits = flashsampling::core::exact::logits_f64(
                &head,
                &HiddenRef::new(flashsampling::Tensor::F32(&h), gguf.dim).unwrap(),
                0,
            );
            let next = flashsampling::core::exact::argmax(&logits) as u32;
            h = hidden_state(&mut body, &[next], pos).unwrap();
        }
    }
    states
}

/// A GPU backend running on a CPU emulation (Mesa lavapipe in CI).
fn software_gpu(backend: &dyn Backend) -> bool {
    backend.info().devices.iter().any(|d| d.details.iter().any(|l| l == "device type: Cpu"))
}

#[test]
fn real_logits_sampled_at_their_exact_softmax_on_every_backend() {
    let Some(gguf) = model() else { return };
    let states = real_hidden_states(&gguf, 20);
    let weights: OwnedTensor = gguf.lm_head(DType::Bf16).unwrap();
    let head_ref = LmHeadRef::new(weights.view(), gguf.dim).unwrap();
    let flat: Vec<f32> = states.concat();
    let hidden = HiddenRef::new(flashsampling::Tensor::F32(&flat), gguf.dim).unwrap();
    let exact: Vec<Vec<f64>> = (0..states.len())
        .map(|b| {
            flashsampling::core::exact::probabilities(
                &flashsampling::core::exact::logits_f64(&head_ref, &hidden, b),
                1.0,
            )
        })
        .collect();
    let rows: Vec<RowParams> =
        (0..states.len()).map(|b| RowParams::new(1.0, derive_row_seed(2026, b as u64), 3)).collect();
    const SAMPLES: u32 = 100_000;
    for (kind, backend) in probe() {
        let backend: Box<dyn Backend> = match backend {
            Ok(b) if kind != flashsampling::BackendKind::CpuReference && !software_gpu(b.as_ref()) => b,
            Ok(b) => {
                let device = b.info().devices.first().map(|d| d.name.clone()).unwrap_or_default();
                eprintln!("{} ({device}): skipped (too slow for 2,000,000 samples over 49,152 tokens)", kind.name());
                continue;
            }
            Err(e) => {
                eprintln!("{}: skipped: {e}", kind.name());
                continue;
            }
        };
        let head = backend.load_lm_head(head_ref).unwrap();
        let start = std::time::Instant::now();
        let out = backend.sample(&head, &Request::new(hidden, &rows, SAMPLES)).unwrap();
        let p_values: Vec<f64> = (0..states.len())
            .map(|b| chi_square(&histogram(out.row(b).iter().map(|&t| t as usize), gguf.vocab), &exact[b]).p_value)
            .collect();
        let adjusted = (p_values.iter().copied().fold(1.0, f64::min) * p_values.len() as f64).min(1.0);
        eprintln!(
            "{}: {} real states × {SAMPLES} samples in {:.1} s; Bonferroni-adjusted p = {adjusted:.4}; per state {:?}",
            backend.name(),
            states.len(),
            start.elapsed().as_secs_f64(),
            p_values.iter().map(|p| format!("{p:.3}")).collect::<Vec<_>>()
        );
        assert!(adjusted > 1e-3, "{}: sampled frequencies differ from the exact softmax", backend.name());
    }
}

#[test]
fn greedy_text_equals_candle_argmax_and_same_seed_same_text_on_every_backend() {
    let Some(gguf) = model() else { return };
    let vocab = tokenizer::from_gguf(&gguf.content().unwrap()).unwrap();
    let prompts: Vec<Vec<u32>> = PROMPTS.iter().map(|p| prompt_tokens(&gguf, p)).collect();
    let generate = |sampler: HeadSampler, sampling: Sampling| -> Vec<Vec<u32>> {
        let mut g = Generator::new(&gguf, &prompts, vocab.eos, sampler).unwrap();
        while g.step(&sampling, 7, 24).unwrap() {}
        g.outputs
    };
    let plain = |temperature: f32| Sampling { temperature, truncation: Truncation::default() };
    let ours = |kind: flashsampling::BackendKind| {
        flashsampling::open(kind).ok().map(|b| HeadSampler::flashsampling(b, &gguf, DType::F32).unwrap())
    };
    // Greedy: our argmax over the f32 dequantised head against candle's argmax over its own
    // quantised projection. A divergence must be a near-tie in candle's logits.
    let greedy = generate(ours(flashsampling::BackendKind::Cpu).unwrap(), plain(0.0));
    let candle = generate(HeadSampler::candle(&gguf, 7).unwrap(), plain(0.0));
    for (i, (a, c)) in greedy.iter().zip(&candle).enumerate() {
        match a.iter().zip(c).position(|(x, y)| x != y) {
            None => eprintln!(
                "prompt {i}: greedy text identical to candle's: {:?}",
                vocab.tokenizer.decode(a, true).unwrap()
            ),
            Some(step) => {
                let mut body = gguf.body().unwrap();
                let mut context = prompts[i].clone();
                context.extend(&a[..step]);
                let h = hidden_state(&mut body, &context, 0).unwrap();
                let HeadSampler::Candle { projection, .. } = HeadSampler::candle(&gguf, 7).unwrap() else {
                    unreachable!()
                };
                let theirs = HeadSampler::candle_logits(&projection, &h).unwrap();
                let head = gguf.lm_head(DType::F32).unwrap();
                let head = LmHeadRef::new(head.view(), gguf.dim).unwrap();
                let exact = flashsampling::core::exact::logits_f64(
                    &head,
                    &HiddenRef::new(flashsampling::Tensor::F32(&h), gguf.dim).unwrap(),
                    0,
                );
                // candle quantises the activations too: its own error decides what a near-tie is.
                let candle_error =
                    exact.iter().zip(&theirs).map(|(e, t)| (e - f64::from(*t)).abs()).fold(0.0, f64::max);
                let gap = (exact[a[step] as usize] - exact[c[step] as usize]).abs();
                eprintln!(
                    "prompt {i}: diverges from candle at step {step}: exact logit gap {gap:.4}, candle's largest logit error {candle_error:.4} (a near-tie)"
                );
                assert!(
                    gap <= 2.0 * candle_error,
                    "prompt {i}: step {step}: gap {gap} beyond candle's error {candle_error}"
                );
            }
        }
    }
    // Sampled text, untruncated and with top-k 40 + top-p 0.9: the same seeds give the same text
    // on every backend.
    let truncated = Sampling { temperature: 0.8, truncation: Truncation::top_k(40).and_top_p(0.9) };
    for sampling in [plain(0.8), truncated] {
        let mut texts = Vec::new();
        for kind in flashsampling::BackendKind::CONCRETE {
            match ours(kind) {
                Some(sampler) => texts.push((kind.name(), generate(sampler, sampling))),
                None => eprintln!("{}: skipped (unavailable)", kind.name()),
            }
        }
        for (name, t) in &texts[1..] {
            assert_eq!(t, &texts[0].1, "{name} and {} drew different text for the same seeds", texts[0].0);
        }
        eprintln!(
            "{sampling:?}: same text on {:?}: {:?}",
            texts.iter().map(|t| t.0).collect::<Vec<_>>(),
            vocab.tokenizer.decode(&texts[0].1[0], true).unwrap()
        );
    }
}
