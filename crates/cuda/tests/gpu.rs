//! On a GPU: the CUDA backend agrees with the CPU reference on a small mixed case (every dtype pair,
//! greedy and sampled rows, several samples, a vocabulary shard, V not a multiple of any tile).
//! Also the `_ex` kernels: per-row constraints and log-normalisers. Small enough to run under
//! compute-sanitizer. Skips where the backend is unavailable.

use flashsampling_core::cpu::ReferenceBackend;
use flashsampling_core::logsumexp::LogSumExp;
use flashsampling_core::{
    bf16, f16, Backend, DType, Error, HiddenRef, LmHeadRef, Penalties, Request, RowConstraints, RowParams, Tensor,
    Truncation,
};

fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.5
        })
        .collect()
}

enum Owned {
    Bf16(Vec<bf16>),
    F16(Vec<f16>),
    F32(Vec<f32>),
}

impl Owned {
    fn new(d: DType, v: &[f32]) -> Self {
        match d {
            DType::Bf16 => Owned::Bf16(v.iter().map(|&x| bf16::from_f32(x)).collect()),
            DType::F16 => Owned::F16(v.iter().map(|&x| f16::from_f32(x)).collect()),
            DType::F32 => Owned::F32(v.to_vec()),
        }
    }
    fn tensor(&self) -> Tensor<'_> {
        match self {
            Owned::Bf16(v) => Tensor::Bf16(v),
            Owned::F16(v) => Tensor::F16(v),
            Owned::F32(v) => Tensor::F32(v),
        }
    }
}

fn open_cuda() -> Option<Box<dyn Backend>> {
    match flashsampling_cuda::open(0) {
        Ok(b) => Some(b),
        Err(Error::Unavailable { reason, .. }) => {
            eprintln!("skipped: {reason}");
            None
        }
        Err(e) => panic!("{e}"),
    }
}

/// What one case found: tokens identical to the CPU reference out of all, and the largest relative
/// difference of the log-normalisers where they were asked for.
struct Agreement {
    same: usize,
    total: usize,
    worst_log_z: f64,
}

/// Per-row constraints over a vocabulary of `vocab` tokens, every fourth row without any: a random
/// mask (row 1 mod 4), a bias and penalties (2 mod 4), both (3 mod 4). Tokens are global and some
/// lie outside the shard.
struct Constraints {
    masks: Vec<Vec<u32>>,
    bias: Vec<(u32, f32)>,
    counts: Vec<(u32, u32)>,
}

impl Constraints {
    fn new(vocab: usize, first: usize, len: usize) -> Self {
        let bits = values(vocab.div_ceil(32) * 4, 9);
        let masks = (0..4)
            .map(|m| bits.chunks(4).map(|c| c.iter().fold(0u32, |w, x| (w << 8) ^ x.to_bits() >> m) | 0x11).collect())
            .collect();
        let token = |i: usize| ((first + i * 37 % (len + 300)) % vocab) as u32;
        let bias = (0..24).map(|i| (token(2 * i), values(1, i as u64 + 5)[0] * 12.0)).collect();
        let counts = (0..30).map(|i| (token(2 * i + 1), 1 + i as u32 % 4)).collect();
        Constraints { masks, bias, counts }
    }

    fn rows(&self, batch: usize) -> Vec<RowConstraints<'_>> {
        let penalties = Penalties { counts: &self.counts, repetition: 1.4, presence: 0.3, frequency: 0.25 };
        (0..batch)
            .map(|b| match b % 4 {
                0 => RowConstraints::default(),
                1 => RowConstraints { allowed: Some(&self.masks[b / 4 % 4]), ..Default::default() },
                2 => RowConstraints { bias: &self.bias, penalties, ..Default::default() },
                _ => RowConstraints { allowed: Some(&self.masks[b / 4 % 4]), bias: &self.bias, penalties },
            })
            .collect()
    }
}

