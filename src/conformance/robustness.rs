//! Bad rows, bad input and unwritten outputs.

use flashsampling_core::candidate::{score_of, unpack};
use flashsampling_core::cpu::{CpuBackend, ReferenceBackend};
use flashsampling_core::tensor::OwnedTensor;
use flashsampling_core::testdata::TestRng;
use flashsampling_core::{
    derive_row_seed, Backend, DType, Error, HiddenRef, LmHeadRef, Request, Result, RowParams, RowStatus, Tensor,
};

use super::problem::{sample, Problem, Profile};
use super::Outcome;

pub fn bad_rows(backend: &dyn Backend) -> Result<Outcome> {
    let target = Profile::Gaussian(1.0).logits(300, &mut TestRng::new(0xBAD));
    let problem = Problem::new(&target, 5, 16, DType::F32, 0xBAD);
    let head = backend.load_lm_head(problem.head())?;
    let rows: Vec<RowParams> = [1.0, 1.0, 0.0, 0.7, 0.0]
        .iter()
        .enumerate()
        .map(|(b, &t)| RowParams::new(t, derive_row_seed(3, b as u64), 1))
        .collect();
    let mut h: Vec<f32> = (0..5 * 16).map(|i| problem.hidden.view().get(i)).collect();
    h[16 + 3] = f32::NAN; // row 1, sampled
    h[4 * 16 + 9] = f32::NAN; // row 4, greedy
    let out = sample(backend, &head, &OwnedTensor::F32(h), 16, &rows, 5)?;
    let good = [0usize, 2, 3];
    let alone = sample(backend, &head, &problem.hidden_rows(&good), 16, &good.map(|b| rows[b]), 5)?;
    for b in [1, 4] {
        if out.status[b] != RowStatus::NanLogits || out.row(b).iter().any(|&t| t != 0) {
            return Ok(Outcome::fail(format!("NaN row {b}: status {:?}, tokens {:?}", out.status[b], out.row(b))));
        }
    }
    for (i, &b) in good.iter().enumerate() {
        if out.status[b] != RowStatus::Ok || out.row(b) != alone.row(i) {
            return Ok(Outcome::fail(format!("row {b} was affected by its NaN neighbours")));
        }
    }
    let masked = Problem::new(&[f64::NEG_INFINITY; 100], 3, 8, DType::Bf16, 0x3A5C);
    let masked_head = backend.load_lm_head(masked.head())?;
    let masked_rows = [RowParams::new(1.0, 1, 0), RowParams::greedy(), RowParams::new(2.0, 2, 0)];
    let out = sample(backend, &masked_head, &masked.hidden, 8, &masked_rows, 3)?;
    if out.status.iter().any(|&s| s != RowStatus::AllMasked) || out.tokens.iter().any(|&t| t != 0) {
        return Ok(Outcome::fail(format!("all-masked rows: statuses {:?}, tokens {:?}", out.status, out.tokens)));
    }
    Ok(Outcome::pass(
        "NaN rows (sampled and greedy) → NanLogits, token 0; neighbours unchanged; all -inf rows → AllMasked",
    ))
}

