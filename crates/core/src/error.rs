//! Typed errors. Every one is reported before any work starts (DESIGN.md §3.5).

/// Errors reported by every backend and by input validation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A buffer length or dimension does not match the shape it is declared with.
    #[error("shape error: {0}")]
    Shape(String),
    /// A per-row or per-call parameter is out of its domain.
    #[error("invalid parameter{}: {what}", row.map(|r| format!(" in row {r}")).unwrap_or_default())]
    Param { row: Option<usize>, what: String },
    /// The backend cannot run in this build or on this machine.
    #[error("backend {backend} is not available: {reason}")]
    Unavailable { backend: String, reason: String },
    /// The backend runs, but not with these inputs (dtype, alignment, size limit).
    #[error("backend {backend} does not support this input: {what}")]
    Unsupported { backend: String, what: String },
    /// An LM head loaded by one backend was handed to another.
    #[error("the LM head was loaded by backend {loaded_by}, not by {used_with}")]
    ForeignLmHead { loaded_by: String, used_with: String },
    /// The device or its driver failed while running.
    #[error("device error in backend {backend}: {what}")]
    Device { backend: String, what: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn shape(msg: impl Into<String>) -> Self {
        Error::Shape(msg.into())
    }

    pub(crate) fn param(row: Option<usize>, what: impl Into<String>) -> Self {
        Error::Param { row, what: what.into() }
    }
}
