//! Constraints and logprobs on the wgpu backend, on the paths the conformance cases leave out:
//! constrained rows next to plain ones in batches of several batch tiles, a head split over
//! several bindings and a call over several launches, vocabulary shards (masks and lists indexed
//! by global token) combined by the caller, the log-normaliser over a vocabulary of many
//! workgroups against f64, top-N logprobs, and truncated rows next to untruncated ones in calls
//! split into groups of rows.

use flashsampling_core::candidate::{merge_into, EMPTY};
use flashsampling_core::cpu::CpuBackend;
use flashsampling_core::logsumexp::LogSumExp;
use flashsampling_core::testdata::{normal_tensor, TestRng};
use flashsampling_core::{
    Backend, DType, Error, HiddenRef, LmHeadRef, Penalties, Request, RowConstraints, RowParams, SampleOutput,
    Truncation,
};
use flashsampling_wgpu::Caps;

mod common;
use common::open;

/// Owned constraints of a batch: row `b` is plain when `b % 5 == 0`, then masked, biased and
/// penalised, all three, masked again (a greedy row in [`temperatures`]). Row 1 allows only
/// [`FEW_ALLOWED`] tokens.
struct BatchConstraints {
    masks: Vec<Vec<u32>>,
    bias: Vec<(u32, f32)>,
    counts: Vec<(u32, u32)>,
}

impl BatchConstraints {
    /// Random constraints over a global vocabulary of `vocab_size` tokens: masks of about half the
    /// tokens, and bias and penalty lists over 100 increasing tokens, some named by both lists.
    fn new(batch: usize, vocab_size: u32, rng: &mut TestRng) -> Self {
        let words = vocab_size.div_ceil(32) as usize;
        let mut masks: Vec<Vec<u32>> =
            (0..batch).map(|_| (0..words).map(|_| rng.next_u64() as u32).collect()).collect();
        masks[1].fill(0);
        for t in (0..FEW_ALLOWED).map(|i| (i * 397 + 11) % vocab_size) {
            masks[1][(t / 32) as usize] |= 1 << (t % 32);
        }
        let (mut bias, mut counts) = (Vec::new(), Vec::new());
        let mut token = 0;
        for _ in 0..100 {
            let r = rng.next_u64();
            if r & 1 != 0 {
                bias.push((token, (rng.normal() * 3.0) as f32));
            }
            if r & 2 != 0 {
                counts.push((token, 1 + (r >> 2) as u32 % 4));
            }
            token += 1 + (r >> 8) as u32 % (vocab_size / 100);
        }
        BatchConstraints { masks, bias, counts }
    }

    fn rows(&self) -> Vec<RowConstraints<'_>> {
        let penalties = Penalties { counts: &self.counts, repetition: 1.2, presence: 0.4, frequency: 0.3 };
        (0..self.masks.len())
            .map(|b| {
                let allowed = Some(&self.masks[b][..]);
                match b % 5 {
                    0 => RowConstraints::default(),
                    2 => RowConstraints { bias: &self.bias, penalties, ..Default::default() },
                    3 => RowConstraints { allowed, bias: &self.bias, penalties },
                    _ => RowConstraints { allowed, ..Default::default() },
                }
            })
            .collect()
    }
}

/// Tokens row 1 of [`BatchConstraints`] allows: fewer than the longest top-N list.
const FEW_ALLOWED: u32 = 7;

fn temperatures(batch: usize) -> Vec<RowParams> {
    (0..batch)
        .map(|b| match b % 5 {
            4 => RowParams::greedy(),
            k => RowParams::new(0.4 + 0.3 * k as f32, 11 + b as u64, 5),
        })
        .collect()
}

fn assert_close(what: &str, got: &[f32], expected: &[f32], relative: f32) {
    for (i, (&g, &e)) in got.iter().zip(expected).enumerate() {
        let bound = relative * e.abs().max(1.0);
        assert!(g == e || (g - e).abs() <= bound || (g.is_nan() && e.is_nan()), "{what}[{i}]: {g} against {e}");
    }
}

