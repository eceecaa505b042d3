//! Exact top-k / top-p / min-p truncation and top-N logprobs (DESIGN.md §3.6, §3.7): sampled
//! frequencies against the exact truncated softmax in f64, ties at the cut-off, rows whose ranked
//! list cannot certify the cut-off, and logprobs of the distribution actually sampled from.
//! Backends without these features must refuse them with `Unsupported`.

use flashsampling_core::stats::{chi_square, histogram};
use flashsampling_core::testdata::TestRng;
use flashsampling_core::truncation::MAX_TOP_K;
use flashsampling_core::{
    derive_row_seed, exact, Backend, DType, Error, Feature, LmHead, Request, Result, RowParams, RowStatus,
    SampleOutput, Truncation,
};

use super::problem::{Problem, Profile};
use super::Outcome;

/// Runs a request that uses `features`: the output, or the outcome of the case when the backend
/// does not offer them (refusing with `Unsupported` passes; anything else fails).
fn run(
    backend: &dyn Backend,
    head: &LmHead,
    req: &Request<'_>,
    features: &[Feature],
) -> Result<Result<SampleOutput, Outcome>> {
    let offered = features.iter().all(|&f| backend.features().contains(f));
    Ok(match backend.sample(head, req) {
        Ok(out) if offered => Ok(out),
        Err(Error::Unsupported { .. }) if !offered => {
            Err(Outcome::pass("not supported by this backend: refused with Unsupported, as it must be"))
        }
        Err(e) if offered => return Err(e),
        other => Err(Outcome::fail(format!("the backend does not offer {features:?} but answered {other:?}"))),
    })
}

fn rows(temperatures: &[f32], seed: u64) -> Vec<RowParams> {
    temperatures.iter().enumerate().map(|(b, &t)| RowParams::new(t, derive_row_seed(seed, b as u64), 4)).collect()
}

/// The exact distribution row `b` samples from (untempered for greedy rows, as logprobs are).
fn exact_truncated(problem: &Problem, b: usize, row: &RowParams, t: &Truncation) -> Vec<f64> {
    let temperature = if row.is_greedy() { 1.0 } else { f64::from(row.temperature) };
    exact::truncated_probabilities(&problem.exact_logits(b), temperature, t)
}

/// Chi-square of row `b`'s samples against `probs`, after checking its status.
fn fit(out: &SampleOutput, b: usize, probs: &[f64]) -> std::result::Result<f64, Outcome> {
    if out.status[b] != RowStatus::Ok {
        return Err(Outcome::fail(format!("row {b}: status {:?}", out.status[b])));
    }
    let r = chi_square(&histogram(out.row(b).iter().map(|&t| t as usize), probs.len()), probs);
    if r.impossible > 0 {
        return Err(Outcome::fail(format!("row {b}: {} samples of truncated-away tokens", r.impossible)));
    }
    Ok(r.p_value)
}

/// Largest distance of row `b`'s sampled-token logprobs from `ln probs`.
fn logprob_error(out: &SampleOutput, b: usize, probs: &[f64]) -> f64 {
    let logprobs = out.logprobs.as_deref().unwrap_or_default();
    let s = out.samples;
    out.row(b)
        .iter()
        .enumerate()
        .map(|(i, &t)| (f64::from(logprobs[b * s + i]) - probs[t as usize].ln()).abs())
        .fold(0.0, f64::max)
}

macro_rules! unwrap_or_return {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(outcome) => return Ok(outcome),
        }
    };
}

