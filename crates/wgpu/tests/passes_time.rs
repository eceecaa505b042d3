//! `WgpuBackend::passes_time`, which the benchmark reports beside the time per call: it refuses
//! requests with features, repeats the passes over several weight bindings and launches without
//! changing what a call draws, and reports a time a device could take.

use flashsampling_core::cpu::CpuBackend;
use flashsampling_core::testdata::normal_tensor;
use flashsampling_core::{Backend, DType, Error, HiddenRef, LmHeadRef, Request, RowParams};
use flashsampling_wgpu::Caps;

mod common;
use common::open;

#[test]
fn repeated_passes_leave_the_results_unchanged() {
    // A binding cap that splits the head over bindings and, with 40 samples, the call over two
    // launches (the partial winners of 25 samples fill a binding).
    let Some(wgpu) = open(Caps { binding_bytes: Some(40_000) }) else { return };
    let (vocab, dim, batch) = (2501, 64, 5);
    let weights = normal_tensor(DType::Bf16, vocab * dim, 41, 1.0);
    let hidden = normal_tensor(DType::Bf16, batch * dim, 42, 1.0);
    let head = LmHeadRef::new(weights.view(), dim).unwrap();
    let rows: Vec<RowParams> = (0..batch).map(|b| RowParams::new(0.8, 100 + b as u64, 2)).collect();
    let req = Request::new(HiddenRef::new(hidden.view(), dim).unwrap(), &rows, 40);
    let loaded = wgpu.load_lm_head(head).unwrap();

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

#[test]
fn repeats_take_time() {
    // A pass reads 64 MiB of weights: at most 10 TB/s on any device today, so at least 6.7 µs. A
    // time of about 0 (repeats not run, or lost in the host clock's noise) fails; a time that
    // ignored the repeats on a slow adapter, where one call's noise is milliseconds, may not.
    let Some(wgpu) = open(Caps::default()) else { return };
    let (vocab, dim) = (32_768, 1024);
    let weights = normal_tensor(DType::Bf16, vocab * dim, 43, 1.0);
    let hidden = normal_tensor(DType::Bf16, dim, 44, 1.0);
    let loaded = wgpu.load_lm_head(LmHeadRef::new(weights.view(), dim).unwrap()).unwrap();
    let rows = [RowParams::new(1.0, 7, 0)];
    let req = Request::new(HiddenRef::new(hidden.view(), dim).unwrap(), &rows, 1);
    let took = wgpu.passes_time(&loaded, &req, 10).unwrap();
    assert!(took.as_micros() >= 6, "a pass over 64 MiB took {took:?}");
}
