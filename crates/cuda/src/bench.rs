//! The CUDA benchmark (DESIGN.md §6): per shape and batch, in one run, the fused kernel (sampled
//! rows; greedy rows: the cost of the noise; with log-normalisers: the cost of logprobs; keeping
//! per-tile candidate lists of rows that rank, or writing their scaled logits where the backend
//! does that instead: the first part of truncation), the ranking of top-k 50 rows after it (merge,
//! selection, finishing), the cuBLAS bf16 GEMM alone (bf16 logits), and the
//! unfused path (that GEMM + sampling from the logits), each timed with device events after warm-up
//! (median), against the floor measured in the same run. Up to B = 64 also the trait path
//! ([`Backend::sample`], host wall clock: uploads and downloads included), plain, with logprobs,
//! and with top-k 50 + top-p 0.9 with and without logprobs.

use std::ffi::c_void;
use std::sync::Arc;

use cudarc::cublas::{result as blas, sys as bsys, CudaBlas};
use cudarc::driver::{result, sys, CudaContext, CudaSlice, CudaStream, DevicePtr};
use flashsampling_core::bench::{bytes_moved, median, trait_path_times, Record, TRAIT_PATH_MAX_BATCH};
use flashsampling_core::survivors::RowPlan;
use flashsampling_core::{bf16, Backend, DType, HiddenRef, Result, Tensor, Truncation};

use crate::arena::{Arena, Layout};
use crate::driver::device_error;
use crate::kernels::LogitsDType;
use crate::launch::{Extras, FusedArgs, LogitsArgs, RowArgs};
use crate::ranking::RankingRows;
use crate::{CudaBackend, NAME};

const WARMUP: usize = 10;
/// Keys each row keeps in the timing of the ranking path alone.
const RANKED_KEPT: u32 = 50;

/// Measured device rates the floors are computed from.
#[derive(Debug, Clone, Copy)]
pub struct Rates {
    /// Device-to-device copy, bytes read + written per second.
    pub copy_bytes_per_s: f64,
    /// bf16 GEMM (cuBLAS, f32 accumulation) FLOP per second.
    pub matrix_flops: f64,
}