/// One case of the CUDA backend against the CPU reference on a vocabulary shard of `rows_v` tokens
/// starting at global token `offset`, every third row greedy; with `extras`, also per-row
/// constraints and the log-normalisers.
#[allow(clippy::too_many_arguments)]
fn agreement(
    cuda: &dyn Backend,
    (wd, hd): (DType, DType),
    batch: usize,
    dim: usize,
    rows_v: usize,
    offset: usize,
    samples: u32,
    extras: bool,
) -> Agreement {
    let params: Vec<RowParams> =
        (0..batch as u64)
            .map(|i| {
                if i % 3 == 0 {
                    RowParams::greedy()
                } else {
                    RowParams::new(0.5 + (i % 7) as f32 * 0.2, 77 + i, 3 * i)
                }
            })
            .collect();
    let w = Owned::new(wd, &values(rows_v * dim, 1));
    let h = Owned::new(hd, &values(batch * dim, 2));
    let vocab = offset + rows_v + 1000;
    let head = LmHeadRef::new(w.tensor(), dim).unwrap().shard(offset as u32, vocab as u32).unwrap();
    let hidden = HiddenRef::new(h.tensor(), dim).unwrap();
    let constraints = Constraints::new(vocab, offset, rows_v);
    let row_constraints = constraints.rows(batch);
    let mut req = Request::new(hidden, &params, samples);
    if extras {
        req = req.with_constraints(&row_constraints);
    }
    let g = cuda.load_lm_head(head).unwrap();
    let r = ReferenceBackend.load_lm_head(head).unwrap();
    let mut got = vec![u64::MAX; req.outputs()];
    let mut want = vec![0u64; req.outputs()];
    let mut worst_log_z = 0.0f64;
    if extras {
        let mut got_z = vec![LogSumExp { max: f32::NAN, sum: f64::NAN }; batch];
        let mut want_z = vec![LogSumExp::EMPTY; batch];
        cuda.sample_candidates_with_normalizer(&g, &req, &mut got, &mut got_z).unwrap();
        ReferenceBackend.sample_candidates_with_normalizer(&r, &req, &mut want, &mut want_z).unwrap();
        for (a, b) in got_z.iter().zip(&want_z) {
            worst_log_z = worst_log_z.max((a.ln() - b.ln()).abs() / b.ln().abs().max(1.0));
        }
    } else {
        cuda.sample_candidates(&g, &req, &mut got).unwrap();
        ReferenceBackend.sample_candidates(&r, &req, &mut want).unwrap();
    }
    let mut same = 0;
    for (a, b) in got.iter().zip(&want) {
        let (ta, tb) = (u32::MAX - *a as u32, u32::MAX - *b as u32);
        assert!((offset..offset + rows_v).contains(&(ta as usize)), "token {ta} outside the shard");
        same += usize::from(ta == tb);
    }
    Agreement { same, total: got.len(), worst_log_z }
}

#[test]
fn agrees_with_the_cpu_reference() {
    let Some(cuda) = open_cuda() else { return };
    let (mut same, mut total) = (0usize, 0usize);
    for wd in [DType::Bf16, DType::F16, DType::F32] {
        for hd in [DType::Bf16, DType::F16, DType::F32] {
            let a = agreement(cuda.as_ref(), (wd, hd), 11, 72, 1037, 500, 5, false);
            same += a.same;
            total += a.total;
        }
    }
    eprintln!("{same} of {total} tokens identical to the CPU reference");
    assert!(same * 100 >= total * 99, "{same} of {total} identical");
}

/// The tensor-core kernel's variants (8 to 128 rows per launch; wgmma from 32 rows on sm_90a) and
/// its passes over `W` for larger batches (on sm_90a the wide variant takes up to 256 rows in one:
/// 200 in one pass, 300 in two; elsewhere two and three), with D not a multiple of its K chunk and
/// a shard that starts inside a Philox group; and whole Philox groups (a shard from token 0) for the
/// wide variant's four-token path.
#[test]
fn tensor_core_variants_agree_with_the_cpu_reference() {
    let Some(cuda) = open_cuda() else { return };
    let cases = [1, 8, 9, 16, 17, 40, 64, 65, 128, 200, 300].map(|b| (b, 502)).into_iter().chain([(256, 0)]);
    for dtype in [DType::Bf16, DType::F16] {
        for (batch, offset) in cases.clone() {
            let a = agreement(cuda.as_ref(), (dtype, dtype), batch, 200, 1001, offset, 3, false);
            eprintln!("{} B={batch} from token {offset}: {} of {} tokens identical", dtype.name(), a.same, a.total);
            assert!(a.same * 100 >= a.total * 99, "{} B={batch}: {} of {} identical", dtype.name(), a.same, a.total);
        }
    }
}