pub fn truncation(backend: &dyn Backend, samples: u32) -> Result<Outcome> {
    const V: usize = 2000;
    let target = Profile::Gaussian(1.5).logits(V, &mut TestRng::new(0x7C));
    let problem = Problem::new(&target, 8, 32, DType::Bf16, 0x7C);
    let head = backend.load_lm_head(problem.head())?;
    let rows = rows(&[1.0, 0.7, 1.5, 1.0, 1.2, 0.9, 0.0, 1.0], 0x7C);
    let truncations = [
        Truncation::top_k(50),
        Truncation::top_p(0.9),
        Truncation::min_p(0.1),
        Truncation::top_k(200).and_top_p(0.8),
        Truncation::top_k(100).and_top_p(0.95).and_min_p(0.02),
        Truncation::top_p(0.6).and_min_p(0.2),
        Truncation::top_k(5).and_top_p(0.5),
        Truncation::default(),
    ];
    let req = Request::new(problem.hidden(), &rows, samples).with_truncation(&truncations).with_logprobs();
    let out = unwrap_or_return!(run(backend, &head, &req, &[Feature::Truncation, Feature::Logprobs])?);
    let plain = backend.sample(&head, &Request::new(problem.hidden(), &rows, samples))?;
    // Candidates straight into a poisoned buffer, without logprobs: every slot written, same tokens.
    let mut candidates = vec![u64::MAX; req.outputs()];
    backend.sample_candidates(&head, &Request { logprobs: false, ..req }, &mut candidates)?;
    if SampleOutput::from_candidates(&candidates, samples as usize).tokens != out.tokens {
        return Ok(Outcome::fail("sample_candidates (poisoned buffer, no logprobs) disagrees with sample"));
    }
    let (mut p_values, mut notes, mut worst_lp, mut kept) = (Vec::new(), Vec::new(), 0.0f64, 0usize);
    for (b, (row, t)) in rows.iter().zip(&truncations).enumerate() {
        let probs = exact_truncated(&problem, b, row, t);
        worst_lp = worst_lp.max(logprob_error(&out, b, &probs));
        if row.is_greedy() {
            let top = exact::argmax(&problem.exact_logits(b)) as u32;
            if out.row(b).iter().any(|&t| t != top) {
                return Ok(Outcome::fail(format!("greedy row {b} is not the argmax {top}")));
            }
            continue;
        }
        let p = unwrap_or_return!(fit(&out, b, &probs));
        p_values.push(p);
        notes.push(format!("{} survivors p={p:.3}", probs.iter().filter(|&&q| q > 0.0).count()));
        for (&u, &c) in plain.row(b).iter().zip(out.row(b)) {
            if probs[u as usize] > 0.0 {
                if u != c {
                    return Ok(Outcome::fail(format!("row {b}: the untruncated token {u} survives, {c} was drawn")));
                }
                kept += 1;
            }
        }
    }
    if worst_lp > 1e-4 {
        return Ok(Outcome::fail(format!("logprobs of the truncated distribution off by {worst_lp:.2e}")));
    }
    let refused = bad_truncation_refused(backend, &problem, &head);
    if !refused.is_empty() {
        return Ok(Outcome::fail(format!("not refused: {}", refused.join("; "))));
    }
    Ok(Outcome::from_tests(
        &p_values,
        format!(
            "{samples} samples/row: {}; greedy = argmax; logprobs within {worst_lp:.1e}; {kept} surviving untruncated tokens drawn again; same tokens without logprobs, into a poisoned buffer; 9 bad requests refused",
            notes.join(", ")
        ),
    ))
}

/// Bad truncations and top-N requests, each with the error it must get.
fn bad_truncation_refused(backend: &dyn Backend, problem: &Problem, head: &LmHead) -> Vec<String> {
    let rows = [RowParams::new(1.0, 1, 0); 8];
    let hidden = problem.hidden();
    let bad_row = |t: Truncation| {
        let mut all = [Truncation::top_k(3); 8];
        all[2] = t;
        all
    };
    let cases = [
        ("top_k 0", bad_row(Truncation::top_k(0))),
        ("top_k 1025", bad_row(Truncation::top_k(1025))),
        ("top_p 0", bad_row(Truncation::top_p(0.0))),
        ("top_p 1.5", bad_row(Truncation::top_p(1.5))),
        ("top_p NaN", bad_row(Truncation::top_p(f32::NAN))),
        ("min_p -0.1", bad_row(Truncation::min_p(-0.1))),
        ("min_p NaN", bad_row(Truncation::min_p(f32::NAN))),
    ];
    let mut failed = Vec::new();
    for (name, t) in cases {
        let r = backend.sample(head, &Request::new(hidden, &rows, 1).with_truncation(&t));
        if !matches!(r, Err(Error::Param { row: Some(2), .. })) {
            failed.push(format!("{name}: {r:?}"));
        }
    }
    let short = [Truncation::top_k(3); 7];
    let r = backend.sample(head, &Request::new(hidden, &rows, 1).with_truncation(&short));
    if !matches!(r, Err(Error::Shape(_))) {
        failed.push(format!("7 truncations for 8 rows: {r:?}"));
    }
    let r = backend.sample(head, &Request::new(hidden, &rows, 1).with_top_logprobs(21));
    if !matches!(r, Err(Error::Param { row: None, .. })) {
        failed.push(format!("21 top logprobs: {r:?}"));
    }
    failed
}

