//! The CUDA C++ kernel sources, their entry points, and NVRTC compilation.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use cudarc::nvrtc::{compile_ptx_with_opts, CompileOptions, Ptx};
use flashsampling_core::{DType, Error, Result};

/// The kernels, one translation unit for NVRTC: the shared definitions first, then each kernel file.
pub const SOURCE: &str = concat!(
    include_str!("../kernels/common.cuh"),
    include_str!("../kernels/fused_simt.cu"),
    include_str!("../kernels/wgmma.cuh"),
    include_str!("../kernels/tile_lists.cuh"),
    include_str!("../kernels/tma.cuh"),
    include_str!("../kernels/fused_mma.cu"),
    include_str!("../kernels/fused_wide.cu"),
    include_str!("../kernels/logits.cu"),
    include_str!("../kernels/decode.cu"),
    include_str!("../kernels/norms.cu"),
    include_str!("../kernels/finish.cu"),
    include_str!("../kernels/select.cu"),
    include_str!("../kernels/finish_whole.cu"),
);

/// Entry point that turns candidates into tokens and row statuses on the device.
pub const DECODE: &str = "decode_candidates";

/// Entry points that keep the most likely keys of each ranking row (select.cu): from its scaled
/// logits, counting (and merging every row's log-normaliser partials), then gathering, whose last
/// block per row sorts and finishes a truncated row (from its whole row, finish_whole.cu, when the
/// kept keys cannot certify it); or, in one launch, from its per-tile lists (tile_lists.cuh).
pub const SELECT: [&str; 3] = ["select_count", "select_gather", "select_lists"];

/// Entry point that merges each row's log-normaliser partials (norms.cu).
pub const MERGE_NORMS: &str = "merge_norms";

/// Entry point that writes the logprobs of decoded samples and the rows' log-normalisers (norms.cu).
pub const DECODE_LOGPROBS: &str = "decode_logprobs";

/// Entry point that writes each row's top-N tokens and logprobs from the selection's kept keys
/// (select.cu).
pub const DECODE_TOP: &str = "decode_top";

/// Entry point that writes the per-row table of a caller's `[batch][words]` device mask (decode.cu).
pub const DEVICE_MASK_ROWS: &str = "device_mask_rows";

/// Entry point that turns a caller's per-row token lists in device memory into the `_ex` kernels'
/// adjustment tables and flags bad rows (decode.cu).
pub const DEVICE_ADJUSTMENTS: &str = "device_adjustments";

/// Entry point that writes the ranking tables of a caller's per-row truncation in device memory and
/// top-N lists (select.cu).
pub const DEVICE_RANK_ROWS: &str = "device_rank_rows";

/// Threads per block of the gathering entry point of [`SELECT`] (`SELECT_THREADS` in select.cu).
pub const SELECT_THREADS: u32 = 1024;
/// Threads per block of the counting entry point (`CHUNK_THREADS` in select.cu).
pub const SELECT_CHUNK_THREADS: u32 = 256;
/// Threads per block of the entry point that merges per-tile lists (`LISTS_THREADS` in select.cu),
/// and the most log-normaliser slots per row it merges (`LISTS_MAX_SLOTS`).
pub const SELECT_LISTS_THREADS: u32 = 256;
pub const SELECT_LISTS_MAX_SLOTS: u32 = 1024;

/// Architectures every kernel variant must compile for (checked in CI without a GPU).
pub const CI_ARCHS: [&str; 3] = ["sm_80", "sm_90a", "sm_100a"];

fn dtype_tag(d: DType) -> &'static str {
    match d {
        DType::Bf16 => "Bf16",
        DType::F16 => "F16",
        DType::F32 => "F32",
    }
}

/// Hidden rows per register tile of the CUDA-core fused kernel (`R` in fused_simt.cu): one variant
/// for small batches, one that keeps up to 16 rows in a single pass over `W`.
pub const FUSED_ROWS: [u32; 2] = [4, 16];

/// The register-tile height for a batch of `batch` rows.
pub fn fused_rows(batch: u32) -> u32 {
    if batch <= FUSED_ROWS[0] {
        FUSED_ROWS[0]
    } else {
        FUSED_ROWS[1]
    }
}

/// Entry point of the CUDA-core fused kernel for weights `w`, hidden states `h` and tile height
/// `rows`.
pub fn fused_name(w: DType, h: DType, rows: u32) -> String {
    format!("fused_{}_{}_r{rows}", dtype_tag(w), dtype_tag(h))
}

