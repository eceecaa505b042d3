//! On a GPU: the CUDA backend agrees with the CPU reference on a small mixed case (every dtype pair,
//! greedy and sampled rows, several samples, a vocabulary shard, V not a multiple of any tile).
//! Small enough to run under compute-sanitizer. Skips where the backend is unavailable.

use flashsampling_core::cpu::ReferenceBackend;
use flashsampling_core::{bf16, f16, Backend, DType, Error, HiddenRef, LmHeadRef, Request, RowParams, Tensor};

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

/// One case: `(identical tokens, tokens)` of the CUDA backend against the CPU reference on a
/// vocabulary shard of `rows_v` tokens starting at global token `offset`, every third row greedy.
fn agreement(
    cuda: &dyn Backend,
    (wd, hd): (DType, DType),
    batch: usize,
    dim: usize,
    rows_v: usize,
    offset: usize,
    samples: u32,
) -> (usize, usize) {
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
    let head = LmHeadRef::new(w.tensor(), dim).unwrap().shard(offset as u32, (offset + rows_v) as u32 + 1000).unwrap();
    let hidden = HiddenRef::new(h.tensor(), dim).unwrap();
    let req = Request::new(hidden, &params, samples);
    let g = cuda.load_lm_head(head).unwrap();
    let r = ReferenceBackend.load_lm_head(head).unwrap();
    let mut got = vec![u64::MAX; req.outputs()];
    cuda.sample_candidates(&g, &req, &mut got).unwrap();
    let mut want = vec![0u64; req.outputs()];
    ReferenceBackend.sample_candidates(&r, &req, &mut want).unwrap();
    let mut same = 0;
    for (a, b) in got.iter().zip(&want) {
        let (ta, tb) = (u32::MAX - *a as u32, u32::MAX - *b as u32);
        assert!((offset..offset + rows_v).contains(&(ta as usize)), "token {ta} outside the shard");
        same += usize::from(ta == tb);
    }
    (same, got.len())
}

#[test]
fn agrees_with_the_cpu_reference() {
    let Some(cuda) = open_cuda() else { return };
    let (mut same, mut total) = (0usize, 0usize);
    for wd in [DType::Bf16, DType::F16, DType::F32] {
        for hd in [DType::Bf16, DType::F16, DType::F32] {
            let (s, t) = agreement(cuda.as_ref(), (wd, hd), 11, 72, 1037, 500, 5);
            same += s;
            total += t;
        }
    }
    eprintln!("{same} of {total} tokens identical to the CPU reference");
    assert!(same * 100 >= total * 99, "{same} of {total} identical");
}

/// The tensor-core kernel's variants (8 to 128 rows per launch) and its passes over `W` for larger
/// batches, with D not a multiple of its K chunk and a shard that starts inside a Philox group.
#[test]
fn tensor_core_variants_agree_with_the_cpu_reference() {
    let Some(cuda) = open_cuda() else { return };
    for dtype in [DType::Bf16, DType::F16] {
        for batch in [1, 8, 9, 16, 17, 40, 64, 65, 128, 200] {
            let (same, total) = agreement(cuda.as_ref(), (dtype, dtype), batch, 200, 1001, 502, 3);
            eprintln!("{} B={batch}: {same} of {total} tokens identical", dtype.name());
            assert!(same * 100 >= total * 99, "{} B={batch}: {same} of {total} identical", dtype.name());
        }
    }
}