/// The `_ex` kernels (constraints and log-normalisers) of both paths: every tensor-core variant
/// and its passes, and the CUDA-core kernel on mixed dtypes; masked, biased and penalised rows
/// beside plain ones in one batch, on a vocabulary shard.
#[test]
fn constrained_kernels_agree_with_the_cpu_reference() {
    let Some(cuda) = open_cuda() else { return };
    let cases = [DType::Bf16, DType::F16]
        .into_iter()
        .flat_map(|d| [1, 9, 17, 40, 65, 200, 300].map(|b| ((d, d), b)))
        .chain([((DType::F32, DType::Bf16), 11), ((DType::Bf16, DType::F32), 23)]);
    for ((wd, hd), batch) in cases {
        let a = agreement(cuda.as_ref(), (wd, hd), batch, 200, 1001, 502, 3, true);
        eprintln!(
            "{}/{} B={batch}: {} of {} tokens identical, log-normalisers within {:.1e}",
            wd.name(),
            hd.name(),
            a.same,
            a.total,
            a.worst_log_z
        );
        assert!(a.same * 100 >= a.total * 99, "B={batch}: {} of {} identical", a.same, a.total);
        assert!(a.worst_log_z < 1e-5, "B={batch}: log-normaliser off by {:.2e}", a.worst_log_z);
    }
}

/// One case of rows that rank their tokens (`truncation(b)` for row b; top-N logprobs), with
/// constraints, beside plain rows, over a whole vocabulary (truncation needs one): the CUDA
/// backend's statuses, tokens, log-normalisers and top-N lists against the CPU reference. Every
/// fourth row is greedy, every seventh nearly flat (T = 1000); `edit` may change the hidden states
/// first.
fn ranking_agreement(
    cuda: &dyn Backend,
    ((wd, hd), batch, vocab, dim): ((DType, DType), usize, usize, usize),
    top_n: u32,
    truncation: impl Fn(usize) -> Truncation,
    edit: impl Fn(&mut [f32], usize),
) {
    let params: Vec<RowParams> = (0..batch as u64)
        .map(|i| match i {
            _ if i % 4 == 0 => RowParams::greedy(),
            _ if i % 7 == 6 => RowParams::new(1000.0, 5 + i, i),
            _ => RowParams::new(0.6 + (i % 5) as f32 * 0.3, 5 + i, i),
        })
        .collect();
    let truncation: Vec<Truncation> = (0..batch).map(truncation).collect();
    let w = Owned::new(wd, &values(vocab * dim, 3).iter().map(|x| 8.0 * x).collect::<Vec<_>>());
    let mut hidden = values(batch * dim, 4);
    edit(&mut hidden, dim);
    let h = Owned::new(hd, &hidden);
    let head = LmHeadRef::new(w.tensor(), dim).unwrap();
    let constraints = Constraints::new(vocab, 0, vocab);
    let row_constraints = constraints.rows(batch);
    let req = Request::new(HiddenRef::new(h.tensor(), dim).unwrap(), &params, 3)
        .with_constraints(&row_constraints)
        .with_truncation(&truncation)
        .with_logprobs()
        .with_top_logprobs(top_n);
    let got = cuda.sample(&cuda.load_lm_head(head).unwrap(), &req).unwrap();
    let want = ReferenceBackend.sample(&ReferenceBackend.load_lm_head(head).unwrap(), &req).unwrap();
    let same = got.tokens.iter().zip(&want.tokens).filter(|(a, b)| a == b).count();
    let top_tokens = |t: Option<flashsampling_core::TopLogprobs>| t.map_or(vec![], |t| t.tokens);
    let (gt, wt) = (top_tokens(got.top_logprobs), top_tokens(want.top_logprobs));
    assert_eq!(gt.len(), batch * top_n as usize);
    let same_top = gt.iter().zip(&wt).filter(|(a, b)| a == b).count();
    let worst_z = got
        .log_normalizer
        .unwrap()
        .iter()
        .zip(want.log_normalizer.unwrap())
        .map(|(a, b)| f64::from((a - b).abs()) / f64::from(b.abs()).max(1.0))
        .fold(0.0, f64::max);
    eprintln!(
        "{}/{} B={batch} V={vocab}: {same} of {} tokens, {same_top} of {} top-N tokens identical, logZ within {worst_z:.1e}",
        wd.name(),
        hd.name(),
        got.tokens.len(),
        gt.len()
    );
    assert_eq!(got.status, want.status);
    assert!(same * 100 >= got.tokens.len() * 99, "B={batch}: {same} of {} tokens identical", got.tokens.len());
    assert!(same_top * 100 >= gt.len() * 99, "B={batch}: {same_top} of {} top-N identical", gt.len());
    assert!(worst_z < 1e-5, "B={batch}: log-normaliser off by {worst_z:.2e}");
}

