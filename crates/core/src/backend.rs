//! The trait every backend implements, and the handle of an LM head resident on a backend.

use std::any::Any;

use crate::error::{Error, Result};
use crate::features::{Feature, Features};
use crate::logsumexp::LogSumExp;
use crate::output::SampleOutput;
use crate::params::Request;
use crate::tensor::{validate_head_shape, DType, LmHeadRef};
use crate::validate;

/// One device a backend can run on, with the limits that matter for sampling.
#[derive(Debug, Clone, Default)]
pub struct DeviceInfo {
    pub name: String,
    /// Memory the device offers, in bytes, where known.
    pub memory_bytes: Option<u64>,
    /// Multiprocessors, compute units or CPU threads.
    pub compute_units: Option<u32>,
    /// Further limits and facts, one `key: value` line each.
    pub details: Vec<String>,
}

/// What `flashsampling info` prints for a backend.
#[derive(Debug, Clone)]
pub struct BackendInfo {
    pub backend: &'static str,
    pub devices: Vec<DeviceInfo>,
}

/// An LM head (or vocabulary shard) loaded once by a backend and reused across calls: a resident
/// copy on the host for the CPU backend, device memory for the GPU backends.
pub struct LmHead {
    backend: &'static str,
    pub rows: usize,
    pub dim: usize,
    pub dtype: DType,
    pub vocab_offset: u32,
    pub vocab_size: u32,
    storage: Box<dyn Any + Send + Sync>,
}

impl std::fmt::Debug for LmHead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LmHead")
            .field("backend", &self.backend)
            .field("rows", &self.rows)
            .field("dim", &self.dim)
            .field("dtype", &self.dtype)
            .field("vocab_offset", &self.vocab_offset)
            .field("vocab_size", &self.vocab_size)
            .finish()
    }
}

impl LmHead {
    /// Wraps a backend's storage for the head described by `head`.
    pub fn new(backend: &'static str, head: &LmHeadRef<'_>, storage: impl Any + Send + Sync) -> Self {
        LmHead {
            backend,
            rows: head.rows,
            dim: head.dim,
            dtype: head.weights.dtype(),
            vocab_offset: head.vocab_offset,
            vocab_size: head.vocab_size,
            storage: Box::new(storage),
        }
    }

    /// Wraps storage the backend did not load from host weights (device memory a caller owns):
    /// a `rows × dim` head of `dtype`, the shard at `vocab_offset` of `vocab_size` tokens.
    pub fn external(
        backend: &'static str,
        dtype: DType,
        (rows, dim): (usize, usize),
        (vocab_offset, vocab_size): (u32, u32),
        storage: impl Any + Send + Sync,
    ) -> Result<Self> {
        validate_head_shape(rows, dim, vocab_offset, vocab_size)?;
        Ok(LmHead { backend, rows, dim, dtype, vocab_offset, vocab_size, storage: Box::new(storage) })
    }

    pub fn backend(&self) -> &'static str {
        self.backend
    }

    /// The backend's own storage; an error if another backend loaded this head.
    pub fn storage<T: Any>(&self, used_with: &'static str) -> Result<&T> {
        self.storage.downcast_ref::<T>().filter(|_| self.backend == used_with).ok_or_else(|| Error::ForeignLmHead {
            loaded_by: self.backend.to_string(),
            used_with: used_with.to_string(),
        })
    }
}

/// A sampling backend. Implementations provide [`Backend::load_lm_head`] and
/// [`Backend::launch`]; callers use [`Backend::sample`] or, to combine vocabulary shards
/// themselves, [`Backend::sample_candidates`]. `Any` lets a caller that holds a `dyn Backend`
/// reach a backend's own API (the C ABI's CUDA path: `&dyn Any` then `downcast_ref`).
pub trait Backend: Any + Send + Sync {
    /// Short name: `cpu`, `cpu-reference`, `cuda`, `wgpu`.
    fn name(&self) -> &'static str;

    /// Devices and limits.
    fn info(&self) -> BackendInfo;

