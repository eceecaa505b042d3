//! The fast CPU backend: the fused algorithm of FlashSampling on host threads.
//!
//! The vocabulary is cut into tiles; each tile's weights are converted to f32 once and its logits
//! computed for every row of the batch, so `W` streams through memory once per call. Each thread
//! folds its tiles' winners into its own candidate buffer, and the buffers meet in a `max`
//! reduction. Tokens that cannot beat the running best skip their noise: first by the largest
//! Gumbel value of all (`y + gumbel_max`), then by the largest value of their Philox word's class
//! ([`GumbelBounds`]). Both bounds are exact, so no sample changes.
//!
//! Rows that rank their tokens (truncation, top-N logprobs) also keep, per thread, their most
//! likely tokens ([`TopList`]); the merged lists and the tile partials of the log-normaliser
//! certify each truncated row's cut-off, and the row is then sampled over its survivors alone. A
//! row whose list cannot certify its cut-off is recomputed, ranking the whole vocabulary (the
//! materialised fallback: one more pass over `W` for all such rows of the call).
//! Rows that rank nothing pay nothing for it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use rayon::prelude::*;

use super::dot::dot;
use super::winner::Winner;
use super::{host_head, load_host_head};
use crate::backend::{Backend, BackendInfo, DeviceInfo, LmHead, RowOutputs};
use crate::candidate::{merge_into, pack, EMPTY};
use crate::constraints::RowTransform;
use crate::error::{Error, Result};
use crate::features::{Feature, Features};
use crate::logsumexp::LogSumExp;
use crate::noise::{GumbelBounds, NoiseStream};
use crate::params::{Request, RowParams};
use crate::ranked::{Ranked, TopList};
use crate::survivors::{finish_row, RowPlan, COMPLETE_LISTS_CERTIFY};
use crate::tensor::LmHeadRef;
use crate::validate;

const NAME: &str = "cpu";

/// Default vocabulary tile: 64 rows of `W` (512 KiB of f32 at D = 2048) stay in L2 while every
/// row of the batch reads them.
pub const DEFAULT_VOCAB_TILE: usize = 64;

/// Rows the materialised fallback ranks in one pass over `W` (each holds its whole row's keys).
const FALLBACK_ROWS: usize = 16;

/// Heads up to this many elements may be converted whole by each thread (the small-vocabulary path).
const SMALL_HEAD_ELEMENTS: usize = 1 << 20;

/// The default backend: exact, multi-threaded, streams `W` once per call.
#[derive(Debug, Clone)]
pub struct CpuBackend {
    vocab_tile: usize,
    /// Rows recomputed whole because their ranked list could not certify the cut-off (shared by
    /// clones).
    fallbacks: Arc<AtomicU64>,
}

impl Default for CpuBackend {
    fn default() -> Self {
        CpuBackend { vocab_tile: DEFAULT_VOCAB_TILE, fallbacks: Arc::default() }
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
        Ok(CpuBackend { vocab_tile, ..Self::default() })
    }

    pub fn vocab_tile(&self) -> usize {
        self.vocab_tile
    }

    /// How many truncated rows so far took the materialised fallback (DESIGN.md §3.6).
    pub fn fallback_rows(&self) -> u64 {
        self.fallbacks.load(Ordering::Relaxed)
    }

    /// Samples straight from a borrowed head, with no resident copy.
    pub fn sample_candidates_borrowed(&self, head: &LmHeadRef<'_>, req: &Request<'_>, out: &mut [u64]) -> Result<()> {
        validate::call(head, req)?;
        validate::candidates(req, out.len())?;
        self.run(head, req, out, None)
    }