/// Top-k, top-p, min-p and their combinations, and top-N, where some rows truncate without top-k:
/// the fused kernel writes the scaled logits and select.cu ranks them. At V = 9001 every seventh
/// row is nearly flat: more tokens lie near its maximum than the selection's fast path sorts, so its
/// radix select runs. At V = 40,009 a row's keys are gathered by three blocks, and the last of them
/// to finish sorts what all three appended.
#[test]
fn ranking_rows_agree_with_the_cpu_reference() {
    let Some(cuda) = open_cuda() else { return };
    let bf16 = (DType::Bf16, DType::Bf16);
    let truncation = |b: usize| match b % 5 {
        0 => Truncation::default(),
        1 => Truncation::top_k(40),
        2 => Truncation::top_k(50).and_top_p(0.9),
        3 => Truncation::min_p(0.05),
        _ => Truncation::top_p(0.8).and_min_p(0.01),
    };
    let cases = [
        (bf16, 9, 3001),
        (bf16, 150, 3001),
        ((DType::F32, DType::Bf16), 7, 3001),
        (bf16, 21, 9001),
        (bf16, 12, 40_009),
    ];
    for (dtypes, batch, vocab) in cases {
        ranking_agreement(cuda.as_ref(), (dtypes, batch, vocab, 96), 4, truncation, |_, _| {});
    }
}

/// Rows that keep at most 64 keys (top-k ≤ 64 with top-p and min-p, top-N): the tensor-core
/// kernel keeps per-tile candidate lists and select_lists merges them, a few tokens and many per
/// block; up to 32 rows per launch at D = 96, and two passes of 128 and 22 rows at D = 5120. At
/// V = 40,009 and 151,936 a block has more than one step, so its lists raise their floors from the
/// board of the blocks' maxima. Row 1 is flat (its hidden state zero: every logit ties), so the
/// lists' tops leave more keys above them than fit in shared memory at V = 40,009 and the radix
/// select over the lists runs; row 2 has a NaN (its status NanLogits, its first token kept).
#[test]
fn listed_rows_agree_with_the_cpu_reference() {
    let Some(cuda) = open_cuda() else { return };
    let (bf16, f16) = ((DType::Bf16, DType::Bf16), (DType::F16, DType::F16));
    let truncation = |b: usize| match b % 5 {
        0 => Truncation::default(),
        1 => Truncation::top_k(40),
        2 => Truncation::top_k(50).and_top_p(0.9),
        3 => Truncation::top_k(64).and_min_p(0.05),
        _ => Truncation::top_k(1),
    };
    let edit = |h: &mut [f32], dim: usize| {
        h[dim..2 * dim].fill(0.0);
        h[2 * dim + 7] = f32::NAN;
    };
    let direct = flashsampling_cuda::CudaBackend::new(0).unwrap();
    for case in [(bf16, 9, 3001, 96), (f16, 32, 40_009, 96), (bf16, 12, 151_936, 96), (bf16, 150, 3001, 5120)] {
        let ((wd, hd), batch, _, dim) = case;
        assert!(direct.list_slots(wd, hd).is_some(), "B={batch}, D={dim} keeps no lists");
        ranking_agreement(cuda.as_ref(), case, 4, truncation, edit);
    }
    // Every ranking row truncates and none asks for top-N: the selection draws all their samples,
    // and the one-block widths (B > 32) draw no candidates for them in the fused launch.
    let truncated = |b: usize| match b % 3 {
        0 => Truncation::top_k(40),
        1 => Truncation::top_k(50).and_top_p(0.9),
        _ => Truncation::top_k(64).and_min_p(0.05),
    };
    for case in [(bf16, 64, 151_936, 96), (f16, 120, 40_009, 96), (bf16, 150, 3001, 5120)] {
        ranking_agreement(cuda.as_ref(), case, 0, truncated, edit);
    }
}
