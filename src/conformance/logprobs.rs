//! Logprobs and the log-normaliser against exact f64 values.

use flashsampling_core::constraints::RowTransform;
use flashsampling_core::testdata::TestRng;
use flashsampling_core::{derive_row_seed, Backend, DType, Error, Request, Result, RowConstraints, RowParams};

use super::problem::{sample, Problem, Profile};
use super::Outcome;

const V: usize = 1000;

pub fn logprobs(backend: &dyn Backend) -> Result<Outcome> {
    let mut rng = TestRng::new(0x10C);
    let target = Profile::Gaussian(2.0).logits(V, &mut rng);
    let problem = Problem::new(&target, 4, 32, DType::Bf16, 0x10C);
    let head = backend.load_lm_head(problem.head())?;
    let mask: Vec<u32> = (0..V.div_ceil(32)).map(|_| rng.next_u64() as u32 | 1).collect();
    let constraints = [
        RowConstraints::default(),
        RowConstraints { allowed: Some(&mask), ..Default::default() },
        RowConstraints { bias: &[(7, 3.0)], ..Default::default() },
        RowConstraints { allowed: Some(&mask), ..Default::default() },
    ];
    let rows: Vec<RowParams> = [0.5, 1.0, 2.0, 0.0]
        .iter()
        .enumerate()
        .map(|(b, &t)| RowParams::new(t, derive_row_seed(0x10C, b as u64), 9))
        .collect();
    let samples = 50;
    let req = Request::new(problem.hidden(), &rows, samples).with_constraints(&constraints).with_logprobs();
    let out = match backend.sample(&head, &req) {
        Err(Error::Unsupported { .. }) => {
            return Ok(Outcome::pass("not supported by this backend: refused with Unsupported"))
        }
        other => other?,
    };
    let plain = sample(backend, &head, &problem.hidden, problem.dim, &rows, samples);
    let (Some(logprobs), Some(log_z)) = (&out.logprobs, &out.log_normalizer) else {
        return Ok(Outcome::fail("logprobs were asked for and not returned"));
    };
    let (mut worst_z, mut worst_lp) = (0.0f64, 0.0f64);
    for (b, row) in rows.iter().enumerate() {
        let mut logits: Vec<f32> = problem.exact_logits(b).into_iter().map(|l| l as f32).collect();
        RowTransform::new(&constraints[b], V as u32, b)?.apply(0, &mut logits);
        let y: Vec<f64> = logits.iter().map(|&l| f64::from(l) * f64::from(row.inv_temperature())).collect();
        let max = y.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let exact_z = max + y.iter().map(|v| (v - max).exp()).sum::<f64>().ln();
        worst_z = worst_z.max((f64::from(log_z[b]) - exact_z).abs() / exact_z.abs().max(1.0));
        for (s, &t) in out.row(b).iter().enumerate() {
            let exact = y[t as usize] - exact_z;
            worst_lp = worst_lp.max((f64::from(logprobs[b * samples as usize + s]) - exact).abs());
        }
    }
    if worst_z > 1e-5 || worst_lp > 1e-4 {
        return Ok(Outcome::fail(format!(
            "log-normaliser off by {worst_z:.2e} (relative), logprobs by {worst_lp:.2e}"
        )));
    }
    let unconstrained = backend.sample(&head, &Request::new(problem.hidden(), &rows, samples).with_logprobs())?;
    if plain.is_ok_and(|p| p.tokens != unconstrained.tokens) {
        return Ok(Outcome::fail("asking for logprobs changed the sampled tokens"));
    }
    Ok(Outcome::pass(format!(
        "logZ within {worst_z:.1e} (relative), logprobs within {worst_lp:.1e} of f64; greedy rows untempered; tokens unchanged by asking"
    )))
}