#[test]
fn constrained_rows_next_to_plain_rows_match_cpu() {
    // A low binding cap splits the head over several bindings and the call over several launches.
    let Some(wgpu) = open(Caps { binding_bytes: Some(40_000) }) else { return };
    let (vocab, dim, batch, samples) = (3001, 40, 19, 40);
    let (offset, vocab_size) = (500, 4001);
    let mut rng = TestRng::new(0xFEA7);
    let constraints = BatchConstraints::new(batch, vocab_size, &mut rng);
    let constraints = constraints.rows();
    let rows = temperatures(batch);
    for dtype in [DType::F32, DType::Bf16, DType::F16] {
        let weights = normal_tensor(dtype, vocab * dim, 0xFEA7, 0.15);
        let hidden = normal_tensor(dtype, batch * dim, 0xFEA8, 1.0);
        let head = LmHeadRef::new(weights.view(), dim).unwrap().shard(offset, vocab_size).unwrap();
        let hidden = HiddenRef::new(hidden.view(), dim).unwrap();
        let req = Request::new(hidden, &rows, samples).with_constraints(&constraints).with_logprobs();
        let sample = |b: &dyn Backend, req: &Request<'_>| b.sample(&b.load_lm_head(head).unwrap(), req).unwrap();
        let (got, expected) = (sample(&wgpu, &req), sample(&CpuBackend::new(), &req));
        assert_eq!(got.tokens, expected.tokens, "{dtype:?}");
        assert_eq!(got.status, expected.status, "{dtype:?}");
        assert_close("logZ", got.log_normalizer.as_ref().unwrap(), expected.log_normalizer.as_ref().unwrap(), 1e-6);
        assert_close("logprobs", got.logprobs.as_ref().unwrap(), expected.logprobs.as_ref().unwrap(), 1e-5);
        let plain = sample(&wgpu, &Request::new(hidden, &rows, samples));
        for (b, c) in constraints.iter().enumerate() {
            let unchanged = got.row(b) == plain.row(b);
            if b % 5 == 0 {
                assert!(unchanged, "{dtype:?}: plain row {b} changed by its constrained neighbours");
            }
            // Masks remove about half the tokens: the draws of a masked row cannot all stay.
            assert!(c.allowed.is_none() || !unchanged, "{dtype:?}: masked row {b} drew what it draws unmasked");
        }
    }
}

#[test]
fn shards_combine_to_the_whole_head() {
    let Some(wgpu) = open(Caps::default()) else { return };
    let (vocab, dim, batch, samples) = (5000, 48, 5, 30);
    let weights = normal_tensor(DType::Bf16, vocab * dim, 0x5A4D, 0.15);
    let hidden = normal_tensor(DType::Bf16, batch * dim, 0x5A4E, 1.0);
    let head = LmHeadRef::new(weights.view(), dim).unwrap();
    let constraints = BatchConstraints::new(batch, vocab as u32, &mut TestRng::new(0x5A4D));
    let constraints = constraints.rows();
    let rows = temperatures(batch);
    let req = Request::new(HiddenRef::new(hidden.view(), dim).unwrap(), &rows, samples)
        .with_constraints(&constraints)
        .with_logprobs();
    let whole = wgpu.sample(&wgpu.load_lm_head(head).unwrap(), &req).unwrap();

    let (mut candidates, mut norms) = (vec![EMPTY; req.outputs()], vec![LogSumExp::EMPTY; batch]);
    for (start, len) in [(0, 1800), (1800, 3200)] {
        let shard = wgpu.load_lm_head(head.slice_rows(start, len).unwrap()).unwrap();
        let (mut part, mut part_norms) = (vec![EMPTY; req.outputs()], vec![LogSumExp::EMPTY; batch]);
        wgpu.sample_candidates_with_normalizer(&shard, &req, &mut part, &mut part_norms).unwrap();
        merge_into(&mut candidates, &part);
        norms.iter_mut().zip(part_norms).for_each(|(n, p)| *n = n.merge(p));
    }
    let combined =
        SampleOutput::from_candidates(&candidates, samples as usize).with_logprobs(&candidates, &norms, &rows);
    assert_eq!(combined.tokens, whole.tokens);
    assert_close("logZ", combined.log_normalizer.as_ref().unwrap(), whole.log_normalizer.as_ref().unwrap(), 1e-6);
    assert_close("logprobs", combined.logprobs.as_ref().unwrap(), whole.logprobs.as_ref().unwrap(), 1e-5);
}

