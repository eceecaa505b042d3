//! The CPU backend's own layout knobs change no token: vocabulary tile size, and the two launch
//! layouts (threads over vocabulary tiles, threads over samples).

use flashsampling_core::cpu::{CpuBackend, ReferenceBackend};
use flashsampling_core::testdata::normal_tensor;
use flashsampling_core::{derive_row_seed, Backend, DType, HiddenRef, LmHeadRef, Request, RowParams, SampleOutput};

fn sample_with(backend: &dyn Backend, vocab: usize, dim: usize, dtype: DType, samples: u32) -> SampleOutput {
    let w = normal_tensor(dtype, vocab * dim, 0x711E ^ vocab as u64, 1.0 / (dim as f64).sqrt());
    let h = normal_tensor(dtype, 6 * dim, 0x4117 ^ dim as u64, 2.0);
    let rows: Vec<RowParams> = [0.0f32, 0.3, 1.0, 1.0, 2.5, 0.0]
        .iter()
        .enumerate()
        .map(|(b, &t)| RowParams::new(t, derive_row_seed(0xC0FFEE, b as u64), 11 + b as u64))
        .collect();
    let head = backend.load_lm_head(LmHeadRef::new(w.view(), dim).unwrap()).unwrap();
    backend.sample(&head, &Request::new(HiddenRef::new(h.view(), dim).unwrap(), &rows, samples)).unwrap()
}

#[test]
fn vocabulary_tile_changes_no_token() {
    for (vocab, dim) in [(3000, 16), (517, 13), (70_001, 8)] {
        let base = sample_with(&CpuBackend::new(), vocab, dim, DType::Bf16, 9);
        for tile in [1, 7, 100, 1000, 70_001] {
            let other = sample_with(&CpuBackend::with_vocab_tile(tile).unwrap(), vocab, dim, DType::Bf16, 9);
            assert_eq!(base, other, "V={vocab} D={dim}: tile {tile} changed tokens");
        }
    }
}

#[test]
fn any_dimension_matches_the_reference() {
    // D = 13 is not a multiple of the dot product's 16 lanes; the reference uses f64 logits, so a
    // difference would need a near-tie, which these seeds do not produce.
    for dtype in [DType::Bf16, DType::F16, DType::F32] {
        let fast = sample_with(&CpuBackend::new(), 517, 13, dtype, 5);
        let reference = sample_with(&ReferenceBackend, 517, 13, dtype, 5);
        assert_eq!(fast, reference, "{dtype:?}");
    }
}

#[test]
fn zero_tile_is_refused() {
    assert!(CpuBackend::with_vocab_tile(0).is_err());
}