/// Tied logits at the cut-off: four tokens share the largest logit (identical rows of `W`), so
/// top-k, top-p and min-p cut inside the tie, keeping the lowest ids.
pub fn ties(backend: &dyn Backend, samples: u32) -> Result<Outcome> {
    const V: usize = 300;
    const TIED: [usize; 4] = [7, 40, 150, 222];
    let mut rng = TestRng::new(0x71E);
    let mut target: Vec<f64> = (0..V).map(|_| 0.5 * rng.normal() - 1.0).collect();
    TIED.iter().for_each(|&t| target[t] = 2.0);
    let problem = Problem::new(&target, 5, 16, DType::F32, 0x71E).with_copied_tokens(TIED[0], &TIED[1..]);
    let head = backend.load_lm_head(problem.head())?;
    let rows = rows(&[1.0, 1.0, 1.0, 1.0, 0.0], 0x71E);
    // Renormalised probability of one tied token: top-p at 1.5 of it keeps exactly two.
    let tied_p = exact::probabilities(&problem.exact_logits(2), 1.0)[TIED[0]];
    let truncations = [
        Truncation::top_k(2),
        Truncation::top_k(6),
        Truncation::top_p((1.5 * tied_p) as f32),
        Truncation::min_p(1.0),
        Truncation::top_k(1),
    ];
    let expected: [&[usize]; 4] = [&TIED[..2], &TIED, &TIED[..2], &TIED];
    let req = Request::new(problem.hidden(), &rows, samples).with_truncation(&truncations);
    let out = unwrap_or_return!(run(backend, &head, &req, &[Feature::Truncation])?);
    let mut p_values = Vec::new();
    for (b, (row, t)) in rows.iter().zip(&truncations).enumerate() {
        let probs = exact_truncated(&problem, b, row, t);
        if row.is_greedy() {
            if out.row(b).iter().any(|&t| t as usize != TIED[0]) {
                return Ok(Outcome::fail(format!("greedy row: not the lowest tied token {}", TIED[0])));
            }
            continue;
        }
        let drawn: std::collections::BTreeSet<usize> = out.row(b).iter().map(|&t| t as usize).collect();
        let must: std::collections::BTreeSet<usize> = expected[b].iter().copied().collect();
        if !must.is_subset(&drawn) || (b != 1 && drawn != must) {
            return Ok(Outcome::fail(format!("row {b} ({t:?}): drew {drawn:?}, the tie must keep {must:?}")));
        }
        p_values.push(unwrap_or_return!(fit(&out, b, &probs)));
    }
    Ok(Outcome::from_tests(
        &p_values,
        format!("4 tied tokens; top-k 2 / top-p keep {:?}, min-p 1 keeps all four; {samples} samples/row", &TIED[..2]),
    ))
}

/// Nearly flat rows where 1024 ranked tokens hold too little mass for top-p and every one of them
/// is above the min-p threshold: the certificate fails and the row must be sampled exactly anyway.
pub fn uncertified(backend: &dyn Backend, samples: u32) -> Result<Outcome> {
    const V: usize = 3000;
    let target = Profile::Flat.logits(V, &mut TestRng::new(0xF1A7));
    let problem = Problem::new(&target, 4, 16, DType::F16, 0xF1A7);
    let head = backend.load_lm_head(problem.head())?;
    let rows = rows(&[1.0, 0.5, 1.0, 0.8], 0xF1A7);
    let truncations = [
        Truncation::top_p(0.9),
        Truncation::top_p(0.99),
        Truncation::min_p(0.3),
        Truncation::top_p(0.7).and_min_p(0.95),
    ];
    let req = Request::new(problem.hidden(), &rows, samples).with_truncation(&truncations).with_logprobs();
    let out = unwrap_or_return!(run(backend, &head, &req, &[Feature::Truncation, Feature::Logprobs])?);
    let (mut p_values, mut survivors, mut worst_lp) = (Vec::new(), Vec::new(), 0.0f64);
    for (b, (row, t)) in rows.iter().zip(&truncations).enumerate() {
        if !beyond_ranked_list(&problem, b, row, t) {
            return Ok(Outcome::fail(format!(
                "row {b}: a ranked list certifies {t:?}: the case no longer forces a fallback"
            )));
        }
        let probs = exact_truncated(&problem, b, row, t);
        let n = probs.iter().filter(|&&q| q > 0.0).count();
        worst_lp = worst_lp.max(logprob_error(&out, b, &probs));
        let p = unwrap_or_return!(fit(&out, b, &probs));
        p_values.push(p);
        survivors.push(format!("{n} survivors p={p:.3}"));
    }
    if worst_lp > 1e-4 {
        return Ok(Outcome::fail(format!("logprobs off by {worst_lp:.2e}")));
    }
    Ok(Outcome::from_tests(
        &p_values,
        format!(
            "{}, none certifiable by the {MAX_TOP_K} most likely tokens; {samples} samples/row; logprobs within {worst_lp:.1e}",
            survivors.join(", ")
        ),
    ))
}