    /// Samples into `out`; with `outputs`, also each row's log-normaliser, merged over tiles in
    /// tile order (deterministic for a given tile size), and its top-N list.
    fn run(
        &self,
        head: &LmHeadRef<'_>,
        req: &Request<'_>,
        out: &mut [u64],
        outputs: Option<RowOutputs<'_>>,
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
            .zip(RowPlan::of_request(req))
            .map(|(((params, h), transform), plan)| Row { params, h, transform, plan })
            .collect();
        let normalize = outputs.is_some() || rows.iter().any(|r| r.plan.list_length > 0);
        let samples = req.samples as usize;
        let small = head.rows * dim <= SMALL_HEAD_ELEMENTS;
        let pass = if self.tiles(head) >= 4 * rayon::current_num_threads() || !small {
            self.run_vocab_parallel(head, &rows, samples, out, normalize)
        } else {
            self.run_sample_parallel(head, &rows, samples, out)
        };
        let mut norms = merge_in_tile_order(pass.norms, batch);
        let (out_norms, top) = match outputs {
            Some(o) => (Some(o.norms), o.top),
            None => (None, &mut [][..]),
        };
        let uncertified = finish_ranked_rows(&rows, pass.ranked, &mut norms, out, top);
        self.fallbacks.fetch_add(uncertified.len() as u64, Ordering::Relaxed);
        for group in uncertified.chunks(FALLBACK_ROWS) {
            self.rank_whole_rows(head, &rows, group, &mut norms, out, top);
        }
        if let Some(out_norms) = out_norms {
            out_norms.copy_from_slice(&norms);
        }
        Ok(())
    }

