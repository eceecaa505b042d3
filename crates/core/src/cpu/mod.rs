//! The CPU backends: [`CpuBackend`], the fast default that runs anywhere, and
//! [`ReferenceBackend`], the definition of the contract written out as plainly as possible.

mod dot;
mod fused;
mod reference;
mod winner;

pub use fused::CpuBackend;
pub use reference::ReferenceBackend;
pub(crate) use winner::Winner;

use crate::backend::LmHead;
use crate::error::Result;
use crate::tensor::{LmHeadRef, OwnedTensor};

/// The CPU backends' resident head: an owned copy of the weights.
struct HostHead(OwnedTensor);

fn load_host_head(backend: &'static str, head: LmHeadRef<'_>) -> Result<LmHead> {
    head.validate()?;
    Ok(LmHead::new(backend, &head, HostHead(head.weights.into())))
}

fn host_head<'h>(backend: &'static str, head: &'h LmHead) -> Result<LmHeadRef<'h>> {
    let weights = head.storage::<HostHead>(backend)?.0.view();
    Ok(LmHeadRef {
        weights,
        rows: head.rows,
        dim: head.dim,
        vocab_offset: head.vocab_offset,
        vocab_size: head.vocab_size,
    })
}
