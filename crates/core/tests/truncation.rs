//! Truncation and top-N logprobs on the CPU backends, path by path: the certified ranked lists,
//! the materialised fallback and the complete lists of the small-vocabulary layout give the same
//! tokens; a truncated row draws the untruncated token whenever it survives.

use flashsampling_core::cpu::{CpuBackend, ReferenceBackend};
use flashsampling_core::tensor::OwnedTensor;
use flashsampling_core::testdata::normal_tensor;
use flashsampling_core::{
    derive_row_seed, Backend, DType, Error, HiddenRef, LmHeadRef, Request, RowParams, SampleOutput, Truncation,
};

const V: usize = 3000;
const D: usize = 24;

/// Row 0..4 peaked enough that 1024 tokens certify every cut-off; row 5..7 nearly flat (the
/// hidden state is scaled down), so that top-p 0.9 and min-p 0.5 cannot be certified.
fn problem() -> (OwnedTensor, OwnedTensor, Vec<RowParams>) {
    let w = normal_tensor(DType::F32, V * D, 0x7A11, 1.0);
    let h = normal_tensor(DType::F32, 8 * D, 0x4EAD, 1.0);
    let OwnedTensor::F32(mut h) = h else { unreachable!() };
    h[5 * D..].iter_mut().for_each(|x| *x *= 0.01);
    let rows = [0.8f32, 1.0, 1.3, 0.0, 0.6, 1.0, 1.0, 0.0]
        .iter()
        .enumerate()
        .map(|(b, &t)| RowParams::new(t, derive_row_seed(0x7A11, b as u64), 3))
        .collect();
    (w, OwnedTensor::F32(h), rows)
}

fn truncations() -> Vec<Truncation> {
    vec![
        Truncation::top_k(40),
        Truncation::top_p(0.8),
        Truncation::min_p(0.05),
        Truncation::top_k(200).and_top_p(0.9).and_min_p(0.01),
        Truncation::top_p(0.7),
        Truncation::top_p(0.9),
        Truncation::min_p(0.5),
        Truncation::top_p(0.95),
    ]
}

fn run(backend: &dyn Backend, truncation: Option<&[Truncation]>, top_n: u32) -> SampleOutput {
    let (w, h, rows) = problem();
    let head = backend.load_lm_head(LmHeadRef::new(w.view(), D).unwrap()).unwrap();
    let mut req = Request::new(HiddenRef::new(h.view(), D).unwrap(), &rows, 300);
    if let Some(t) = truncation {
        req = req.with_truncation(t);
    }
    if top_n > 0 {
        req = req.with_top_logprobs(top_n);
    }
    backend.sample(&head, &req).unwrap()
}

fn close(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y || (x - y).abs() <= 1e-5 * (1.0 + x.abs()))
}

#[test]
fn certified_lists_fallback_and_complete_lists_agree() {
    let t = truncations();
    let tiled = CpuBackend::with_vocab_tile(16).unwrap();
    let out = run(&tiled, Some(&t), 20);
    // Rows 5 and 6 cannot be certified; row 7 is greedy, so only its logprobs need the cut.
    assert_eq!(tiled.fallback_rows(), 3, "the flat rows, and only they, fall back");
    let whole = CpuBackend::with_vocab_tile(V).unwrap();
    let complete = run(&whole, Some(&t), 20);
    assert_eq!(whole.fallback_rows(), 0, "one tile: every list is complete");
    assert_eq!(out.tokens, complete.tokens);
    let (a, b) = (out.top_logprobs.as_ref().unwrap(), complete.top_logprobs.as_ref().unwrap());
    assert_eq!(a.tokens, b.tokens);
    assert!(close(&a.logprobs, &b.logprobs));
    assert!(close(out.logprobs.as_ref().unwrap(), complete.logprobs.as_ref().unwrap()));
    assert!(close(out.log_normalizer.as_ref().unwrap(), complete.log_normalizer.as_ref().unwrap()));
    let reference = run(&ReferenceBackend, Some(&t), 20);
    let same = out.tokens.iter().zip(&reference.tokens).filter(|(a, b)| a == b).count();
    assert!(same as f64 >= 0.99 * out.tokens.len() as f64, "{same} of {} tokens as the reference", out.tokens.len());
}

#[test]
fn truncated_rows_draw_the_untruncated_token_when_it_survives() {
    let t: Vec<Truncation> = (0..8).map(|b| Truncation::top_k(5 + 2 * b)).collect();
    let backend = CpuBackend::with_vocab_tile(64).unwrap();
    let plain = run(&backend, None, 0);
    let cut = run(&backend, Some(&t), 20);
    let top = cut.top_logprobs.as_ref().unwrap();
    let (mut kept, mut moved) = (0, 0);
    for b in 0..8 {
        let survivors: Vec<u32> = top.row(b).map(|(token, _)| token).collect();
        assert_eq!(survivors.len(), 5 + 2 * b, "row {b}: top-k keeps k tokens");
        for (&u, &c) in plain.row(b).iter().zip(cut.row(b)) {
            assert!(survivors.contains(&c), "row {b}: drew {c}, not a survivor");
            if survivors.contains(&u) {
                assert_eq!(u, c, "row {b}: the untruncated token survived but was not drawn");
                kept += 1;
            } else {
                moved += 1;
            }
        }
    }
    assert!(kept > 100 && moved > 100, "the test must see both cases: {kept} kept, {moved} moved");
}