#[test]
fn log_normalizer_and_top_n_over_many_workgroups_match_f64() {
    const N: usize = 20;
    let Some(wgpu) = open(Caps::default()) else { return };
    let (vocab, dim) = (60_000, 32);
    let weights = normal_tensor(DType::F32, vocab * dim, 0x106, 0.5);
    let hidden = normal_tensor(DType::F32, 3 * dim, 0x107, 1.0);
    let rows = [RowParams::new(1.0, 1, 0), RowParams::greedy(), RowParams::new(0.3, 3, 0)];
    let req = Request::new(HiddenRef::new(hidden.view(), dim).unwrap(), &rows, 4).with_top_logprobs(N as u32);
    let head = wgpu.load_lm_head(LmHeadRef::new(weights.view(), dim).unwrap()).unwrap();
    let out = wgpu.sample(&head, &req).unwrap();
    let (log_z, top) = (out.log_normalizer.unwrap(), out.top_logprobs.unwrap());
    let (w, h) = (weights.view(), hidden.view());
    for (b, row) in rows.iter().enumerate() {
        let y: Vec<f64> = (0..vocab)
            .map(|t| {
                let l: f64 = (0..dim).map(|k| f64::from(w.get(t * dim + k)) * f64::from(h.get(b * dim + k))).sum();
                l * f64::from(row.inv_temperature())
            })
            .collect();
        let max = y.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let exact = max + y.iter().map(|v| (v - max).exp()).sum::<f64>().ln();
        let error = (f64::from(log_z[b]) - exact).abs() / exact.abs();
        let mut ranked: Vec<usize> = (0..vocab).collect();
        ranked.sort_by(|&s, &t| y[t].total_cmp(&y[s]));
        assert_eq!(top.row(b).count(), N, "row {b}: top-{N} entries");
        let worst_top = top
            .row(b)
            .zip(&ranked[..N])
            .map(|((token, lp), &t)| {
                assert_eq!(token as usize, t, "row {b}: top-{N} tokens");
                (f64::from(lp) - (y[t] - exact)).abs()
            })
            .fold(0.0, f64::max);
        eprintln!(
            "row {b}: logZ {} against {exact:.7} (relative error {error:.1e}); top-{N} logprobs within {worst_top:.1e}",
            log_z[b]
        );
        assert!(error < 1e-6 && worst_top < 1e-5, "row {b}: logZ {} against {exact}", log_z[b]);
    }
}

#[test]
fn top_n_logprobs_match_cpu() {
    // A low binding cap also splits the call into groups of rows whose tile lists fit one binding.
    let Some(wgpu) = open(Caps { binding_bytes: Some(40_000) }) else { return };
    let (vocab, dim, batch) = (3001, 40, 19);
    let weights = normal_tensor(DType::Bf16, vocab * dim, 0x70B, 0.15);
    let hidden = normal_tensor(DType::Bf16, batch * dim, 0x70C, 1.0);
    let head = LmHeadRef::new(weights.view(), dim).unwrap();
    let constraints = BatchConstraints::new(batch, vocab as u32, &mut TestRng::new(0x70B));
    let constraints = constraints.rows();
    let rows = temperatures(batch);
    let hidden = HiddenRef::new(hidden.view(), dim).unwrap();
    let (wgpu_head, cpu) = (wgpu.load_lm_head(head).unwrap(), CpuBackend::new());
    let cpu_head = cpu.load_lm_head(head).unwrap();
    for n in [1, 7, 20] {
        let req = Request::new(hidden, &rows, 6).with_constraints(&constraints).with_top_logprobs(n);
        let (got, expected) = (wgpu.sample(&wgpu_head, &req).unwrap(), cpu.sample(&cpu_head, &req).unwrap());
        assert_eq!(got.tokens, expected.tokens, "N = {n}");
        let (top, expected_top) = (got.top_logprobs.unwrap(), expected.top_logprobs.unwrap());
        assert_eq!(top.tokens, expected_top.tokens, "N = {n}");
        assert_close("top logprobs", &top.logprobs, &expected_top.logprobs, 1e-5);
        assert_close("logZ", got.log_normalizer.as_ref().unwrap(), expected.log_normalizer.as_ref().unwrap(), 1e-6);
        assert_eq!(top.row(1).count(), FEW_ALLOWED.min(n) as usize, "N = {n}: row 1 padded past its allowed tokens");
    }
}

