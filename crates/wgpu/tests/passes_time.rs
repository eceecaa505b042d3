//! `WgpuBackend::passes_time`, which the benchmark reports beside the time per call: it runs on
//! plain requests, refuses requests with features, and leaves nothing behind (a call after it
//! draws the CPU backend's tokens).

use flashsampling_core::cpu::CpuBackend;
use flashsampling_core::testdata::normal_tensor;
use flashsampling_core::{Backend, DType, Error, HiddenRef, LmHeadRef, Request, RowParams};
use flashsampling_wgpu::Caps;

mod common;
use common::open;

#[test]
fn times_plain_requests_and_leaves_nothing_behind() {
    // A binding cap that splits the head: every repeat runs pass 1 over several bindings.
    let Some(wgpu) = open(Caps { binding_bytes: Some(40_000) }) else { return };
    let (vocab, dim, batch) = (2501, 64, 5);
    let weights = normal_tensor(DType::Bf16, vocab * dim, 41, 1.0);
    let hidden = normal_tensor(DType::Bf16, batch * dim, 42, 1.0);
    let head = LmHeadRef::new(weights.view(), dim).unwrap();
    let rows: Vec<RowParams> = (0..batch).map(|b| RowParams::new(0.8, 100 + b as u64, 2)).collect();
    let req = Request::new(HiddenRef::new(hidden.view(), dim).unwrap(), &rows, 3);
    let loaded = wgpu.load_lm_head(head).unwrap();

    // The time itself is not asserted: passes this small take less than the noise of the host's
    // timing on a fast GPU (a difference of two calls can come out 0).
    wgpu.passes_time(&loaded, &req, 4).unwrap();
    let cpu = CpuBackend::new();
    let expected = cpu.sample(&cpu.load_lm_head(head).unwrap(), &req).unwrap().tokens;
    assert_eq!(wgpu.sample(&loaded, &req).unwrap().tokens, expected);

    let with_logprobs = Request { logprobs: true, ..req };
    match wgpu.passes_time(&loaded, &with_logprobs, 4) {
        Err(Error::Unsupported { what, .. }) => assert!(what.contains("features"), "{what}"),
        other => panic!("a request with logprobs was timed: {other:?}"),
    }
}