#[test]
fn top_logprobs_without_truncation_are_the_most_likely_tokens() {
    let backend = CpuBackend::new();
    let out = run(&backend, None, 7);
    let plain = run(&backend, None, 0);
    assert_eq!(out.tokens, plain.tokens, "asking for top logprobs changes no token");
    let top = out.top_logprobs.as_ref().unwrap();
    let log_z = out.log_normalizer.as_ref().unwrap();
    for (b, z) in log_z.iter().enumerate() {
        let row: Vec<(u32, f32)> = top.row(b).collect();
        assert_eq!(row.len(), 7);
        assert!(row.windows(2).all(|p| p[0].1 >= p[1].1), "row {b}: not in descending order");
        let mass: f64 = row.iter().map(|&(_, lp)| f64::from(lp).exp()).sum();
        assert!(mass > 0.0 && mass < 1.0 + 1e-6, "row {b}: mass {mass}");
        assert!(z.is_finite());
    }
}

#[test]
fn refusals() {
    let (w, h, rows) = problem();
    let backend = CpuBackend::new();
    let head = backend.load_lm_head(LmHeadRef::new(w.view(), D).unwrap()).unwrap();
    let hidden = HiddenRef::new(h.view(), D).unwrap();
    let too_few = [Truncation::top_k(3); 7];
    assert!(matches!(
        backend.sample(&head, &Request::new(hidden, &rows, 1).with_truncation(&too_few)),
        Err(Error::Shape(_))
    ));
    let bad = [
        Truncation::top_k(3),
        Truncation::top_p(0.0),
        Truncation::default(),
        Truncation::default(),
        Truncation::default(),
        Truncation::default(),
        Truncation::default(),
        Truncation::default(),
    ];
    assert!(matches!(
        backend.sample(&head, &Request::new(hidden, &rows, 1).with_truncation(&bad)),
        Err(Error::Param { row: Some(1), .. })
    ));
    assert!(matches!(
        backend.sample(&head, &Request::new(hidden, &rows, 1).with_top_logprobs(21)),
        Err(Error::Param { row: None, .. })
    ));
    let mut out = vec![0u64; 8];
    assert!(matches!(
        backend.sample_candidates(&head, &Request::new(hidden, &rows, 1).with_top_logprobs(2), &mut out),
        Err(Error::Param { .. })
    ));
    let shard = LmHeadRef::new(w.view(), D).unwrap().slice_rows(100, 500).unwrap();
    let shard = backend.load_lm_head(shard).unwrap();
    let t = [Truncation::top_k(3); 8];
    assert!(matches!(
        backend.sample(&shard, &Request::new(hidden, &rows, 1).with_truncation(&t)),
        Err(Error::Param { row: None, .. })
    ));
}

#[test]
fn bad_rows_keep_their_status_under_truncation() {
    let (w, h, rows) = problem();
    let OwnedTensor::F32(mut h) = h else { unreachable!() };
    h[2 * D + 5] = f32::NAN;
    let none = vec![0u32; V.div_ceil(32)];
    let mut constraints = vec![flashsampling_core::RowConstraints::default(); 8];
    constraints[4].allowed = Some(&none);
    let t = [Truncation::top_k(10).and_top_p(0.9); 8];
    for backend in [&CpuBackend::new() as &dyn Backend, &CpuBackend::with_vocab_tile(V).unwrap(), &ReferenceBackend] {
        let head = backend.load_lm_head(LmHeadRef::new(w.view(), D).unwrap()).unwrap();
        let req = Request::new(HiddenRef::new(flashsampling_core::Tensor::F32(&h), D).unwrap(), &rows, 4)
            .with_constraints(&constraints)
            .with_truncation(&t)
            .with_top_logprobs(3);
        let out = backend.sample(&head, &req).unwrap();
        use flashsampling_core::RowStatus::*;
        assert_eq!(out.status, [Ok, Ok, NanLogits, Ok, AllMasked, Ok, Ok, Ok], "{}", backend.name());
        let top = out.top_logprobs.as_ref().unwrap();
        assert!(top.logprobs[2 * 3..3 * 3].iter().all(|lp| lp.is_nan()));
        assert!(top.logprobs[4 * 3..5 * 3].iter().all(|lp| lp.is_nan()));
        assert!(out.row(2).iter().chain(out.row(4)).all(|&t| t == 0));
        assert!(top.row(0).count() >= 1 && top.row(0).all(|(_, lp)| lp.is_finite()));
    }
}

/// `cut_scaled_row`, which widens its list until the cut-off is certified, cuts every row as the
/// complete ranking does: peaked and flat rows, every criterion, with top-N.
#[test]
fn scaled_rows_cut_as_the_complete_ranking_does() {
    use flashsampling_core::logsumexp::LogSumExp;
    use flashsampling_core::ranked::Ranked;
    use flashsampling_core::survivors::{cut_row, cut_scaled_row, RowPlan};
    use flashsampling_core::testdata::TestRng;
    let mut rng = TestRng::new(0xC07);
    for spread in [4.0, 0.5, 0.01] {
        let scaled: Vec<f32> = (0..20_000)
            .map(|_| if rng.uniform() < 0.1 { f32::NEG_INFINITY } else { (rng.normal() * spread) as f32 })
            .collect();
        let total = LogSumExp::of(scaled.iter().copied());
        let whole = Ranked::all(&scaled, 0);
        for t in truncations().iter().chain(&[Truncation::top_k(1024).and_min_p(0.9), Truncation::top_p(0.999)]) {
            let plan = RowPlan { truncation: Some(t), top_n: 5, list_length: Truncation::list_length(Some(t), 5) };
            let (mut top, mut expected_top) = ([0; 5], [0; 5]);
            let survivors = cut_scaled_row(&plan, &scaled, total, &mut top);
            let expected = cut_row(&plan, &whole, total, &mut expected_top).unwrap();
            assert_eq!(survivors, expected, "spread {spread}, {t:?}");
            assert_eq!(top, expected_top, "spread {spread}, {t:?}");
        }
    }
}