#[test]
fn truncated_rows_next_to_plain_rows_match_cpu() {
    let (vocab, dim, batch, samples) = (3001, 40, 19, 150);
    let weights = normal_tensor(DType::F16, vocab * dim, 0x7A1, 0.15);
    let hidden = normal_tensor(DType::F16, batch * dim, 0x7A2, 1.0);
    let head = LmHeadRef::new(weights.view(), dim).unwrap();
    let constraints = BatchConstraints::new(batch, vocab as u32, &mut TestRng::new(0x7A1));
    let mut constraints = constraints.rows();
    // Rows 4 (greedy) and 7 (sampled), both truncated, allow no token at all.
    let nothing = vec![0u32; vocab.div_ceil(32)];
    for b in [4, 7] {
        constraints[b].allowed = Some(&nothing);
    }
    let rows = temperatures(batch);
    let kinds = [
        Truncation::default(),
        Truncation::top_k(40),
        Truncation::top_p(0.8),
        Truncation::min_p(0.05).and_top_k(1024),
        Truncation::top_k(300).and_top_p(0.95).and_min_p(0.01),
        Truncation::top_p(0.3),
    ];
    let truncations: Vec<Truncation> = (0..batch).map(|b| kinds[b % kinds.len()]).collect();
    let hidden = HiddenRef::new(hidden.view(), dim).unwrap();
    let cpu = CpuBackend::new();
    let cpu_head = cpu.load_lm_head(head).unwrap();
    let req = Request::new(hidden, &rows, samples)
        .with_constraints(&constraints)
        .with_truncation(&truncations)
        .with_logprobs()
        .with_top_logprobs(5);
    let expected = cpu.sample(&cpu_head, &req).unwrap();
    // Caps that hold one truncated row per group of rows, then fifteen; either way the 150
    // samples take several launches (a launch's tile winners must fit one binding).
    for cap in [40_000, 400_000] {
        let Some(wgpu) = open(Caps { binding_bytes: Some(cap) }) else { return };
        let wgpu_head = wgpu.load_lm_head(head).unwrap();
        let got = wgpu.sample(&wgpu_head, &req).unwrap();
        assert_eq!(got.tokens, expected.tokens, "cap {cap}");
        assert_eq!(got.status, expected.status, "cap {cap}");
        let (top, expected_top) = (got.top_logprobs.as_ref().unwrap(), expected.top_logprobs.as_ref().unwrap());
        assert_eq!(top.tokens, expected_top.tokens, "cap {cap}");
        assert_close("top logprobs", &top.logprobs, &expected_top.logprobs, 1e-5);
        assert_close("logZ", got.log_normalizer.as_ref().unwrap(), expected.log_normalizer.as_ref().unwrap(), 1e-6);
        assert_close("logprobs", got.logprobs.as_ref().unwrap(), expected.logprobs.as_ref().unwrap(), 1e-5);

        // Without outputs the call cuts the rows all the same, into every slot of a poisoned
        // buffer; rows with nothing to sample hold EMPTY candidates, as on the CPU.
        let mut candidates = vec![u64::MAX; req.outputs()];
        let bare = Request { logprobs: false, top_logprobs: 0, ..req };
        wgpu.sample_candidates(&wgpu_head, &bare, &mut candidates).unwrap();
        assert_eq!(SampleOutput::from_candidates(&candidates, samples as usize).tokens, got.tokens);
        let mut norms = vec![LogSumExp::EMPTY; batch];
        wgpu.sample_candidates_with_normalizer(&wgpu_head, &bare, &mut candidates, &mut norms).unwrap();
        for b in [4, 7] {
            assert!(candidates[b * samples as usize..][..samples as usize].iter().all(|&c| c == EMPTY), "row {b}");
        }

        // Rows without truncation draw what they draw in an untruncated call; truncated rows keep
        // some draws (the conformance case checks that they keep every surviving one) and lose
        // others.
        let plain_req = Request::new(hidden, &rows, samples).with_constraints(&constraints);
        let plain = wgpu.sample(&wgpu_head, &plain_req).unwrap();
        let (mut kept, mut cut) = (0, 0);
        for (b, t) in truncations.iter().enumerate() {
            let same = plain.row(b).iter().zip(got.row(b)).filter(|(u, t)| u == t).count();
            assert!(t.is_active() || same == samples as usize, "untruncated row {b} changed");
            kept += same;
            cut += samples as usize - same;
        }
        assert!(kept > 0 && cut > 0, "{kept} draws kept, {cut} changed");
    }
}

#[test]
fn truncation_beyond_one_binding_is_refused() {
    let Some(wgpu) = open(Caps { binding_bytes: Some(20_000) }) else { return };
    let (vocab, dim) = (3001, 8);
    let weights = normal_tensor(DType::F32, vocab * dim, 0x7A3, 0.15);
    let hidden = normal_tensor(DType::F32, dim, 0x7A4, 1.0);
    let head = wgpu.load_lm_head(LmHeadRef::new(weights.view(), dim).unwrap()).unwrap();
    let rows = [RowParams::new(1.0, 1, 0)];
    let plain = Request::new(HiddenRef::new(hidden.view(), dim).unwrap(), &rows, 1);
    // 8 bytes a token for one row's survivors exceed the cap.
    let truncations = [Truncation::top_k(5)];
    match wgpu.sample(&head, &plain.with_truncation(&truncations)) {
        Err(Error::Unsupported { what, .. }) => assert!(what.contains("3001 tokens"), "{what}"),
        other => panic!("not refused: {other:?}"),
    }
    // Truncations that cut nothing rank nothing, and the call runs as a plain one.
    let inactive = [Truncation::top_p(1.0)];
    assert_eq!(wgpu.sample(&head, &plain.with_truncation(&inactive)).unwrap(), wgpu.sample(&head, &plain).unwrap());
}
