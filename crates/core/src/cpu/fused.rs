//! The fast CPU backend: the fused algorithm of FlashSampling on host threads.
//!
//! The vocabulary is cut into tiles; each tile's weights are converted to f32 once and its logits
//! computed for every row of the batch, so `W` streams through memory once per call. Each thread
//! folds its tiles' winners into its own candidate buffer, and the buffers meet in a `max`
//! reduction. Tokens that cannot beat the running best skip their noise: first by the largest
//! Gumbel value of all (`y + gumbel_max`), then by the largest value of their Philox word's class
//! ([`GumbelBounds`]). Both bounds are exact, so no sample changes.

use rayon::prelude::*;

use super::dot::dot;
use super::{host_head, load_host_head};
use crate::backend::{Backend, BackendInfo, DeviceInfo, LmHead};
use crate::candidate::{merge_into, pack, score_of, EMPTY};
use crate::constraints::RowTransform;
use crate::error::{Error, Result};
use crate::logsumexp::LogSumExp;
use crate::noise::{gumbel_from_word, gumbel_max, GumbelBounds, NoiseStream};
use crate::params::{Request, RowParams};
use crate::tensor::LmHeadRef;
use crate::validate;

const NAME: &str = "cpu";

/// Default vocabulary tile: 64 rows of `W` (512 KiB of f32 at D = 2048) stay in L2 while every
/// row of the batch reads them.
pub const DEFAULT_VOCAB_TILE: usize = 64;

/// Heads up to this many elements may be converted whole by each thread (the small-vocabulary path).
const SMALL_HEAD_ELEMENTS: usize = 1 << 20;

/// The default backend: exact, multi-threaded, streams `W` once per call.
#[derive(Debug, Clone)]
pub struct CpuBackend {
    vocab_tile: usize,
}

impl Default for CpuBackend {
    fn default() -> Self {
        CpuBackend { vocab_tile: DEFAULT_VOCAB_TILE }
    }
}

impl CpuBackend {
    pub fn new() -> Self {
        Self::default()
    }

    /// A backend with `vocab_tile` tokens per tile. Results do not depend on it.
    pub fn with_vocab_tile(vocab_tile: usize) -> Result<Self> {
        if vocab_tile == 0 {
            return Err(Error::Param { row: None, what: "the vocabulary tile must hold at least one token".into() });
        }
        Ok(CpuBackend { vocab_tile })
    }

    pub fn vocab_tile(&self) -> usize {
        self.vocab_tile
    }

    /// Samples straight from a borrowed head, with no resident copy.
    pub fn sample_candidates_borrowed(&self, head: &LmHeadRef<'_>, req: &Request<'_>, out: &mut [u64]) -> Result<()> {
        validate::call(head, req)?;
        validate::candidates(req, out.len())?;
        self.run(head, req, out, None)
    }

    /// Samples into `out`; with `norms`, also each row's log-normaliser, merged over tiles in tile
    /// order (deterministic for a given tile size).
    fn run(
        &self,
        head: &LmHeadRef<'_>,
        req: &Request<'_>,
        out: &mut [u64],
        norms: Option<&mut [LogSumExp]>,
    ) -> Result<()> {
        let (batch, dim) = (req.hidden.batch, head.dim);
        let mut hidden = vec![0.0f32; batch * dim];
        req.hidden.data.convert_range(0..batch * dim, &mut hidden);
        let transforms = validate::transforms(req, head.vocab_size)?;
        let rows: Vec<Row<'_>> = req
            .rows
            .iter()
            .zip(hidden.chunks_exact(dim))
            .zip(&transforms)
            .map(|((params, h), transform)| Row { params, h, transform })
            .collect();
        let tiles = head.rows.div_ceil(self.vocab_tile);
        let small = head.rows * dim <= SMALL_HEAD_ELEMENTS;
        let tile_norms = if tiles >= 4 * rayon::current_num_threads() || !small {
            self.run_vocab_parallel(head, &rows, req.samples as usize, tiles, out, norms.is_some())
        } else {
            run_sample_parallel(head, &rows, req.samples as usize, out)
        };
        if let Some(norms) = norms {
            merge_in_tile_order(tile_norms, norms);
        }
        Ok(())
    }