/// Runs the benchmark on device 0 for every shape `(D, V)` and batch, `iters` timed runs each
/// (at least 100). Weights and hidden states are bf16, random and non-zero.
pub fn run(shapes: &[(usize, usize)], batches: &[usize], iters: usize) -> Result<Vec<Record>> {
    let cuda = CudaBackend::new(0)?;
    let iters = iters.max(100);
    let stream = cuda.stream().clone();
    let ctx = cuda.context().clone();
    let blas = CudaBlas::new(stream.clone()).map_err(|e| device_error("cuBLAS", e))?;
    let device = cuda.info().devices.first().map(|d| d.name.clone()).unwrap_or_default();
    let rates = measure_rates(&ctx, &stream, &blas, iters)?;
    let max_b = batches.iter().copied().max().unwrap_or(1);
    let mut records = Vec::new();
    for &(dim, vocab) in shapes {
        let w = random_bf16(&stream, vocab * dim, 0x5eed)?;
        let h = random_bf16(&stream, max_b * dim, 0xbeef)?;
        let logits = alloc::<u16>(&stream, max_b * vocab)?;
        let out = alloc::<u64>(&stream, max_b)?;
        let merged = alloc::<u8>(&stream, 16 * max_b)?;
        let mut arena = Arena::default();
        let slots = cuda.norm_slots(DType::Bf16, DType::Bf16, vocab as u32);
        let norms = alloc::<u64>(&stream, max_b * slots as usize)?;
        let rows: Vec<RowArgs> = (0..max_b as u64).map(|i| RowArgs::new(1.0, 0x1234 + i, 7)).collect();
        let greedy_rows: Vec<RowArgs> = rows.iter().map(|r| RowArgs { temperature: 0.0, ..*r }).collect();
        let rows = stream.clone_htod(&RowArgs::to_bytes(&rows)).map_err(|e| device_error("upload", e))?;
        let greedy_rows = stream.clone_htod(&RowArgs::to_bytes(&greedy_rows)).map_err(|e| device_error("upload", e))?;
        let (wp, _g1) = w.device_ptr(&stream);
        let (hp, _g2) = h.device_ptr(&stream);
        let (lp, _g3) = logits.device_ptr(&stream);
        let (op, _g4) = out.device_ptr(&stream);
        let (rp, _g5) = rows.device_ptr(&stream);
        let (gp, _g6) = greedy_rows.device_ptr(&stream);
        let (np, _g7) = norms.device_ptr(&stream);
        let (mp, _g8) = merged.device_ptr(&stream);
        let top50 = Truncation::top_k(RANKED_KEPT);
        for &batch in batches {
            let bytes = bytes_moved(dim, vocab, batch, 2, 2);
            let floor_us =
                (bytes / rates.copy_bytes_per_s).max(2.0 * (batch * vocab * dim) as f64 / rates.matrix_flops) * 1e6;
            let fused = FusedArgs {
                w: wp,
                w_dtype: DType::Bf16,
                h: hp,
                h_dtype: DType::Bf16,
                rows: rp,
                out: op,
                v_rows: vocab as u32,
                dim: dim as u32,
                batch: batch as u32,
                samples: 1,
                vocab_offset: 0,
                extras: None,
            };
            let sample = LogitsArgs {
                logits: lp,
                dtype: LogitsDType::Bf16,
                rows: rp,
                out: op,
                v_rows: vocab as u32,
                batch: batch as u32,
                samples: 1,
                vocab_offset: 0,
            };
            let cu = stream.cu_stream();
            let gemm = || gemm_bf16(&blas, wp, hp, lp, vocab, batch, dim);
            // SAFETY: every pointer is a live allocation of this context, sized for max_b rows.
            let t_fused = time(&ctx, &stream, iters, || unsafe { cuda.sample_raw(&fused, cu) })?;
            let greedy = FusedArgs { rows: gp, ..fused };
            // SAFETY: as above.
            let t_greedy = time(&ctx, &stream, iters, || unsafe { cuda.sample_raw(&greedy, cu) })?;
            let logprobs =
                FusedArgs { extras: Some(Extras { norms: np, norm_slots: slots, ..Extras::default() }), ..fused };
            // SAFETY: as above; `norms` holds max_b × slots pairs.
            let t_logprobs = time(&ctx, &stream, iters, || unsafe { cuda.sample_raw(&logprobs, cu) })?;
            // Every row keeps its 50 most likely keys: the fused kernel keeps per-tile lists (or writes
            // the scaled logits) and its log-normaliser partials; then the merge, the selection and
            // the finishing run.
            let plan = RowPlan { truncation: Some(&top50), top_n: 0, list_length: RANKED_KEPT as usize };
            let mut layout = Layout::default();
            let list_slots = cuda.list_slots(DType::Bf16, DType::Bf16);
            let ranked =
                RankingRows::stage(&vec![plan; batch], vocab as u32, list_slots, &mut layout).expect("every row ranks");
            let call = arena.bind(&stream, layout)?;
            let mut ranked_extras = Extras { norms: np, norm_slots: slots, ..Extras::default() };
            ranked.point(&call, &mut ranked_extras);
            let ranking = FusedArgs { extras: Some(ranked_extras), ..fused };
            // SAFETY: as above; the ranking buffers hold `batch` rows.
            let t_ranked = time(&ctx, &stream, iters, || unsafe { cuda.sample_raw(&ranking, cu) })?;
            // `norms` holds max_b × slots pairs, `merged` max_b rows.
            let t_select = time(&ctx, &stream, iters, || {
                ranked.select(cuda.select_functions()?, (&call, &stream), (rp, op, 1), 0, ((np, slots), mp))
            })?;
            // The timed launches each began from a clear board only if each left it clear.
            if !ranked.board_is_clear(&call, &stream)? {
                return Err(device_error("the ranked launches", "left the board of the lists' tops set"));
            }
            drop(call);
            let t_gemm = time(&ctx, &stream, iters, gemm)?;
            let t_unfused = time(&ctx, &stream, iters, || {
                gemm()?;
                // SAFETY: as above.
                unsafe { cuda.sample_logits_raw(&sample, cu) }
            })?;
            let variants = [
                ("fused", t_fused),
                ("fused-greedy", t_greedy),
                ("fused-logprobs", t_logprobs),
                ("fused-ranked", t_ranked),
                ("rank-topk50", t_select),
                ("cublas-gemm", t_gemm),
                ("unfused", t_unfused),
            ];
            let trait_path = if batch <= TRAIT_PATH_MAX_BATCH {
                // SAFETY: `w` outlives the head, which this loop iteration drops.
                let head = unsafe { cuda.borrow_lm_head(wp, DType::Bf16, (vocab, dim), (0, vocab as u32))? };
                let h: Vec<bf16> =
                    (0..batch * dim).map(|i| bf16::from_f32(((i * 7919) % 1000) as f32 * 1e-3 - 0.5)).collect();
                trait_path_times(&cuda, &head, HiddenRef::new(Tensor::Bf16(&h), dim)?, TRAIT_PATH_ITERS)?
            } else {
                vec![]
            };
            for (variant, t) in variants.into_iter().chain(trait_path) {
                records.push(Record {
                    backend: NAME.into(),
                    device: device.clone(),
                    variant: variant.into(),
                    dim,
                    vocab,
                    batch,
                    dtype: "bf16".into(),
                    median_us: t,
                    floor_us,
                });
            }
        }
    }
    Ok(records)
}

/// Timed calls of the trait path, after one warm-up.
const TRAIT_PATH_ITERS: usize = 20;

