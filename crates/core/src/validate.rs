//! Validation of a sampling call against a head, before any work (DESIGN.md §3.5).

use crate::constraints::RowTransform;
use crate::error::{Error, Result};
use crate::params::Request;
use crate::tensor::LmHeadRef;
use crate::truncation::MAX_TOP_LOGPROBS;

/// The largest number of samples per row.
pub const MAX_SAMPLES: u32 = 1 << 24;

/// Checks the request on its own and against a head of `dim` columns.
pub fn request(req: &Request<'_>, dim: usize) -> Result<()> {
    let h = &req.hidden;
    if h.dim != dim {
        return Err(Error::Shape(format!("H has D = {}, the LM head has D = {dim}", h.dim)));
    }
    if h.batch == 0 || h.data.len() != h.batch * h.dim {
        return Err(Error::Shape(format!("H has {} elements, expected B × D = {} × {}", h.data.len(), h.batch, h.dim)));
    }
    if req.rows.len() != h.batch {
        return Err(Error::Shape(format!("{} row parameters for a batch of {} rows", req.rows.len(), h.batch)));
    }
    if req.samples == 0 || req.samples > MAX_SAMPLES {
        return Err(Error::Param {
            row: None,
            what: format!("samples per row must be in 1..={MAX_SAMPLES}, got {}", req.samples),
        });
    }
    for (b, row) in req.rows.iter().enumerate() {
        let t = row.temperature;
        if !t.is_finite() || t < 0.0 {
            return Err(Error::Param { row: Some(b), what: format!("temperature must be finite and >= 0, got {t}") });
        }
        if t > 0.0 && !(1.0 / t).is_finite() {
            return Err(Error::Param { row: Some(b), what: format!("temperature {t} is so small that 1/T overflows") });
        }
    }
    Ok(())
}

/// Checks that a candidate buffer holds one slot per row and sample.
pub fn candidates(req: &Request<'_>, len: usize) -> Result<()> {
    if len != req.outputs() {
        return Err(Error::Shape(format!("candidate buffer holds {len}, expected B × samples = {}", req.outputs())));
    }
    Ok(())
}

/// Checks the request's constraints against a vocabulary of `vocab_size` tokens and prepares one
/// transform per row (identity transforms when the request has none).
pub fn transforms<'a>(req: &Request<'a>, vocab_size: u32) -> Result<Vec<RowTransform<'a>>> {
    match req.constraints {
        None => Ok(vec![RowTransform::default(); req.rows.len()]),
        Some(c) if c.len() != req.rows.len() => {
            Err(Error::Shape(format!("{} row constraints for a batch of {} rows", c.len(), req.rows.len())))
        }
        Some(c) => c.iter().enumerate().map(|(b, c)| RowTransform::new(c, vocab_size, b)).collect(),
    }
}

/// Checks the request's truncation and top-N logprobs, which rank the whole vocabulary: a head
/// of `rows` tokens from `vocab_offset` must be all of it.
pub fn truncation(req: &Request<'_>, vocab_offset: u32, rows: usize, vocab_size: u32) -> Result<()> {
    if let Some(t) = req.truncation {
        if t.len() != req.rows.len() {
            return Err(Error::Shape(format!("{} row truncations for a batch of {} rows", t.len(), req.rows.len())));
        }
        t.iter().enumerate().try_for_each(|(b, t)| t.check(b))?;
    }
    top_logprobs(req.top_logprobs)?;
    if req.truncation.is_some() || req.top_logprobs > 0 {
        whole_vocabulary(vocab_offset, rows, vocab_size)?;
    }
    Ok(())
}

/// Checks a count of top-N logprobs per row: at most [`MAX_TOP_LOGPROBS`].
pub fn top_logprobs(n: u32) -> Result<()> {
    if n > MAX_TOP_LOGPROBS {
        return Err(Error::Param {
            row: None,
            what: format!("top logprobs: at most {MAX_TOP_LOGPROBS} per row, got {n}"),
        });
    }
    Ok(())
}

/// Checks that a head of `rows` tokens from `vocab_offset` is the whole vocabulary of `vocab_size`
/// tokens, as truncation and top-N logprobs need: they rank every token.
pub fn whole_vocabulary(vocab_offset: u32, rows: usize, vocab_size: u32) -> Result<()> {
    if vocab_offset != 0 || rows != vocab_size as usize {
        return Err(Error::Param {
            row: None,
            what: format!(
                "truncation and top-N logprobs rank the whole vocabulary of {vocab_size} tokens; this head is the shard [{vocab_offset}, {})",
                u64::from(vocab_offset) + rows as u64
            ),
        });
    }
    Ok(())
}

/// Checks a head and a request together.
pub fn call(head: &LmHeadRef<'_>, req: &Request<'_>) -> Result<()> {
    head.validate()?;
    request(req, head.dim)?;
    transforms(req, head.vocab_size)?;
    truncation(req, head.vocab_offset, head.rows, head.vocab_size)
}
