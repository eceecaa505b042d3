//! Pathwise checks: the same (seed, offset, sample) gives the same token whatever the batch, the
//! vocabulary split or the backend, except where two perturbed scores are within rounding.

use flashsampling_core::candidate::{merge_into, EMPTY};
use flashsampling_core::cpu::{CpuBackend, ReferenceBackend};
use flashsampling_core::noise::gumbel;
use flashsampling_core::testdata::TestRng;
use flashsampling_core::{derive_row_seed, Backend, DType, HiddenRef, Request, Result, RowParams, SampleOutput};

use super::problem::{sample, Problem, Profile};
use super::Outcome;

fn mixed_rows(batch: usize, seed: u64) -> Vec<RowParams> {
    const TEMPS: [f32; 6] = [0.0, 0.25, 0.7, 1.0, 1.5, 4.0];
    let mut rng = TestRng::new(seed);
    (0..batch)
        .map(|b| RowParams::new(TEMPS[b % TEMPS.len()], derive_row_seed(seed, b as u64), rng.next_u64() % 1000))
        .collect()
}

pub fn batch_invariance(backend: &dyn Backend) -> Result<Outcome> {
    let (batch, samples) = (16, 8);
    let target = Profile::Gaussian(1.5).logits(1000, &mut TestRng::new(0xBA7C));
    let problem = Problem::new(&target, batch, 64, DType::Bf16, 0xBA7C);
    let head = backend.load_lm_head(problem.head())?;
    let rows = mixed_rows(batch, 0xBA7C);
    let full = sample(backend, &head, &problem.hidden, problem.dim, &rows, samples)?;
    for b in 0..batch {
        let alone = sample(backend, &head, &problem.hidden_rows(&[b]), problem.dim, &rows[b..=b], samples)?;
        if alone.row(0) != full.row(b) {
            return Ok(Outcome::fail(format!("row {b} alone drew {:?}, in the batch {:?}", alone.row(0), full.row(b))));
        }
    }
    let order: Vec<usize> = (0..batch).rev().collect();
    let reversed_rows: Vec<RowParams> = order.iter().map(|&b| rows[b]).collect();
    let reversed = sample(backend, &head, &problem.hidden_rows(&order), problem.dim, &reversed_rows, samples)?;
    for (pos, &b) in order.iter().enumerate() {
        if reversed.row(pos) != full.row(b) {
            return Ok(Outcome::fail(format!("row {b} at position {pos} drew other tokens")));
        }
    }
    Ok(Outcome::pass(format!("{batch} rows × {samples} samples: identical alone, in the batch and in reverse order")))
}

pub fn shard_invariance(backend: &dyn Backend) -> Result<Outcome> {
    let (batch, samples) = (8, 6);
    let target = Profile::Gaussian(2.0).logits(5003, &mut TestRng::new(0x5AAD));
    let problem = Problem::new(&target, batch, 32, DType::F16, 0x5AAD);
    let rows = mixed_rows(batch, 0x5AAD);
    let whole = sample(backend, &backend.load_lm_head(problem.head())?, &problem.hidden, problem.dim, &rows, samples)?;
    let req = Request::new(problem.hidden(), &rows, samples);
    let mut merged = vec![EMPTY; req.outputs()];
    for (start, len) in [(0, 1700), (1700, 1), (1701, 3302)] {
        let shard = backend.load_lm_head(problem.head().slice_rows(start, len)?)?;
        let mut part = vec![EMPTY; req.outputs()];
        backend.sample_candidates(&shard, &req, &mut part)?;
        merge_into(&mut merged, &part);
    }
    let sharded = SampleOutput::from_candidates(&merged, samples as usize);
    if sharded != whole {
        return Ok(Outcome::fail("merged shard candidates differ from the whole head"));
    }
    Ok(Outcome::pass("shards [0,1700) [1700,1701) [1701,5003) merged = whole head, every token"))
}

/// Token-for-token agreement with another backend (the reference; the fast CPU backend when the
/// reference is the one under test). Differences must be near-ties, which are counted.
pub fn reference_agreement(backend: &dyn Backend, batch: usize) -> Result<Outcome> {
    let other: Box<dyn Backend> = if backend.name() == ReferenceBackend.name() {
        Box::new(CpuBackend::new())
    } else {
        Box::new(ReferenceBackend)
    };
    let target = Profile::Gaussian(2.0).logits(517, &mut TestRng::new(0xA9EE));
    let problem = Problem::new(&target, batch, 72, DType::Bf16, 0xA9EE);
    let rows = mixed_rows(batch, 0xA9EE);
    let hidden = HiddenRef::new(problem.hidden.view(), problem.dim)?;
    let req = Request::new(hidden, &rows, 1);
    let ours = backend.sample(&backend.load_lm_head(problem.head())?, &req)?;
    let theirs = other.sample(&other.load_lm_head(problem.head())?, &req)?;
    let (w, h, dim) = (problem.weights.view(), problem.hidden.view(), problem.dim);
    let logit = |b: usize, t: u32| -> f64 {
        (0..dim).map(|k| f64::from(w.get(t as usize * dim + k)) * f64::from(h.get(b * dim + k))).sum()
    };
    let score = |b: usize, t: u32| -> f64 {
        let r = &rows[b];
        if r.is_greedy() {
            logit(b, t)
        } else {
            logit(b, t) * f64::from(r.inv_temperature()) + f64::from(gumbel(r.seed, r.offset, 0, t))
        }
    };
    let (mut near_ties, mut max_gap, mut wrong) = (0, 0.0f64, Vec::new());
    for b in 0..batch {
        let (a, r) = (ours.tokens[b], theirs.tokens[b]);
        if a == r {
            continue;
        }
        let gap = (score(b, a) - score(b, r)).abs();
        if gap <= 1e-4 * (1.0 + score(b, r).abs()) {
            near_ties += 1;
            max_gap = max_gap.max(gap);
        } else {
            wrong.push(format!("row {b}: {a} vs {r} (score gap {gap:.2e})"));
        }
    }
    if !wrong.is_empty() {
        return Ok(Outcome::fail(format!("{} rows differ beyond rounding, first: {}", wrong.len(), wrong[0])));
    }
    Ok(Outcome::pass(format!(
        "{} of {batch} rows identical with {}; {near_ties} near-ties (largest score gap {max_gap:.1e})",
        batch - near_ties,
        other.name()
    )))
}
