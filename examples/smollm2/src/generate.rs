//! The decode loop: the body yields each prompt's last hidden state, one sampler call draws the
//! next token of every prompt in the batch.

use std::time::{Duration, Instant};

use candle_core::quantized::QMatMul;
use candle_core::{Device, Module, Tensor};
use candle_transformers::generation::{self, LogitsProcessor};
use candle_transformers::models::quantized_llama::ModelWeights;
use flashsampling::core::tensor::OwnedTensor;
use flashsampling::{
    derive_row_seed, Backend, DType, HiddenRef, LmHead, LmHeadRef, Request, RowParams, RowStatus, Truncation,
};

use crate::model::{hidden_state, Gguf};
use crate::Result;

/// How every prompt's next token is drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sampling {
    /// 0 = greedy.
    pub temperature: f32,
    pub truncation: Truncation,
}

impl Sampling {
    /// candle's sampling of the same distribution, for the comparison; candle has no min-p.
    fn candle(&self) -> Result<generation::Sampling> {
        let t = &self.truncation;
        if t.min_p.is_some() {
            return Err("candle's LogitsProcessor has no min-p".into());
        }
        let temperature = f64::from(self.temperature);
        Ok(match (t.top_k.map(|k| k as usize), t.top_p.map(f64::from)) {
            _ if self.temperature == 0.0 => generation::Sampling::ArgMax,
            (Some(k), Some(p)) => generation::Sampling::TopKThenTopP { k, p, temperature },
            (Some(k), None) => generation::Sampling::TopK { k, temperature },
            (None, Some(p)) => generation::Sampling::TopP { p, temperature },
            (None, None) => generation::Sampling::All { temperature },
        })
    }
}

/// What turns hidden states into tokens.
pub enum HeadSampler {
    /// Our fused LM head + sampler over the dequantised tied embedding.
    FlashSampling { backend: Box<dyn Backend>, head: LmHead },
    /// candle's own: the quantised projection, then softmax + multinomial (or argmax).
    Candle { projection: QMatMul, seed: u64, processors: Vec<LogitsProcessor> },
}

impl HeadSampler {
    pub fn flashsampling(backend: Box<dyn Backend>, gguf: &Gguf, dtype: DType) -> Result<Self> {
        let weights: OwnedTensor = gguf.lm_head(dtype)?;
        let head = backend.load_lm_head(LmHeadRef::new(weights.view(), gguf.dim)?)?;
        Ok(HeadSampler::FlashSampling { backend, head })
    }

    pub fn candle(gguf: &Gguf, seed: u64) -> Result<Self> {
        let content = gguf.content()?;
        let q = content.tensor(&mut std::io::Cursor::new(gguf.image()), "token_embd.weight", &Device::Cpu)?;
        Ok(HeadSampler::Candle { projection: QMatMul::from_qtensor(q)?, seed, processors: Vec::new() })
    }

    pub fn name(&self) -> String {
        match self {
            HeadSampler::FlashSampling { backend, .. } => format!("flashsampling/{}", backend.name()),
            HeadSampler::Candle { .. } => "candle projection + softmax + multinomial".into(),
        }
    }

    /// candle's logits of one hidden state (its quantised projection).
    pub fn candle_logits(projection: &QMatMul, hidden: &[f32]) -> Result<Vec<f32>> {
        let h = Tensor::new(hidden, &Device::Cpu)?.unsqueeze(0)?;
        Ok(projection.forward(&h)?.flatten_all()?.to_vec1()?)
    }

    /// Next token of each row; `rows[i]` holds row `i`'s temperature, seed and offset.
    pub fn next(&mut self, hidden: &[Vec<f32>], rows: &[RowParams], sampling: &Sampling) -> Result<Vec<u32>> {
        match self {
            HeadSampler::FlashSampling { backend, head } => {
                let flat: Vec<f32> = hidden.concat();
                let h = HiddenRef::new(flashsampling::Tensor::F32(&flat), head.dim)?;
                let truncation = vec![sampling.truncation; rows.len()];
                let mut req = Request::new(h, rows, 1);
                if sampling.truncation.is_active() {
                    req = req.with_truncation(&truncation);
                }
                let out = backend.sample(head, &req)?;
                if let Some(b) = out.status.iter().position(|s| *s != RowStatus::Ok) {
                    return Err(format!("row {b}: {:?}", out.status[b]).into());
                }
                Ok(out.tokens)
            }
            HeadSampler::Candle { projection, seed, processors } => {
                while processors.len() < rows.len() {
                    let i = processors.len() as u64;
                    processors.push(LogitsProcessor::from_sampling(derive_row_seed(*seed, i), sampling.candle()?));
                }
                hidden
                    .iter()
                    .zip(processors.iter_mut())
                    .map(|(h, p)| {
                        let logits = Tensor::new(Self::candle_logits(projection, h)?, &Device::Cpu)?;
                        Ok(p.sample(&logits)?)
                    })
                    .collect()
            }
        }
    }
}

/// The state of a batch of prompts being continued.
pub struct Generator {
    bodies: Vec<ModelWeights>,
    hidden: Vec<Vec<f32>>,
    positions: Vec<usize>,
    done: Vec<bool>,
    eos: u32,
    pub sampler: HeadSampler,
    pub outputs: Vec<Vec<u32>>,
    pub steps: u64,
    pub body_time: Duration,
    pub head_time: Duration,
}

impl Generator {
    /// Loads a body (its own KV cache) per prompt and runs the prompt through it.
    pub fn new(gguf: &Gguf, prompts: &[Vec<u32>], eos: u32, sampler: HeadSampler) -> Result<Self> {
        let mut bodies = prompts.iter().map(|_| gguf.body()).collect::<Result<Vec<_>>>()?;
        let start = Instant::now();
        let hidden =
            bodies.iter_mut().zip(prompts).map(|(body, p)| hidden_state(body, p, 0)).collect::<Result<Vec<_>>>()?;
        Ok(Generator {
            bodies,
            hidden,
            positions: prompts.iter().map(Vec::len).collect(),
            done: vec![false; prompts.len()],
            eos,
            sampler,
            outputs: vec![Vec::new(); prompts.len()],
            steps: 0,
            body_time: start.elapsed(),
            head_time: Duration::ZERO,
        })
    }

    /// One decode step for every unfinished prompt; false once all are finished.
    pub fn step(&mut self, sampling: &Sampling, seed: u64, max_tokens: usize) -> Result<bool> {
        let active: Vec<usize> = (0..self.bodies.len()).filter(|&i| !self.done[i]).collect();
        if active.is_empty() {
            return Ok(false);
        }
        let rows: Vec<RowParams> = active
            .iter()
            .map(|&i| RowParams::new(sampling.temperature, derive_row_seed(seed, i as u64), self.steps))
            .collect();
        let hidden: Vec<Vec<f32>> = active.iter().map(|&i| self.hidden[i].clone()).collect();
        let start = Instant::now();
        let tokens = self.sampler.next(&hidden, &rows, sampling)?;
        self.head_time += start.elapsed();
        let start = Instant::now();
        for (&i, &token) in active.iter().zip(&tokens) {
            if token == self.eos || self.outputs[i].len() >= max_tokens {
                self.done[i] = true;
                continue;
            }
            self.outputs[i].push(token);
            self.hidden[i] = hidden_state(&mut self.bodies[i], &[token], self.positions[i])?;
            self.positions[i] += 1;
        }
        self.body_time += start.elapsed();
        self.steps += 1;
        Ok(true)
    }
}