/// Whether the `MAX_TOP_K` most likely tokens of row `b` cannot certify `t`'s cut-off (no top-k):
/// they hold less than `top_p` of the mass, or the next token is still above the min-p threshold.
fn beyond_ranked_list(problem: &Problem, b: usize, row: &RowParams, t: &Truncation) -> bool {
    let mut probs = exact::probabilities(&problem.exact_logits(b), f64::from(row.temperature));
    probs.sort_by(|a, c| c.total_cmp(a));
    let k = MAX_TOP_K as usize;
    t.top_k.is_none()
        && (t.top_p.is_some_and(|p| probs[..k].iter().sum::<f64>() < f64::from(p))
            || t.min_p.is_some_and(|m| probs[k] >= f64::from(m) * probs[0]))
}

/// Top-N logprobs against f64, of truncated and untruncated rows, with the row's log-normaliser.
pub fn top_logprobs(backend: &dyn Backend) -> Result<Outcome> {
    const V: usize = 1000;
    const N: usize = 20;
    let target = Profile::Gaussian(2.0).logits(V, &mut TestRng::new(0x709));
    let problem = Problem::new(&target, 5, 32, DType::Bf16, 0x709);
    let head = backend.load_lm_head(problem.head())?;
    let rows = rows(&[1.0, 0.6, 1.4, 0.0, 1.0], 0x709);
    let truncations = [
        Truncation::default(),
        Truncation::top_k(5),
        Truncation::top_p(0.8).and_min_p(0.05),
        Truncation::top_k(30),
        Truncation::min_p(0.2),
    ];
    let req = Request::new(problem.hidden(), &rows, 10).with_truncation(&truncations).with_top_logprobs(N as u32);
    let out = unwrap_or_return!(run(backend, &head, &req, &[Feature::Truncation, Feature::TopLogprobs])?);
    let (Some(top), Some(log_z)) = (&out.top_logprobs, &out.log_normalizer) else {
        return Ok(Outcome::fail("top logprobs were asked for and not returned"));
    };
    let (mut worst, mut worst_z) = (0.0f64, 0.0f64);
    for (b, (row, t)) in rows.iter().zip(&truncations).enumerate() {
        let probs = exact_truncated(&problem, b, row, t);
        let mut exact_sorted: Vec<f64> = probs.iter().filter(|&&q| q > 0.0).map(|q| q.ln()).collect();
        exact_sorted.sort_by(|a, c| c.total_cmp(a));
        exact_sorted.resize(N.max(exact_sorted.len()), f64::NEG_INFINITY);
        for (i, (token, lp)) in (0..N).map(|i| (top.tokens[b * N + i], top.logprobs[b * N + i])).enumerate() {
            let (lp, expected) = (f64::from(lp), exact_sorted[i]);
            if expected == f64::NEG_INFINITY {
                if lp != f64::NEG_INFINITY || token != 0 {
                    return Ok(Outcome::fail(format!("row {b} entry {i}: ({token}, {lp}) instead of padding")));
                }
                continue;
            }
            worst = worst.max((lp - expected).abs()).max((lp - probs[token as usize].ln()).abs());
        }
        let y: Vec<f64> = problem.exact_logits(b).iter().map(|l| l * f64::from(row.inv_temperature())).collect();
        let exact_z = y.iter().zip(&probs).filter(|(_, &q)| q > 0.0).map(|(v, _)| v.exp()).sum::<f64>().ln();
        worst_z = worst_z.max((f64::from(log_z[b]) - exact_z).abs() / exact_z.abs().max(1.0));
    }
    if worst > 1e-4 || worst_z > 1e-5 {
        return Ok(Outcome::fail(format!("top logprobs off by {worst:.2e}, logZ by {worst_z:.2e} (relative)")));
    }
    Ok(Outcome::pass(format!(
        "top-{N} within {worst:.1e} of f64 (truncated rows padded with -inf), logZ of the survivors within {worst_z:.1e}"
    )))
}
