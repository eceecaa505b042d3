//! Borrowed host views of the LM head `W: [V_shard, D]` and the hidden states `H: [B, D]`.

use crate::error::{Error, Result};
use half::{bf16, f16};

/// Element type of `W` and `H`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DType {
    Bf16,
    F16,
    F32,
}

impl DType {
    pub fn size(self) -> usize {
        match self {
            DType::Bf16 | DType::F16 => 2,
            DType::F32 => 4,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            DType::Bf16 => "bf16",
            DType::F16 => "f16",
            DType::F32 => "f32",
        }
    }
}

impl std::str::FromStr for DType {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "bf16" => Ok(DType::Bf16),
            "f16" => Ok(DType::F16),
            "f32" => Ok(DType::F32),
            other => Err(Error::param(None, format!("unknown dtype {other:?} (bf16, f16 or f32)"))),
        }
    }
}

/// A borrowed, row-major host buffer of one of the supported dtypes.
#[derive(Debug, Clone, Copy)]
pub enum Tensor<'a> {
    Bf16(&'a [bf16]),
    F16(&'a [f16]),
    F32(&'a [f32]),
}

impl<'a> Tensor<'a> {
    pub fn dtype(&self) -> DType {
        match self {
            Tensor::Bf16(_) => DType::Bf16,
            Tensor::F16(_) => DType::F16,
            Tensor::F32(_) => DType::F32,
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Tensor::Bf16(s) => s.len(),
            Tensor::F16(s) => s.len(),
            Tensor::F32(s) => s.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The raw bytes, for uploads to a device.
    pub fn as_bytes(&self) -> &'a [u8] {
        match *self {
            Tensor::Bf16(s) => bytemuck::cast_slice(s),
            Tensor::F16(s) => bytemuck::cast_slice(s),
            Tensor::F32(s) => bytemuck::cast_slice(s),
        }
    }

    /// Views raw bytes as a tensor of `dtype` (for the C ABI). Refuses a length that is not a
    /// whole number of elements and a pointer not aligned to the element size.
    pub fn from_bytes(bytes: &'a [u8], dtype: DType) -> Result<Self> {
        fn cast<T: bytemuck::Pod>(b: &[u8], dtype: DType) -> Result<&[T]> {
            bytemuck::try_cast_slice(b).map_err(|e| {
                Error::shape(format!("{} bytes at {:p} are not a {} buffer: {e:?}", b.len(), b.as_ptr(), dtype.name()))
            })
        }
        Ok(match dtype {
            DType::Bf16 => Tensor::Bf16(cast(bytes, dtype)?),
            DType::F16 => Tensor::F16(cast(bytes, dtype)?),
            DType::F32 => Tensor::F32(cast(bytes, dtype)?),
        })
    }

    /// Elements `range` as a tensor of the same dtype.
    pub fn slice(&self, range: std::ops::Range<usize>) -> Tensor<'a> {
        match *self {
            Tensor::Bf16(s) => Tensor::Bf16(&s[range]),
            Tensor::F16(s) => Tensor::F16(&s[range]),
            Tensor::F32(s) => Tensor::F32(&s[range]),
        }
    }

    /// Element `i` as f32.
    #[inline]
    pub fn get(&self, i: usize) -> f32 {
        match self {
            Tensor::Bf16(s) => s[i].to_f32(),
            Tensor::F16(s) => s[i].to_f32(),
            Tensor::F32(s) => s[i],
        }
    }

    /// Converts elements `range` to f32 into `out` (vectorised by `half` where the CPU allows).
    pub fn convert_range(&self, range: std::ops::Range<usize>, out: &mut [f32]) {
        use half::slice::HalfFloatSliceExt;
        match self {
            Tensor::Bf16(s) => s[range].convert_to_f32_slice(out),
            Tensor::F16(s) => s[range].convert_to_f32_slice(out),
            Tensor::F32(s) => out.copy_from_slice(&s[range]),
        }
    }
}

/// An LM head, or one vocabulary shard of it: `rows` consecutive tokens starting at global token
/// `vocab_offset` of a vocabulary of `vocab_size` tokens, each a row of `dim` weights.
#[derive(Debug, Clone, Copy)]
pub struct LmHeadRef<'a> {
    pub weights: Tensor<'a>,
    pub rows: usize,
    pub dim: usize,
    pub vocab_offset: u32,
    pub vocab_size: u32,
}

/// The largest vocabulary: token indices and `vocab_size` fit a `u32`, and `u32::MAX` stays free.
pub const MAX_VOCAB: u64 = u32::MAX as u64 - 1;

/// The invariants of a head of `rows × dim` weights that is the shard `[vocab_offset, vocab_offset
/// + rows)` of a vocabulary of `vocab_size` tokens, wherever its weights live.
pub fn validate_head_shape(rows: usize, dim: usize, vocab_offset: u32, vocab_size: u32) -> Result<()> {
    if dim == 0 || rows == 0 {
        return Err(Error::shape(format!("W is [{rows}, {dim}]: both dimensions must be positive")));
    }
    if u64::from(vocab_size) > MAX_VOCAB {
        return Err(Error::shape(format!("vocab_size {vocab_size} exceeds {MAX_VOCAB}")));
    }
    if u64::from(vocab_offset) + rows as u64 > u64::from(vocab_size) {
        return Err(Error::shape(format!(
            "shard [{vocab_offset}, {}) lies outside the vocabulary of {vocab_size} tokens",
            u64::from(vocab_offset) + rows as u64
        )));
    }
    Ok(())
}

impl<'a> LmHeadRef<'a> {
    /// The whole head: `weights.len() / dim` rows, global vocabulary = those rows.
    pub fn new(weights: Tensor<'a>, dim: usize) -> Result<Self> {
        if dim == 0 {
            return Err(Error::shape("the hidden dimension D must be positive"));
        }
        if weights.len() % dim != 0 {
            return Err(Error::shape(format!("W has {} elements, not a multiple of D = {dim}", weights.len())));
        }
        let rows = weights.len() / dim;
        if rows as u64 > MAX_VOCAB {
            return Err(Error::shape(format!("W has {rows} rows; at most {MAX_VOCAB} are supported")));
        }
        let head = LmHeadRef { weights, rows, dim, vocab_offset: 0, vocab_size: rows as u32 };
        head.validate()?;
        Ok(head)
    }

    /// Declares this head a shard of a vocabulary of `vocab_size` tokens starting at `vocab_offset`.
    pub fn shard(mut self, vocab_offset: u32, vocab_size: u32) -> Result<Self> {
        self.vocab_offset = vocab_offset;
        self.vocab_size = vocab_size;
        self.validate()?;
        Ok(self)
    }

    /// Checks the invariants; backends call it again on heads built field by field.
    pub fn validate(&self) -> Result<()> {
        if self.weights.len() != self.rows * self.dim {
            return Err(Error::shape(format!(
                "W has {} elements, expected rows × D = {} × {}",
                self.weights.len(),
                self.rows,
                self.dim
            )));
        }
        validate_head_shape(self.rows, self.dim, self.vocab_offset, self.vocab_size)
    }

    /// Rows `[start, start + len)` of this head as a shard of the same global vocabulary.
    pub fn slice_rows(&self, start: usize, len: usize) -> Result<Self> {
        if start + len > self.rows || len == 0 {
            return Err(Error::shape(format!(
                "rows [{start}, {}) outside the head of {} rows",
                start + len,
                self.rows
            )));
        }
        let weights = self.weights.slice(start * self.dim..(start + len) * self.dim);
        let shard =
            LmHeadRef { weights, rows: len, dim: self.dim, vocab_offset: self.vocab_offset + start as u32, ..*self };
        shard.validate()?;
        Ok(shard)
    }
}

/// Hidden states `H: [batch, dim]`.
#[derive(Debug, Clone, Copy)]
pub struct HiddenRef<'a> {
    pub data: Tensor<'a>,
    pub batch: usize,
    pub dim: usize,
}

