//! The optional inputs of `flashsampling_sample_ex` (constraints, truncation) and their
//! conversion into the core's per-row types, after the C-specific checks: NULL pointers, lengths,
//! CSR offsets, token ranges. Domain checks (penalty values, duplicates, top-p range ...) are the
//! core's, so both APIs refuse the same requests with the same messages.

use flashsampling::core::Penalties;
use flashsampling::{RowConstraints, Truncation};

use crate::buffers::{shape, slice};
use crate::error::{fs_status, Failure};

/// Sparse per-row `(token, value)` lists in CSR layout: row `b` holds entries
/// `offsets[b] .. offsets[b + 1]` of `tokens` and `values`. `offsets` has `batch + 1` elements,
/// starts at 0, never decreases and ends at `len`, the length of `tokens` and `values`.
/// `offsets` NULL means no list for any row; `tokens` and `values` may be NULL when `len` is 0.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct fs_token_floats {
    pub offsets: *const usize,
    pub tokens: *const u32,
    pub values: *const f32,
    pub len: usize,
}

/// As `fs_token_floats`, with integer values (token counts).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct fs_token_counts {
    pub offsets: *const usize,
    pub tokens: *const u32,
    pub counts: *const u32,
    pub len: usize,
}

/// Penalty coefficients of one row, applied to the tokens of its `penalty_counts` list: a token
/// seen `c > 0` times gets `l / repetition` (if `l > 0`) or `l * repetition` (otherwise), then
/// `- presence - c * frequency`. `{1, 0, 0}` changes nothing; `repetition` must be > 0, all finite.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct fs_penalty_params {
    pub repetition: f32,
    pub presence: f32,
    pub frequency: f32,
}

/// Truncation of one row, after constraints and temperature, in the order top-k, top-p, min-p.
/// Tokens rank by probability, ties by lower token id; the survivors are renormalised.
/// All off: `{0, 1.0f, 0.0f}` (a zeroed struct has `top_p` 0, which is refused).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct fs_truncation {
    /// Keep exactly the `top_k` most likely tokens (ties at the cut-off: the lowest ids);
    /// 0: off. At most 1024.
    pub top_k: u32,
    /// Keep the shortest most-likely prefix whose mass reaches `top_p`, in (0, 1]; 1: off.
    pub top_p: f32,
    /// Keep tokens at least `min_p` times as likely as the most likely one, in [0, 1]; 0: off.
    pub min_p: f32,
}

/// Optional per-row inputs of `flashsampling_sample_ex`. Zero-initialise it (`{0}`) and set what
/// you use: a NULL pointer means "not used". Any non-NULL constraint member asks for per-row
/// constraints, and a non-NULL `truncation` for truncation: backends without them
/// (`flashsampling_context_features`) refuse the call with FS_ERROR_UNSUPPORTED.
///
/// Constraints act on the logits before temperature, in the order penalties, bias, mask.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct fs_sample_options {
    /// Allowed tokens: `batch * ceil(V / 32)` words, row-major, where V is the head's whole
    /// vocabulary (`vocab_size`, shards included). Bit `t % 32` of a row's word `t / 32` set:
    /// token `t` allowed. A row that allows nothing gets FS_ROW_ALL_MASKED.
    pub mask: *const u32,
    /// Number of words at `mask`.
    pub mask_len: usize,
    /// Per-row logit bias, added to the logit; each token at most once per row.
    pub bias: fs_token_floats,
    /// Per-row counts of the tokens generated so far, each token at most once per row.
    pub penalty_counts: fs_token_counts,
    /// `penalties_len` (= batch) coefficients; NULL: `{1, 0, 0}` for every row.
    pub penalties: *const fs_penalty_params,
    pub penalties_len: usize,
    /// `truncation_len` (= batch) rows of truncation; NULL: none.
    pub truncation: *const fs_truncation,
    pub truncation_len: usize,
}

/// The caller's options as the core's per-row types: the mask and coefficients borrowed from the
/// caller for the call, the sparse lists copied into the core's `(token, value)` pairs.
pub(crate) struct Options<'a> {
    mask: Option<&'a [u32]>,
    words: usize,
    bias: Option<Csr<f32>>,
    counts: Option<Csr<u32>>,
    penalties: Option<&'a [fs_penalty_params]>,
    pub(crate) truncation: Option<Vec<Truncation>>,
}

/// A checked CSR list: row `b` is `entries[offsets[b]..offsets[b + 1]]`.
struct Csr<T> {
    offsets: Vec<usize>,
    entries: Vec<(u32, T)>,
}

impl<T> Csr<T> {
    fn row(&self, b: usize) -> &[(u32, T)] {
        &self.entries[self.offsets[b]..self.offsets[b + 1]]
    }
}