/// Copy bandwidth (2 GiB device-to-device, bytes read + written) and the bf16 GEMM rate (8192³).
pub fn measure_rates(ctx: &Arc<CudaContext>, stream: &Arc<CudaStream>, blas: &CudaBlas, iters: usize) -> Result<Rates> {
    let n = 1usize << 30;
    let src = random_bf16(stream, n, 1)?;
    let dst = alloc::<u16>(stream, n)?;
    let (s, _gs) = src.device_ptr(stream);
    let (d, _gd) = dst.device_ptr(stream);
    let cu = stream.cu_stream();
    // SAFETY: both buffers hold 2n bytes.
    let t_copy = time(ctx, stream, iters.min(50), || unsafe {
        result::memcpy_dtod_async(d, s, 2 * n, cu).map_err(|e| device_error("copy", e))
    })?;
    let m = 8192usize;
    let t_gemm = time(ctx, stream, iters.min(50), || gemm_bf16(blas, s, s, d, m, m, m))?;
    Ok(Rates {
        copy_bytes_per_s: 4.0 * n as f64 / (t_copy * 1e-6),
        matrix_flops: 2.0 * (m * m * m) as f64 / (t_gemm * 1e-6),
    })
}

/// `logits[b, v] = Σ_d w[v, d] · h[b, d]` in bf16 with f32 accumulation: column-major
/// `C (V×B) = Wᵀ-view (V×D) · H-view (D×B)`.
fn gemm_bf16(
    blas: &CudaBlas,
    w: sys::CUdeviceptr,
    h: sys::CUdeviceptr,
    c: sys::CUdeviceptr,
    v: usize,
    b: usize,
    d: usize,
) -> Result<()> {
    let (alpha, beta) = (1.0f32, 0.0f32);
    // SAFETY: the caller's buffers hold V×D, B×D and B×V bf16 elements.
    unsafe {
        blas::gemm_ex(
            *blas.handle(),
            bsys::cublasOperation_t::CUBLAS_OP_T,
            bsys::cublasOperation_t::CUBLAS_OP_N,
            v as i32,
            b as i32,
            d as i32,
            (&alpha as *const f32).cast::<c_void>(),
            w as *const c_void,
            bsys::cudaDataType::CUDA_R_16BF,
            d as i32,
            h as *const c_void,
            bsys::cudaDataType::CUDA_R_16BF,
            d as i32,
            (&beta as *const f32).cast::<c_void>(),
            c as *mut c_void,
            bsys::cudaDataType::CUDA_R_16BF,
            v as i32,
            bsys::cublasComputeType_t::CUBLAS_COMPUTE_32F,
            bsys::cublasGemmAlgo_t::CUBLAS_GEMM_DEFAULT,
        )
    }
    .map_err(|e| device_error("cuBLAS GEMM", e))
}

/// Median microseconds of `iters` runs of `f`, each between two events, after a warm-up. The runs
/// are queued back to back and the host waits once at the end, as a decode loop launches them: a
/// wait after each run would add the host's launch latency to the next run's time.
fn time(
    ctx: &Arc<CudaContext>,
    stream: &Arc<CudaStream>,
    iters: usize,
    mut f: impl FnMut() -> Result<()>,
) -> Result<f64> {
    for _ in 0..WARMUP {
        f()?;
    }
    let timing = Some(sys::CUevent_flags::CU_EVENT_DEFAULT);
    let event = || ctx.new_event(timing).map_err(|e| device_error("event", e));
    let mut events = Vec::with_capacity(iters);
    for _ in 0..iters {
        let (start, end) = (event()?, event()?);
        start.record(stream).map_err(|e| device_error("event", e))?;
        f()?;
        end.record(stream).map_err(|e| device_error("event", e))?;
        events.push((start, end));
    }
    stream.synchronize().map_err(|e| device_error("synchronize", e))?;
    let mut times = Vec::with_capacity(iters);
    for (start, end) in &events {
        times.push(f64::from(start.elapsed_ms(end).map_err(|e| device_error("event", e))?) * 1e3);
    }
    Ok(median(&mut times))
}

fn alloc<T: cudarc::driver::DeviceRepr>(stream: &Arc<CudaStream>, n: usize) -> Result<CudaSlice<T>> {
    // SAFETY: every buffer is written before it is read (or only timed).
    unsafe { stream.alloc::<T>(n) }.map_err(|e| device_error(&format!("alloc of {n} elements"), e))
}

/// `n` random non-zero bf16 values in ±[0.001, 0.06]: a 64 MiB random block, repeated.
fn random_bf16(stream: &Arc<CudaStream>, n: usize, seed: u64) -> Result<CudaSlice<u16>> {
    let block_len = n.min(32 << 20);
    let mut state = seed | 1;
    let block: Vec<u16> = (0..block_len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let mag = 0.001 + (state >> 40) as f32 / (1u64 << 24) as f32 * 0.059;
            let x = if state & 1 == 0 { mag } else { -mag };
            (x.to_bits() >> 16) as u16
        })
        .collect();
    let dst = alloc::<u16>(stream, n)?;
    let p = dst.device_ptr(stream).0;
    let mut done = 0;
    while done < n {
        let len = block_len.min(n - done);
        // SAFETY: `dst` holds n elements; the block outlives the synchronisation below.
        unsafe { result::memcpy_htod_async(p + (done * 2) as u64, &block[..len], stream.cu_stream()) }
            .map_err(|e| device_error("upload", e))?;
        done += len;
    }
    stream.synchronize().map_err(|e| device_error("synchronize", e))?;
    Ok(dst)
}