impl<'a> HiddenRef<'a> {
    pub fn new(data: Tensor<'a>, dim: usize) -> Result<Self> {
        if dim == 0 {
            return Err(Error::shape("the hidden dimension D must be positive"));
        }
        if data.is_empty() || data.len() % dim != 0 {
            return Err(Error::shape(format!("H has {} elements, not a positive multiple of D = {dim}", data.len())));
        }
        Ok(HiddenRef { data, batch: data.len() / dim, dim })
    }
}

/// An owned host buffer: what the CPU backend keeps as its resident copy of an LM head, and what
/// test-data generators return.
#[derive(Debug, Clone, PartialEq)]
pub enum OwnedTensor {
    Bf16(Vec<bf16>),
    F16(Vec<f16>),
    F32(Vec<f32>),
}

impl OwnedTensor {
    pub fn view(&self) -> Tensor<'_> {
        match self {
            OwnedTensor::Bf16(v) => Tensor::Bf16(v),
            OwnedTensor::F16(v) => Tensor::F16(v),
            OwnedTensor::F32(v) => Tensor::F32(v),
        }
    }

    /// Converts f32 values to `dtype` (round to nearest even).
    pub fn from_f32(values: &[f32], dtype: DType) -> Self {
        match dtype {
            DType::Bf16 => OwnedTensor::Bf16(values.iter().map(|&x| bf16::from_f32(x)).collect()),
            DType::F16 => OwnedTensor::F16(values.iter().map(|&x| f16::from_f32(x)).collect()),
            DType::F32 => OwnedTensor::F32(values.to_vec()),
        }
    }
}

impl<'a> From<Tensor<'a>> for OwnedTensor {
    fn from(t: Tensor<'a>) -> Self {
        match t {
            Tensor::Bf16(s) => OwnedTensor::Bf16(s.to_vec()),
            Tensor::F16(s) => OwnedTensor::F16(s.to_vec()),
            Tensor::F32(s) => OwnedTensor::F32(s.to_vec()),
        }
    }
}