impl<'a> Options<'a> {
    /// Reads and checks `options` (NULL: none) for `batch` rows over a vocabulary of `vocab` tokens.
    ///
    /// # Safety
    /// `options` and its pointers must be NULL or valid for their stated lengths.
    pub(crate) unsafe fn read(options: *const fs_sample_options, batch: usize, vocab: u32) -> Result<Self, Failure> {
        let o = match unsafe { options.as_ref() } {
            Some(o) => *o,
            None => fs_sample_options::NONE,
        };
        let words = vocab.div_ceil(32) as usize;
        let mask_words = batch.checked_mul(words).ok_or_else(|| shape("batch × mask words overflows".into()))?;
        Ok(Options {
            mask: unsafe { optional(o.mask, o.mask_len, mask_words, "options.mask") }?,
            words,
            bias: unsafe {
                csr(o.bias.offsets, o.bias.tokens, o.bias.values, o.bias.len, batch, vocab, "options.bias")
            }?,
            counts: unsafe {
                let c = &o.penalty_counts;
                csr(c.offsets, c.tokens, c.counts, c.len, batch, vocab, "options.penalty_counts")
            }?,
            penalties: unsafe { optional(o.penalties, o.penalties_len, batch, "options.penalties") }?,
            truncation: unsafe { optional(o.truncation, o.truncation_len, batch, "options.truncation") }?
                .map(|rows| rows.iter().map(|&t| t.into()).collect()),
        })
    }

    /// One `RowConstraints` per row, or `None` when no constraint member was given.
    pub(crate) fn constraints(&self, batch: usize) -> Option<Vec<RowConstraints<'_>>> {
        let used = self.mask.is_some() || self.bias.is_some() || self.counts.is_some() || self.penalties.is_some();
        used.then(|| (0..batch).map(|b| self.row(b)).collect())
    }

    fn row(&self, b: usize) -> RowConstraints<'_> {
        let coefficients = self.penalties.map(|p| p[b]);
        let penalties = Penalties {
            counts: self.counts.as_ref().map_or(&[][..], |c| c.row(b)),
            ..coefficients.map(Penalties::from).unwrap_or_default()
        };
        RowConstraints {
            allowed: self.mask.map(|m| &m[b * self.words..(b + 1) * self.words]),
            bias: self.bias.as_ref().map_or(&[][..], |c| c.row(b)),
            penalties,
        }
    }
}

impl fs_sample_options {
    const NONE: fs_sample_options = fs_sample_options {
        mask: std::ptr::null(),
        mask_len: 0,
        bias: fs_token_floats { offsets: std::ptr::null(), tokens: std::ptr::null(), values: std::ptr::null(), len: 0 },
        penalty_counts: fs_token_counts {
            offsets: std::ptr::null(),
            tokens: std::ptr::null(),
            counts: std::ptr::null(),
            len: 0,
        },
        penalties: std::ptr::null(),
        penalties_len: 0,
        truncation: std::ptr::null(),
        truncation_len: 0,
    };
}

impl From<fs_penalty_params> for Penalties<'_> {
    fn from(p: fs_penalty_params) -> Self {
        Penalties { counts: &[], repetition: p.repetition, presence: p.presence, frequency: p.frequency }
    }
}

impl From<fs_truncation> for Truncation {
    // The C "off" values (0, 1, 0) become `None` for top-k only: top-p 1 and min-p 0 truncate
    // nothing in the core either, and keeping them lets the core check their domains.
    fn from(t: fs_truncation) -> Self {
        Truncation { top_k: (t.top_k != 0).then_some(t.top_k), top_p: Some(t.top_p), min_p: Some(t.min_p) }
    }
}

/// An optional buffer: `None` when `ptr` is NULL, else checked as [`slice`].
unsafe fn optional<'a, T>(ptr: *const T, len: usize, expected: usize, name: &str) -> Result<Option<&'a [T]>, Failure> {
    if ptr.is_null() {
        return Ok(None);
    }
    Ok(Some(unsafe { slice(ptr, len, expected, name) }?))
}

/// Reads a CSR list (`None` when `offsets` is NULL) and checks its offsets and token range.
unsafe fn csr<T: Copy>(
    offsets: *const usize,
    tokens: *const u32,
    values: *const T,
    len: usize,
    batch: usize,
    vocab: u32,
    name: &str,
) -> Result<Option<Csr<T>>, Failure> {
    let offsets = unsafe { optional(offsets, batch + 1, batch + 1, &format!("{name}.offsets")) }?;
    let Some(offsets) = offsets else { return Ok(None) };
    check_offsets(offsets, len, name)?;
    let tokens = unsafe { entries(tokens, len, &format!("{name}.tokens")) }?;
    let values = unsafe { entries(values, len, &format!("{name}.values")) }?;
    if let Some(t) = tokens.iter().find(|&&t| t >= vocab) {
        return Err(Failure::new(
            fs_status::FS_ERROR_PARAM,
            format!("{name}: token {t} is outside the vocabulary of {vocab}"),
        ));
    }
    Ok(Some(Csr { offsets: offsets.to_vec(), entries: tokens.iter().copied().zip(values.iter().copied()).collect() }))
}

/// `len` entries of a CSR array: may be NULL only when empty.
unsafe fn entries<'a, T>(ptr: *const T, len: usize, name: &str) -> Result<&'a [T], Failure> {
    if len == 0 {
        return Ok(&[]);
    }
    unsafe { slice(ptr, len, len, name) }
}

fn check_offsets(offsets: &[usize], len: usize, name: &str) -> Result<(), Failure> {
    if offsets[0] != 0 || offsets[offsets.len() - 1] != len {
        return Err(shape(format!(
            "{name}.offsets must start at 0 and end at len = {len}, got {} … {}",
            offsets[0],
            offsets[offsets.len() - 1]
        )));
    }
    if let Some(b) = offsets.windows(2).position(|w| w[0] > w[1]) {
        return Err(shape(format!("{name}.offsets decrease at row {b}: {} > {}", offsets[b], offsets[b + 1])));
    }
    Ok(())
}