    /// The materialised fallback of DESIGN.md §3.6 for rows `which`: one more pass over `W` ranks
    /// every token of those rows, which certifies any cut-off; then they are finished.
    fn rank_whole_rows(
        &self,
        head: &LmHeadRef<'_>,
        rows: &[Row<'_>],
        which: &[usize],
        norms: &mut [LogSumExp],
        out: &mut [u64],
        top: &mut [u64],
    ) {
        let (samples, n) = (out.len() / rows.len(), top.len() / rows.len());
        let again: Vec<Row<'_>> =
            which.iter().map(|&b| Row { plan: rows[b].plan.ranking_all(head.rows), ..rows[b] }).collect();
        let pass = self.run_vocab_parallel(head, &again, samples, &mut vec![EMPTY; again.len() * samples], true);
        let totals = merge_in_tile_order(pass.norms, again.len());
        for ((&b, ranked), total) in which.iter().zip(pass.ranked).zip(totals) {
            let ranked = ranked.expect("the fallback ranks every row it recomputes");
            let (slots, top) = (&mut out[b * samples..(b + 1) * samples], &mut top[b * n..(b + 1) * n]);
            norms[b] =
                finish_row(&rows[b].plan, rows[b].params, &ranked, total, slots, top).expect(COMPLETE_LISTS_CERTIFY);
        }
    }

    fn tiles(&self, head: &LmHeadRef<'_>) -> usize {
        head.rows.div_ceil(self.vocab_tile)
    }

    /// Large vocabularies: threads take tiles, each keeps its own winners, winners meet in a `max`.
    fn run_vocab_parallel(
        &self,
        head: &LmHeadRef<'_>,
        rows: &[Row<'_>],
        samples: usize,
        out: &mut [u64],
        normalize: bool,
    ) -> Pass {
        let merged = (0..self.tiles(head))
            .into_par_iter()
            .fold(
                || TileWorker::new(head, rows, samples, self.vocab_tile, normalize),
                |mut worker, tile| {
                    worker.process(tile);
                    worker
                },
            )
            .map(|worker| worker.acc)
            .reduce_with(Partial::merge)
            .expect("a head has at least one tile");
        out.copy_from_slice(&merged.best);
        Pass { norms: merged.norms, ranked: merged.lists.into_iter().map(|l| l.map(TopList::finish)).collect() }
    }

    /// Small vocabularies: too few tiles to feed the threads, so threads take rows and blocks of
    /// samples, and each row's logits are materialised.
    fn run_sample_parallel(&self, head: &LmHeadRef<'_>, rows: &[Row<'_>], samples: usize, out: &mut [u64]) -> Pass {
        const SAMPLE_BLOCK: usize = 4096;
        let bounds = GumbelBounds::new();
        let (norms, ranked) = out
            .par_chunks_mut(samples)
            .zip(rows.par_iter())
            .map(|(row_out, row)| {
                let scaled = self.materialise(head, row);
                if row.plan.samples_in_pass() {
                    row_out.par_chunks_mut(SAMPLE_BLOCK).enumerate().for_each(|(block, slots)| {
                        slots.fill(EMPTY);
                        let first = (block * SAMPLE_BLOCK) as u32;
                        fold_tile(&scaled, head.vocab_offset, row.params, first, slots, &bounds);
                    });
                }
                let ranked = (row.plan.list_length > 0).then(|| Ranked::all(&scaled, head.vocab_offset));
                (LogSumExp::of(scaled.iter().copied()), ranked)
            })
            .unzip();
        Pass { norms: vec![(0, norms)], ranked }
    }

    /// Row `row`'s scaled logits over the whole head, tiles in parallel.
    fn materialise(&self, head: &LmHeadRef<'_>, row: &Row<'_>) -> Vec<f32> {
        let (dim, tile) = (head.dim, self.vocab_tile.min(head.rows));
        let mut scaled = vec![0.0f32; head.rows];
        scaled.par_chunks_mut(tile).enumerate().for_each_init(
            || vec![0.0f32; tile * dim],
            |weights, (i, chunk)| {
                let start = i * tile;
                let weights = &mut weights[..chunk.len() * dim];
                head.weights.convert_range(start * dim..(start + chunk.len()) * dim, weights);
                row.scaled_logits(weights, head.vocab_offset + start as u32, chunk);
            },
        );
        scaled
    }
}

/// Cuts, samples and reports the ranked rows, `norms[b]` becoming the log-normaliser of what row
/// `b` samples from; returns the rows whose list could not certify the cut-off, left undone.
fn finish_ranked_rows(
    rows: &[Row<'_>],
    ranked: Vec<Option<Ranked>>,
    norms: &mut [LogSumExp],
    out: &mut [u64],
    top: &mut [u64],
) -> Vec<usize> {
    let (samples, n) = (out.len() / rows.len(), top.len() / rows.len());
    let mut uncertified = Vec::new();
    for (b, (row, ranked)) in rows.iter().zip(ranked).enumerate() {
        let Some(ranked) = ranked else { continue };
        let (slots, top) = (&mut out[b * samples..(b + 1) * samples], &mut top[b * n..(b + 1) * n]);
        match finish_row(&row.plan, row.params, &ranked, norms[b], slots, top) {
            Some(norm) => norms[b] = norm,
            None => uncertified.push(b),
        }
    }
    uncertified
}

/// What the fused pass leaves: tile partials of the log-normaliser and each ranking row's list.
struct Pass {
    norms: Vec<TileNorms>,
    ranked: Vec<Option<Ranked>>,
}

/// One tile's log-normaliser partial of every row.
type TileNorms = (usize, Vec<LogSumExp>);

/// Each row's log-normaliser over every token; `EMPTY` when no partial was kept.
fn merge_in_tile_order(mut tiles: Vec<TileNorms>, batch: usize) -> Vec<LogSumExp> {
    tiles.sort_by_key(|t| t.0);
    let mut norms = vec![LogSumExp::EMPTY; batch];
    for (_, partials) in tiles {
        for (n, p) in norms.iter_mut().zip(partials) {
            *n = n.merge(p);
        }
    }
    norms
}

/// One row of the batch: its parameters, hidden state (f32), constraints and what it ranks.
#[derive(Clone, Copy)]
struct Row<'a> {
    params: &'a RowParams,
    h: &'a [f32],
    transform: &'a RowTransform<'a>,
    plan: RowPlan<'a>,
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

/// Folds one tile of scaled logits (`first_token` onwards) into the winners `slots` of samples
/// `first_sample..first_sample + slots.len()` of one row.
fn fold_tile(
    scaled: &[f32],
    first_token: u32,
    row: &RowParams,
    first_sample: u32,
    slots: &mut [u64],
    bounds: &GumbelBounds,
) {
    if row.is_greedy() {
        let winner = scaled.iter().enumerate().map(|(j, &x)| pack(x, first_token + j as u32)).max().unwrap_or(EMPTY);
        slots.iter_mut().for_each(|c| *c = (*c).max(winner));
        return;
    }
    for (s, slot) in slots.iter_mut().enumerate() {
        let mut noise = NoiseStream::new(row.seed, row.offset, first_sample + s as u32);
        let mut winner = Winner::new(*slot);
        for (j, &y) in scaled.iter().enumerate() {
            if winner.out_of_reach(y, bounds) {
                continue;
            }
            let token = first_token + j as u32;
            winner.offer(y, token, noise.word(token), bounds);
        }
        *slot = winner.best;
    }
}

/// What a thread of the vocabulary-parallel pass accumulates over its tiles.
struct Partial {
    /// The best candidate so far of every (row, sample).
    best: Vec<u64>,
    /// With logprobs or ranking rows: the partials of the tiles this thread took.
    norms: Vec<TileNorms>,
    /// The ranked list of each ranking row.
    lists: Vec<Option<TopList>>,
}

impl Partial {
    fn merge(mut self, other: Partial) -> Partial {
        merge_into(&mut self.best, &other.best);
        self.norms.extend(other.norms);
        for (list, other) in self.lists.iter_mut().zip(other.lists) {
            if let (Some(list), Some(other)) = (list, other) {
                list.merge(other);
            }
        }
        self
    }
}

/// One thread's state: scratch for a tile and what it has accumulated.
struct TileWorker<'a> {
    head: &'a LmHeadRef<'a>,
    rows: &'a [Row<'a>],
    samples: usize,
    tile: usize,
    weights: Vec<f32>,
    scaled: Vec<f32>,
    bounds: GumbelBounds,
    normalize: bool,
    acc: Partial,
}