/// n-tiles of 8 hidden rows of the tensor-core kernel's variants (`NT` in fused_mma.cu).
pub const MMA_N_TILES: [u32; 5] = [1, 2, 4, 8, 16];
/// Threads per block of the tensor-core kernel (`MMA_THREADS` in fused_mma.cu): 8 multiplying
/// warps and 8 epilogue warps.
pub const MMA_THREADS: u32 = (8 + 8) * 32;

/// Whether the tensor-core kernel takes these dtypes: both 16-bit and the same (the mma's operands).
pub fn mma_supported(w: DType, h: DType) -> bool {
    w == h && w != DType::F32
}

/// The tensor-core variant (n-tiles) for a pass of `rows` hidden rows, among the variants of at
/// most `max_tiles` n-tiles: the smallest that holds them, or the largest.
pub fn mma_n_tiles(rows: u32, max_tiles: u32) -> u32 {
    MMA_N_TILES.into_iter().filter(|&nt| nt <= max_tiles).find(|&nt| 8 * nt >= rows).unwrap_or(max_tiles)
}

/// Entry point of the tensor-core fused kernel for 16-bit type `e` and `n_tiles`.
pub fn mma_name(e: DType, n_tiles: u32) -> String {
    format!("fused_mma_{}_n{n_tiles}", dtype_tag(e))
}

/// n-tiles of the wide variants (`NT` in fused_wide.cu, sm_90a only): one pass of up to 8·NT rows,
/// scored by the multiplying warps themselves; plain launches only (no extras).
pub const WIDE_N_TILES: [u32; 1] = [32];
/// Threads per block of the wide variants: the 8 multiplying warps.
pub const WIDE_THREADS: u32 = 8 * 32;

/// Whether `arch` has the wide variants (they multiply with wgmma).
pub fn has_wide(arch: &str) -> bool {
    arch == "sm_90a"
}

/// Entry point of the wide variant for 16-bit type `e` and `n_tiles`.
pub fn wide_name(e: DType, n_tiles: u32) -> String {
    format!("fused_wide_{}_n{n_tiles}", dtype_tag(e))
}

/// Dynamic shared memory of a wide variant, as `WideShared` in fused_wide.cu computes it: each
/// warp's scratch of 32 rows × 20 floats, the rows' parameters (24 bytes each), 64 bytes of the
/// stages' barriers, 1024 bytes of slack to align the stages, and as many stages as fit in one
/// block per SM (227 KB), at most 6.
pub fn wide_shared_bytes(n_tiles: u32) -> u32 {
    let rest = 8 * 32 * 20 * 4 + 8 * n_tiles * 24 + 64 + 1024;
    let stage = 64 * (8 * n_tiles + 8 * 16) * 2;
    let stages = ((227 * 1024 - rest) / stage).min(6);
    stages * stage + rest
}

/// The NVRTC target of a device of compute capability `major.minor`: Hopper's own (`sm_90a`, where
/// wgmma lives) on 9.0.
pub fn target_arch(major: i32, minor: i32) -> String {
    let suffix = if (major, minor) == (9, 0) { "a" } else { "" };
    format!("sm_{major}{minor}{suffix}")
}

/// Whether the tensor-core variant of `n_tiles` multiplies with wgmma when compiled for `arch`
/// (`wgmma_variant` in fused_mma.cu: sm_90a, from `MMA_WGMMA_MIN_NT` = 4 n-tiles).
pub fn mma_uses_wgmma(arch: &str, n_tiles: u32) -> bool {
    arch == "sm_90a" && n_tiles >= 4
}

/// Whether the tensor-core variant of `n_tiles` fills its stages by TMA when compiled for `arch`
/// (`RingOf` in fused_mma.cu: the 16-n-tile wgmma variant); its launches pass tensor maps of W and
/// H, the other variants' zeroed ones.
pub fn mma_uses_tma(arch: &str, n_tiles: u32) -> bool {
    mma_uses_wgmma(arch, n_tiles) && n_tiles == 16
}

/// Dynamic shared memory of a tensor-core variant compiled for `arch`, as `MmaShared` in
/// fused_mma.cu computes it: the step buffer (8·NT rows × 128 tokens of f32 logits, rows padded by
/// 4 floats on wgmma and 8 on mma.sync), for the `_ex` variants 16 log-normaliser partials of 8
/// bytes per row (`MMA_NORM_LANES`), 1024 bytes of slack to align the stages; then as many
/// pipeline stages as fit in the block's share of 228 KB (two blocks per SM up to 4 n-tiles, one
/// from 8; 1 KB of each kept by the hardware), at most 4 (6 on wgmma, whose products stay in
/// flight a chunk), each one 64-element K chunk of the 8·NT rows of H (at least 16) and of the 8
/// warps' tiles of 16 W rows.
pub fn mma_shared_bytes(arch: &str, n_tiles: u32, extras: bool) -> u32 {
    let wgmma = mma_uses_wgmma(arch, n_tiles);
    let pad = if wgmma { 4 } else { 8 };
    let buffer = 8 * n_tiles * (8 * 16 + pad) * 4;
    let norms = if extras { 8 * n_tiles * 16 * 8 } else { 0 };
    let rest = buffer + norms + 1024;
    let min_blocks = if n_tiles <= 4 { 2 } else { 1 };
    let budget = (228 / min_blocks - 1) * 1024;
    let stage = 64 * ((8 * n_tiles).max(16) + 8 * 16) * 2;
    let stages = ((budget - rest) / stage).min(if wgmma { 6 } else { 4 });
    stages * stage + rest
}