    /// Large vocabularies: threads take tiles, each keeps its own winners, winners meet in a `max`.
    fn run_vocab_parallel(
        &self,
        head: &LmHeadRef<'_>,
        rows: &[Row<'_>],
        samples: usize,
        tiles: usize,
        out: &mut [u64],
        normalize: bool,
    ) -> Vec<TileNorms> {
        let (best, norms) = (0..tiles)
            .into_par_iter()
            .fold(
                || TileWorker::new(head, rows, samples, self.vocab_tile, normalize),
                |mut worker, tile| {
                    worker.process(tile);
                    worker
                },
            )
            .map(|worker| (worker.best, worker.norms))
            .reduce(
                || (vec![EMPTY; out.len()], Vec::new()),
                |(mut a, mut an), (b, bn)| {
                    merge_into(&mut a, &b);
                    an.extend(bn);
                    (a, an)
                },
            );
        out.copy_from_slice(&best);
        norms
    }
}

/// Small vocabularies: too few tiles to feed the threads, so threads take blocks of samples and
/// each computes its row's (few) logits itself.
fn run_sample_parallel(head: &LmHeadRef<'_>, rows: &[Row<'_>], samples: usize, out: &mut [u64]) -> Vec<TileNorms> {
    const SAMPLE_BLOCK: usize = 4096;
    let dim = head.dim;
    let bounds = Bounds::new();
    let norms = out.par_chunks_mut(samples).zip(rows.par_iter()).map(|(row_out, row)| {
        let mut weights = vec![0.0f32; head.rows * dim];
        head.weights.convert_range(0..head.rows * dim, &mut weights);
        let mut scaled = vec![0.0f32; head.rows];
        row.scaled_logits(&weights, head.vocab_offset, &mut scaled);
        row_out.par_chunks_mut(SAMPLE_BLOCK).enumerate().for_each(|(block, slots)| {
            slots.fill(EMPTY);
            let first = (block * SAMPLE_BLOCK) as u32;
            fold_tile(&scaled, head.vocab_offset, row.params, first, slots, &bounds);
        });
        LogSumExp::of(&scaled)
    });
    vec![(0, norms.collect())]
}

/// One tile's log-normaliser partial of every row.
type TileNorms = (usize, Vec<LogSumExp>);

fn merge_in_tile_order(mut tiles: Vec<TileNorms>, norms: &mut [LogSumExp]) {
    tiles.sort_by_key(|t| t.0);
    norms.fill(LogSumExp::EMPTY);
    for (_, partials) in tiles {
        for (n, p) in norms.iter_mut().zip(partials) {
            *n = n.merge(p);
        }
    }
}

/// One row of the batch: its parameters, hidden state (f32) and constraints.
struct Row<'a> {
    params: &'a RowParams,
    h: &'a [f32],
    transform: &'a RowTransform<'a>,
}

impl Row<'_> {
    /// `y_t = transform(w_t · h) / T` for the rows `w_t` of `weights`, tokens from `first_token`.
    fn scaled_logits(&self, weights: &[f32], first_token: u32, scaled: &mut [f32]) {
        for (y, w) in scaled.iter_mut().zip(weights.chunks_exact(self.h.len())) {
            *y = dot(w, self.h);
        }
        self.transform.apply(first_token, scaled);
        let inv_t = self.params.inv_temperature();
        scaled.iter_mut().for_each(|y| *y *= inv_t);
    }
}

/// The two exact bounds on the Gumbel noise used to skip it.
struct Bounds {
    max: f32,
    by_word: GumbelBounds,
}

impl Bounds {
    fn new() -> Self {
        Bounds { max: gumbel_max(), by_word: GumbelBounds::new() }
    }
}