impl<'a> TileWorker<'a> {
    fn new(head: &'a LmHeadRef<'a>, rows: &'a [Row<'a>], samples: usize, tile: usize, normalize: bool) -> Self {
        let lists = rows.iter().map(|r| Some(r.plan.list_length).filter(|&n| n > 0).map(TopList::new)).collect();
        TileWorker {
            head,
            rows,
            samples,
            tile,
            weights: vec![0.0; tile * head.dim],
            scaled: vec![0.0; tile],
            bounds: GumbelBounds::new(),
            normalize,
            acc: Partial { best: vec![EMPTY; rows.len() * samples], norms: Vec::new(), lists },
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
        let rows = self.rows.iter().zip(self.acc.best.chunks_exact_mut(self.samples)).zip(&mut self.acc.lists);
        for ((row, slots), list) in rows {
            let scaled = &mut self.scaled[..len];
            row.scaled_logits(weights, first_token, scaled);
            if row.plan.samples_in_pass() {
                fold_tile(scaled, first_token, row.params, 0, slots, &self.bounds);
            }
            if let Some(list) = list {
                list.offer_tile(scaled, first_token);
            }
            if self.normalize {
                partials.push(LogSumExp::of(scaled.iter().copied()));
            }
        }
        if self.normalize {
            self.acc.norms.push((tile, partials));
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

    fn launch_with_outputs(
        &self,
        head: &LmHead,
        req: &Request<'_>,
        out: &mut [u64],
        outputs: RowOutputs<'_>,
    ) -> Result<()> {
        self.run(&host_head(NAME, head)?, req, out, Some(outputs))
    }

    fn features(&self) -> Features {
        Features::of(&Feature::ALL)
    }
}

fn avx_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    return std::arch::is_x86_feature_detected!("avx");
    #[cfg(not(target_arch = "x86_64"))]
    false
}