pub fn bad_input(backend: &dyn Backend) -> Result<Outcome> {
    let target = Profile::Gaussian(1.0).logits(50, &mut TestRng::new(0xE77));
    let problem = Problem::new(&target, 3, 16, DType::Bf16, 0xE77);
    let head = backend.load_lm_head(problem.head())?;
    let rows = [RowParams::new(1.0, 1, 0), RowParams::greedy(), RowParams::new(0.5, 2, 0)];
    let hidden = problem.hidden();
    let narrow = OwnedTensor::from_f32(&[0.5; 3 * 8], DType::Bf16);
    let narrow = HiddenRef::new(narrow.view(), 8)?;
    let call = |rows: &[RowParams], hidden: HiddenRef<'_>, samples: u32| {
        backend.sample(&head, &Request::new(hidden, rows, samples)).map(|_| ())
    };
    let with_temperature = |t: f32| {
        let mut r = rows;
        r[2].temperature = t;
        call(&r, hidden, 1)
    };
    let other: Box<dyn Backend> = if backend.name() == CpuBackend::new().name() {
        Box::new(ReferenceBackend)
    } else {
        Box::new(CpuBackend::new())
    };
    let foreign = other.load_lm_head(problem.head())?;
    let w = [flashsampling_core::bf16::ONE; 10];
    let is_shape = |r: Result<()>| matches!(r, Err(Error::Shape(_)));
    let is_param = |r: Result<()>, row: Option<usize>| matches!(r, Err(Error::Param { row: r, .. }) if r == row);
    let checks: Vec<(&str, bool)> = vec![
        ("W length not a multiple of D", is_shape(LmHeadRef::new(Tensor::Bf16(&w), 3).map(|_| ()))),
        ("D = 0", is_shape(LmHeadRef::new(Tensor::Bf16(&w), 0).map(|_| ()))),
        (
            "shard beyond the vocabulary",
            is_shape(LmHeadRef::new(Tensor::Bf16(&w), 2).and_then(|h| h.shard(10, 12)).map(|_| ())),
        ),
        ("empty H", is_shape(HiddenRef::new(Tensor::Bf16(&[]), 16).map(|_| ()))),
        ("H with another D", is_shape(call(&rows, narrow, 1))),
        ("fewer row parameters than rows", is_shape(call(&rows[..2], hidden, 1))),
        ("0 samples", is_param(call(&rows, hidden, 0), None)),
        ("negative temperature", is_param(with_temperature(-1.0), Some(2))),
        ("NaN temperature", is_param(with_temperature(f32::NAN), Some(2))),
        ("infinite temperature", is_param(with_temperature(f32::INFINITY), Some(2))),
        ("temperature whose inverse overflows", is_param(with_temperature(1e-45), Some(2))),
        (
            "candidate buffer of the wrong length",
            is_shape(backend.sample_candidates(&head, &Request::new(hidden, &rows, 2), &mut [0u64; 5])),
        ),
        (
            "LM head of another backend",
            matches!(backend.sample(&foreign, &Request::new(hidden, &rows, 1)), Err(Error::ForeignLmHead { .. })),
        ),
    ];
    let failed: Vec<&str> = checks.iter().filter(|(_, ok)| !ok).map(|(name, _)| *name).collect();
    if failed.is_empty() {
        Ok(Outcome::pass(format!("{} bad inputs refused with typed errors", checks.len())))
    } else {
        Ok(Outcome::fail(format!("not refused as expected: {}", failed.join("; "))))
    }
}

pub fn every_output_written(backend: &dyn Backend) -> Result<Outcome> {
    let target = Profile::Gaussian(1.0).logits(777, &mut TestRng::new(0x90150));
    let problem = Problem::new(&target, 5, 24, DType::Bf16, 0x90150);
    let (offset, vocab) = (1000u32, 5000u32);
    let head = backend.load_lm_head(problem.head().shard(offset, vocab)?)?;
    let rows: Vec<RowParams> = [0.0, 1.0, 0.3, 2.0, 1.0]
        .iter()
        .enumerate()
        .map(|(b, &t)| RowParams::new(t, derive_row_seed(9, b as u64), 4))
        .collect();
    let req = Request::new(problem.hidden(), &rows, 3);
    // One poison above every real candidate (a kernel that only max-es into the buffer keeps it),
    // one below.
    for poison in [u64::MAX, 0x0000_0001_5A5A_5A5A] {
        let mut out = vec![poison; req.outputs()];
        backend.sample_candidates(&head, &req, &mut out)?;
        for (i, &c) in out.iter().enumerate() {
            let token = unpack(c).1;
            if c == poison || !score_of(c).is_finite() || !(offset..offset + 777).contains(&token) {
                return Ok(Outcome::fail(format!("output {i} of {}: {c:#018x} (poison {poison:#x})", out.len())));
            }
        }
    }
    Ok(Outcome::pass(format!(
        "{} candidates written, tokens inside the shard [{offset}, {})",
        req.outputs(),
        offset + 777
    )))
}