/// Folds one tile of scaled logits (`first_token` onwards) into the winners `slots` of samples
/// `first_sample..first_sample + slots.len()` of one row.
fn fold_tile(scaled: &[f32], first_token: u32, row: &RowParams, first_sample: u32, slots: &mut [u64], bounds: &Bounds) {
    if row.is_greedy() {
        let winner = scaled.iter().enumerate().map(|(j, &x)| pack(x, first_token + j as u32)).max().unwrap_or(EMPTY);
        slots.iter_mut().for_each(|c| *c = (*c).max(winner));
        return;
    }
    for (s, slot) in slots.iter_mut().enumerate() {
        let mut noise = NoiseStream::new(row.seed, row.offset, first_sample + s as u32);
        let mut best_score = score_of(*slot);
        for (j, &y) in scaled.iter().enumerate() {
            if y + bounds.max < best_score {
                continue;
            }
            let token = first_token + j as u32;
            let word = noise.word(token);
            if y + bounds.by_word.of_word(word) < best_score {
                continue;
            }
            let score = y + gumbel_from_word(word);
            let candidate = pack(score, token);
            if candidate > *slot {
                *slot = candidate;
                best_score = score;
            }
        }
    }
}

/// One thread's state: scratch for a tile and the best candidate so far of every (row, sample).
struct TileWorker<'a> {
    head: &'a LmHeadRef<'a>,
    rows: &'a [Row<'a>],
    samples: usize,
    tile: usize,
    weights: Vec<f32>,
    scaled: Vec<f32>,
    best: Vec<u64>,
    bounds: Bounds,
    /// With logprobs: the partials of the tiles this worker took.
    norms: Vec<TileNorms>,
    normalize: bool,
}

impl<'a> TileWorker<'a> {
    fn new(head: &'a LmHeadRef<'a>, rows: &'a [Row<'a>], samples: usize, tile: usize, normalize: bool) -> Self {
        TileWorker {
            head,
            rows,
            samples,
            tile,
            weights: vec![0.0; tile * head.dim],
            scaled: vec![0.0; tile],
            best: vec![EMPTY; rows.len() * samples],
            bounds: Bounds::new(),
            norms: Vec::new(),
            normalize,
        }
    }

    fn process(&mut self, tile: usize) {
        let dim = self.head.dim;
        let start = tile * self.tile;
        let len = self.tile.min(self.head.rows - start);
        let weights = &mut self.weights[..len * dim];
        self.head.weights.convert_range(start * dim..(start + len) * dim, weights);
        let first_token = self.head.vocab_offset + start as u32;
        let mut partials = Vec::with_capacity(if self.normalize { self.rows.len() } else { 0 });
        for (row, slots) in self.rows.iter().zip(self.best.chunks_exact_mut(self.samples)) {
            let scaled = &mut self.scaled[..len];
            row.scaled_logits(weights, first_token, scaled);
            fold_tile(scaled, first_token, row.params, 0, slots, &self.bounds);
            if self.normalize {
                partials.push(LogSumExp::of(scaled));
            }
        }
        if self.normalize {
            self.norms.push((tile, partials));
        }
    }
}

impl Backend for CpuBackend {
    fn name(&self) -> &'static str {
        NAME
    }

    fn info(&self) -> BackendInfo {
        let threads = rayon::current_num_threads();
        BackendInfo {
            backend: NAME,
            devices: vec![DeviceInfo {
                name: format!("host CPU ({} threads)", threads),
                compute_units: Some(threads as u32),
                details: vec![
                    format!("vocab tile: {} tokens", self.vocab_tile),
                    format!("avx: {}", cfg!(target_arch = "x86_64") && avx_available()),
                ],
                ..Default::default()
            }],
        }
    }

    fn load_lm_head(&self, head: LmHeadRef<'_>) -> Result<LmHead> {
        load_host_head(NAME, head)
    }

    fn launch(&self, head: &LmHead, req: &Request<'_>, out: &mut [u64]) -> Result<()> {
        self.run(&host_head(NAME, head)?, req, out, None)
    }

    fn launch_with_normalizer(
        &self,
        head: &LmHead,
        req: &Request<'_>,
        out: &mut [u64],
        norms: &mut [LogSumExp],
    ) -> Result<()> {
        self.run(&host_head(NAME, head)?, req, out, Some(norms))
    }

    fn supports_constraints(&self) -> bool {
        true
    }
}

fn avx_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    return std::arch::is_x86_feature_detected!("avx");
    #[cfg(not(target_arch = "x86_64"))]
    false
}
