//! Statistical checks: sampled frequencies against the exact softmax computed in f64.

use flashsampling_core::exact;
use flashsampling_core::stats::{chi_square, histogram};
use flashsampling_core::testdata::TestRng;
use flashsampling_core::{derive_row_seed, Backend, DType, Result, RowParams, RowStatus};

use super::problem::{sample, Problem, Profile};
use super::Outcome;

/// The sampled rows of a distribution case; a greedy row follows them.
pub const TEMPERATURES: [f32; 5] = [0.25, 0.5, 1.0, 2.0, 4.0];

/// Two logits closer than this (relative) may be ordered either way by f32 arithmetic.
pub(super) fn near(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-4 * (1.0 + a.abs().max(b.abs()))
}

pub fn distribution(
    backend: &dyn Backend,
    profile: Profile,
    vocab: usize,
    dim: usize,
    dtype: DType,
    samples: u32,
) -> Result<Outcome> {
    let seed = 0xD157_0000 ^ vocab as u64;
    let target = profile.logits(vocab, &mut TestRng::new(seed));
    let batch = TEMPERATURES.len() + 1;
    let problem = Problem::new(&target, batch, dim, dtype, seed);
    let head = backend.load_lm_head(problem.head())?;
    let rows: Vec<RowParams> = TEMPERATURES
        .iter()
        .enumerate()
        .map(|(b, &t)| RowParams::new(t, derive_row_seed(seed, b as u64), 7))
        .chain(std::iter::once(RowParams::greedy()))
        .collect();
    let out = sample(backend, &head, &problem.hidden, dim, &rows, samples)?;
    let mut p_values = Vec::new();
    let mut notes = Vec::new();
    for (b, row) in rows.iter().enumerate() {
        if out.status[b] != RowStatus::Ok {
            return Ok(Outcome::fail(format!("row {b}: status {:?}", out.status[b])));
        }
        let logits = problem.exact_logits(b);
        if row.is_greedy() {
            let top = exact::argmax(&logits);
            let wrong =
                out.row(b).iter().filter(|&&t| t as usize != top && !near(logits[top], logits[t as usize])).count();
            if wrong > 0 {
                return Ok(Outcome::fail(format!("greedy row: {wrong} samples are not the argmax {top}")));
            }
            continue;
        }
        let probs = exact::probabilities(&logits, f64::from(row.temperature));
        let counts = histogram(out.row(b).iter().map(|&t| t as usize), vocab);
        let r = chi_square(&counts, &probs);
        p_values.push(r.p_value);
        notes.push(format!("T={}: p={:.3} ({} bins)", row.temperature, r.p_value, r.bins));
    }
    Ok(Outcome::from_tests(&p_values, format!("{samples} samples/row; {}; greedy = argmax", notes.join(", "))))
}

pub fn tail(backend: &dyn Backend, probability: f64, samples_per_call: u32, calls: u32) -> Result<Outcome> {
    // H[b][0] lies in [1, 1.1): aim the rare logit so that p stays near `probability`.
    let target = [0.0, probability.ln() / 1.05];
    let batch = 8;
    let problem = Problem::new(&target, batch, 8, DType::F32, 0x7A11).with_repeated_row();
    let p_rare = exact::probabilities(&problem.exact_logits(0), 1.0)[1];
    let head = backend.load_lm_head(problem.head())?;
    let mut rare = 0u64;
    let mut total = 0u64;
    for call in 0..calls {
        let rows: Vec<RowParams> =
            (0..batch).map(|b| RowParams::new(1.0, derive_row_seed(0x7A11, b as u64), u64::from(call))).collect();
        let out = sample(backend, &head, &problem.hidden, problem.dim, &rows, samples_per_call)?;
        rare += out.tokens.iter().filter(|&&t| t == 1).count() as u64;
        total += out.tokens.len() as u64;
    }
    let expected = p_rare * total as f64;
    let r = chi_square(&[total - rare, rare], &[1.0 - p_rare, p_rare]);
    let detail = format!("p = {p_rare:.3e}: {rare} of {total} samples, expected {expected:.1}");
    if expected < 10.0 {
        return Ok(Outcome::fail(format!("too few samples for the tail test: {detail}")));
    }
    Ok(Outcome::from_tests(&[r.p_value], detail))
}

/// Joint frequencies of paired draws from two streams against the product of their marginals;
/// and rows with the same `(seed, offset)` reproduce each other exactly.
pub fn independence(backend: &dyn Backend, samples: u32) -> Result<Outcome> {
    const V: usize = 4;
    let mut rng = TestRng::new(0x1D);
    let target: Vec<f64> = (0..V).map(|_| 0.5 * rng.normal()).collect();
    let problem = Problem::new(&target, 4, 8, DType::F32, 0x1D).with_repeated_row();
    let probs = exact::probabilities(&problem.exact_logits(0), 1.0);
    let head = backend.load_lm_head(problem.head())?;
    let (a, b) = (derive_row_seed(1, 0), derive_row_seed(1, 1));
    let rows =
        [RowParams::new(1.0, a, 5), RowParams::new(1.0, b, 5), RowParams::new(1.0, a, 6), RowParams::new(1.0, a, 5)];
    let out = sample(backend, &head, &problem.hidden, problem.dim, &rows, samples)?;
    if out.row(0) != out.row(3) {
        return Ok(Outcome::fail("two rows with the same seed and offset drew different tokens"));
    }
    let joint_probs: Vec<f64> = (0..V * V).map(|k| probs[k / V] * probs[k % V]).collect();
    let joint = |pairs: &mut dyn Iterator<Item = (u32, u32)>| {
        chi_square(&histogram(pairs.map(|(x, y)| x as usize * V + y as usize), V * V), &joint_probs).p_value
    };
    let seeds = joint(&mut out.row(0).iter().copied().zip(out.row(1).iter().copied()));
    let offsets = joint(&mut out.row(0).iter().copied().zip(out.row(2).iter().copied()));
    let sample_index = joint(&mut out.row(0).chunks_exact(2).map(|p| (p[0], p[1])));
    Ok(Outcome::from_tests(&[seeds, offsets, sample_index], format!("p: seeds {seeds:.3}, offsets {offsets:.3}, sample indices {sample_index:.3}; same (seed, offset) reproduces")))
}