    /// Loads (uploads) an LM head or vocabulary shard once, for use by many calls.
    fn load_lm_head(&self, head: LmHeadRef<'_>) -> Result<LmHead>;

    /// Writes into `out[b * samples + s]` the winning packed candidate of every row and sample over
    /// the head's shard. Called by the provided methods with validated inputs only.
    fn launch(&self, head: &LmHead, req: &Request<'_>, out: &mut [u64]) -> Result<()>;

    /// As [`Backend::launch`], and also writes each row's log-normaliser partial and top-N list
    /// into `outputs`. Backends offering [`Feature::Logprobs`] override it.
    fn launch_with_outputs(
        &self,
        _head: &LmHead,
        _req: &Request<'_>,
        _out: &mut [u64],
        _outputs: RowOutputs<'_>,
    ) -> Result<()> {
        Err(Error::Unsupported { backend: self.name().into(), what: Feature::Logprobs.name().into() })
    }

    /// The optional features this backend offers; requests that use another are refused with
    /// [`Error::Unsupported`] before any work.
    fn features(&self) -> Features {
        Features::NONE
    }

    /// Validates, then writes the shard's packed candidates and each row's log-normaliser partial
    /// (merge partials of several shards with [`LogSumExp::merge`]). Top-N logprobs come from
    /// [`Backend::sample`] only.
    fn sample_candidates_with_normalizer(
        &self,
        head: &LmHead,
        req: &Request<'_>,
        out: &mut [u64],
        norms: &mut [LogSumExp],
    ) -> Result<()> {
        if norms.len() != req.rows.len() {
            return Err(Error::Shape(format!(
                "{} normaliser slots for a batch of {} rows",
                norms.len(),
                req.rows.len()
            )));
        }
        let req = &Request { logprobs: true, ..*req };
        refuse_top_logprobs(req)?;
        self.check(head, req, out)?;
        self.launch_with_outputs(head, req, out, RowOutputs { norms, top: &mut [] })
    }

    /// The checks of every sampling entry point.
    fn check(&self, head: &LmHead, req: &Request<'_>, out: &[u64]) -> Result<()> {
        if head.backend() != self.name() {
            return Err(Error::ForeignLmHead {
                loaded_by: head.backend().to_string(),
                used_with: self.name().to_string(),
            });
        }
        validate::request(req, head.dim)?;
        if let Some(missing) = req.features().first_missing(self.features()) {
            return Err(Error::Unsupported { backend: self.name().into(), what: missing.name().into() });
        }
        validate::transforms(req, head.vocab_size)?;
        validate::truncation(req, head.vocab_offset, head.rows, head.vocab_size)?;
        validate::candidates(req, out.len())
    }

    /// Validates, then writes the shard's packed candidates (see [`crate::candidate`]). Candidates
    /// of several shards combine with [`crate::candidate::merge_into`].
    fn sample_candidates(&self, head: &LmHead, req: &Request<'_>, out: &mut [u64]) -> Result<()> {
        let req = &Request { logprobs: false, ..*req };
        refuse_top_logprobs(req)?;
        self.check(head, req, out)?;
        self.launch(head, req, out)
    }

    /// Validates, samples, and decodes tokens, row statuses and the logprobs asked for.
    fn sample(&self, head: &LmHead, req: &Request<'_>) -> Result<SampleOutput> {
        let mut candidates = vec![crate::candidate::EMPTY; req.outputs()];
        let samples = req.samples as usize;
        if !req.logprobs && req.top_logprobs == 0 {
            self.sample_candidates(head, req, &mut candidates)?;
            return Ok(SampleOutput::from_candidates(&candidates, samples));
        }
        self.check(head, req, &candidates)?;
        let n = req.top_logprobs as usize;
        let mut norms = vec![LogSumExp::EMPTY; req.rows.len()];
        let mut top = vec![crate::candidate::EMPTY; req.rows.len() * n];
        self.launch_with_outputs(head, req, &mut candidates, RowOutputs { norms: &mut norms, top: &mut top })?;
        let out = SampleOutput::from_candidates(&candidates, samples).with_logprobs(&candidates, &norms, req.rows);
        Ok(if n > 0 { out.with_top_logprobs(&top, n, &norms) } else { out })
    }
}

/// The candidate entry points have nowhere to write top-N lists.
fn refuse_top_logprobs(req: &Request<'_>) -> Result<()> {
    if req.top_logprobs > 0 {
        return Err(Error::Param { row: None, what: "top-N logprobs are returned by sample() only".into() });
    }
    Ok(())
}

/// What [`Backend::launch_with_outputs`] writes besides the candidates.
pub struct RowOutputs<'o> {
    /// `norms[b]`: row `b`'s log-normaliser partial over the shard; over the survivors for rows
    /// that truncation cuts (the distribution the row samples from).
    pub norms: &'o mut [LogSumExp],
    /// `top[b * n + i]`, `n = req.top_logprobs`: packed `(y, token)` (no noise) of row `b`'s
    /// `i`-th most likely surviving token; [`crate::candidate::EMPTY`] where it has fewer.
    pub top: &'o mut [u64],
}