/// The entry point that also takes [`crate::launch::Extras`] (constraints, log-normaliser
/// partials), of the fused kernel `name`.
pub fn with_extras(name: &str) -> String {
    format!("{name}_ex")
}

/// Element type of materialised logits the unfused path samples from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogitsDType {
    F32,
    Bf16,
}

/// Entry point of the sampling-from-logits kernel.
pub fn logits_name(d: LogitsDType) -> &'static str {
    match d {
        LogitsDType::F32 => "logits_f32",
        LogitsDType::Bf16 => "logits_bf16",
    }
}

/// Every entry point in [`SOURCE`] compiled for `arch`.
pub fn entry_points(arch: &str) -> Vec<String> {
    let all = [DType::Bf16, DType::F16, DType::F32];
    let mut fused: Vec<String> =
        all.iter().flat_map(|&w| all.iter().flat_map(move |&h| FUSED_ROWS.map(|r| fused_name(w, h, r)))).collect();
    fused.extend([DType::Bf16, DType::F16].iter().flat_map(|&e| MMA_N_TILES.map(|nt| mma_name(e, nt))));
    let mut names: Vec<String> = fused.iter().map(|n| with_extras(n)).collect();
    names.extend(fused);
    names.extend([LogitsDType::F32, LogitsDType::Bf16].map(|d| logits_name(d).to_string()));
    names.push(DECODE.to_string());
    names.extend(SELECT.map(String::from));
    names.push(MERGE_NORMS.to_string());
    names.push(DECODE_LOGPROBS.to_string());
    names.push(DECODE_TOP.to_string());
    names.push(DEVICE_MASK_ROWS.to_string());
    names.push(DEVICE_RANK_ROWS.to_string());
    names.push(DEVICE_ADJUSTMENTS.to_string());
    if has_wide(arch) {
        names.extend([DType::Bf16, DType::F16].iter().flat_map(|&e| WIDE_N_TILES.map(|nt| wide_name(e, nt))));
    }
    names
}

/// Set to compile the kernels with line information, so that a profiler can attribute its samples
/// to lines of [`SOURCE`] (Nsight Compute: `--import-source yes --source-folders` a folder holding
/// `sample.cu`, the concatenation of the kernel files in [`SOURCE`]'s order).
pub const LINE_INFO_VAR: &str = "FLASHSAMPLING_NVRTC_LINE_INFO";

/// Compiles [`SOURCE`] for `arch` (e.g. `sm_90a`). Precise math: no fast-math, no FMA contraction
/// of the score (the kernels use explicitly rounded mul/add where it matters).
pub fn compile(arch: &str) -> Result<Ptx> {
    let mut options = vec![format!("--gpu-architecture={arch}"), "--std=c++17".into()];
    if std::env::var_os(LINE_INFO_VAR).is_some() {
        options.push("--generate-line-info".into());
    }
    let opts = CompileOptions {
        use_fast_math: Some(false),
        ftz: Some(false),
        prec_div: Some(true),
        prec_sqrt: Some(true),
        options,
        name: Some("sample.cu".into()),
        ..Default::default()
    };
    compile_ptx_with_opts(SOURCE, opts).map_err(|e| Error::Device {
        backend: crate::NAME.into(),
        what: format!("NVRTC failed to compile the kernels for {arch}: {e}"),
    })
}

/// [`compile`], once per architecture and process: every context on that architecture loads the
/// same PTX (NVRTC takes seconds for all variants).
pub fn compile_cached(arch: &str) -> Result<Ptx> {
    static CACHE: OnceLock<Mutex<HashMap<String, String>>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    let mut cache = cache.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(ptx) = cache.get(arch) {
        return Ok(Ptx::from_src(ptx.clone()));
    }
    let text = compile(arch)?.to_src();
    cache.insert(arch.to_string(), text.clone());
    Ok(Ptx::from_src(text))
}
