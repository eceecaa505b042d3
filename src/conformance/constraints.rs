//! Per-row constraints (token bitmask, logit bias, penalties) applied before temperature.

use flashsampling_core::constraints::RowTransform;
use flashsampling_core::exact;
use flashsampling_core::stats::{chi_square, histogram};
use flashsampling_core::testdata::TestRng;
use flashsampling_core::{
    derive_row_seed, Backend, DType, Error, Feature, Penalties, Request, Result, RowConstraints, RowParams, RowStatus,
};

use super::problem::{Problem, Profile};
use super::statistical::near;
use super::Outcome;

const V: usize = 300;

pub fn constraints(backend: &dyn Backend, samples: u32) -> Result<Outcome> {
    let mut rng = TestRng::new(0xC0C0);
    let target = Profile::Gaussian(1.5).logits(V, &mut rng);
    let problem = Problem::new(&target, 5, 16, DType::Bf16, 0xC0C0);
    let head = backend.load_lm_head(problem.head())?;
    let mask: Vec<u32> = (0..V.div_ceil(32)).map(|_| rng.next_u64() as u32 | 1).collect();
    let none: Vec<u32> = vec![0; V.div_ceil(32)];
    let bias = [(3, 4.0), (17, -6.0), (299, 2.5), (150, 1.0)];
    let counts: Vec<(u32, u32)> = (0..40).map(|i| (i * 7 % V as u32, 1 + i % 3)).collect();
    let penalties = Penalties { counts: &counts, repetition: 1.3, presence: 0.5, frequency: 0.2 };
    let constraints = [
        RowConstraints { allowed: Some(&mask), ..Default::default() },
        RowConstraints { bias: &bias, ..Default::default() },
        RowConstraints { allowed: Some(&mask), bias: &bias, penalties },
        RowConstraints { allowed: Some(&mask), penalties, ..Default::default() },
        RowConstraints { allowed: Some(&none), ..Default::default() },
    ];
    let rows: Vec<RowParams> = [1.0, 0.7, 1.3, 0.0, 1.0]
        .iter()
        .enumerate()
        .map(|(b, &t)| RowParams::new(t, derive_row_seed(0xC0C0, b as u64), 2))
        .collect();
    let req = Request::new(problem.hidden(), &rows, samples).with_constraints(&constraints);
    let out = match backend.sample(&head, &req) {
        Err(Error::Unsupported { .. }) if !backend.features().contains(Feature::Constraints) => {
            return Ok(Outcome::pass("not supported by this backend: refused with Unsupported, as it must be"));
        }
        other => other?,
    };
    let mut p_values = Vec::new();
    for (b, (row, c)) in rows.iter().zip(&constraints).enumerate().take(4) {
        let mut logits: Vec<f32> = problem.exact_logits(b).into_iter().map(|l| l as f32).collect();
        RowTransform::new(c, V as u32, b)?.apply(0, &mut logits);
        let logits: Vec<f64> = logits.into_iter().map(f64::from).collect();
        if out.status[b] != RowStatus::Ok {
            return Ok(Outcome::fail(format!("row {b}: status {:?}", out.status[b])));
        }
        if let Some(&t) = out.row(b).iter().find(|&&t| logits[t as usize] == f64::NEG_INFINITY) {
            return Ok(Outcome::fail(format!("row {b} drew the masked token {t}")));
        }
        if row.is_greedy() {
            let top = exact::argmax(&logits);
            if out.row(b).iter().any(|&t| t as usize != top && !near(logits[top], logits[t as usize])) {
                return Ok(Outcome::fail(format!("greedy row {b} is not the argmax {top} of the constrained logits")));
            }
            continue;
        }
        let probs = exact::probabilities(&logits, f64::from(row.temperature));
        p_values.push(chi_square(&histogram(out.row(b).iter().map(|&t| t as usize), V), &probs).p_value);
    }
    if out.status[4] != RowStatus::AllMasked {
        return Ok(Outcome::fail(format!("a row with every token masked has status {:?}", out.status[4])));
    }
    let refused = bad_constraints_refused(backend, &problem, &head)?;
    if !refused.is_empty() {
        return Ok(Outcome::fail(format!("not refused: {}", refused.join("; "))));
    }
    Ok(Outcome::from_tests(
        &p_values,
        format!(
            "mask, bias, penalties: {samples} samples/row; p {:?}; greedy = constrained argmax; all-masked row flagged; 5 bad constraints refused",
            p_values.iter().map(|p| format!("{p:.3}")).collect::<Vec<_>>()
        ),
    ))
}

fn bad_constraints_refused(
    backend: &dyn Backend,
    problem: &Problem,
    head: &flashsampling_core::LmHead,
) -> Result<Vec<&'static str>> {
    let rows = [RowParams::new(1.0, 1, 0); 5];
    let short_mask = [u32::MAX; 3];
    let counts = [(5u32, 1u32)];
    let bad: [(&str, RowConstraints<'_>); 4] = [
        ("mask of the wrong length", RowConstraints { allowed: Some(&short_mask), ..Default::default() }),
        ("bias on a token outside the vocabulary", RowConstraints { bias: &[(V as u32, 1.0)], ..Default::default() }),
        ("NaN bias", RowConstraints { bias: &[(2, f32::NAN)], ..Default::default() }),
        (
            "repetition penalty 0",
            RowConstraints {
                penalties: Penalties { counts: &counts, repetition: 0.0, ..Default::default() },
                ..Default::default()
            },
        ),
    ];
    let mut failed = Vec::new();
    for (name, c) in bad {
        let all = [c; 5];
        let r = backend.sample(head, &Request::new(problem.hidden(), &rows, 1).with_constraints(&all));
        if !matches!(r, Err(Error::Param { row: Some(0), .. })) {
            failed.push(name);
        }
    }
    let too_few = [RowConstraints::default(); 2];
    if !matches!(
        backend.sample(head, &Request::new(problem.hidden(), &rows, 1).with_constraints(&too_few)),
        Err(Error::Shape(_))
    ) {
        failed.push("fewer constraints than rows");
    }
    Ok(failed)
}
