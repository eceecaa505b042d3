//! The wgpu backend gives the CPU backend's tokens on the paths that depend on shapes and limits:
//! heads split over several weight bindings and calls over several launches (forced here by a low
//! binding cap, as large heads take them on real adapters), every batch tile and several batch
//! tiles per call, rows padded to 16 bytes, hidden rows longer than one staged chunk.

use flashsampling_core::cpu::CpuBackend;
use flashsampling_core::testdata::normal_tensor;
use flashsampling_core::{Backend, DType, HiddenRef, LmHeadRef, Request, RowParams};
use flashsampling_wgpu::{Caps, WgpuBackend};

mod common;
use common::open;

/// Asserts that `wgpu` draws the CPU backend's tokens for a random head and batch of this shape.
fn assert_matches_cpu(wgpu: &WgpuBackend, dtype: DType, (vocab, dim, batch, samples): (usize, usize, usize, u32)) {
    let seed = (vocab * 31 + dim * 7 + batch) as u64;
    let weights = normal_tensor(dtype, vocab * dim, seed, 1.0);
    let hidden = normal_tensor(dtype, batch * dim, seed + 1, 1.0);
    let head = LmHeadRef::new(weights.view(), dim).unwrap().shard(500, vocab as u32 + 1000).unwrap();
    let rows: Vec<RowParams> = (0..batch)
        .map(|b| match b % 4 {
            1 => RowParams::greedy(),
            k => RowParams::new(0.5 * (k + 1) as f32, 7 + b as u64, 3),
        })
        .collect();
    let req = Request::new(HiddenRef::new(hidden.view(), dim).unwrap(), &rows, samples);
    let tokens = |b: &dyn Backend| {
        let h = b.load_lm_head(head).unwrap();
        b.sample(&h, &req).unwrap().tokens
    };
    assert_eq!(tokens(wgpu), tokens(&CpuBackend::new()), "{dtype:?}, V = {vocab}, D = {dim}, B = {batch}");
}

const DTYPES: [DType; 3] = [DType::F32, DType::Bf16, DType::F16];

#[test]
fn split_head_matches_cpu() {
    let Some(wgpu) = open(Caps { binding_bytes: Some(40_000) }) else { return };
    for dtype in DTYPES {
        assert_matches_cpu(&wgpu, dtype, (3001, 40, 4, 50));
    }
}

#[test]
fn batch_tiles_match_cpu() {
    let Some(wgpu) = open(Caps::default()) else { return };
    for dtype in DTYPES {
        for batch in [1, 2, 3, 8, 9, 17] {
            assert_matches_cpu(&wgpu, dtype, (1000, 37, batch, 3));
        }
        assert_matches_cpu(&wgpu, dtype, (200, 2000, 5, 2));
    }
}
