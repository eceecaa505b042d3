//! The packed candidate of DESIGN.md §3.4: one `u64` per (score, token), reduced with `max`.
//!
//! High 32 bits: the order-preserving image of the f32 bits of the score (IEEE total order, so
//! `-0 < +0`). Low 32 bits: `0xFFFF_FFFF - token`, so equal scores go to the lowest token.
//! Every NaN is first made the positive quiet NaN, which sorts above `+inf`: one NaN score wins
//! every reduction it enters, and the row is then reported as bad (§3.5).

/// The identity of the `max` reduction: below every packed candidate.
pub const EMPTY: u64 = 0;

const CANONICAL_NAN: u32 = 0x7FC0_0000;

/// Maps f32 bits to a `u32` whose unsigned order is the IEEE total order of the floats.
#[inline(always)]
pub fn orderable(x: f32) -> u32 {
    let bits = x.to_bits();
    if bits & 0x8000_0000 != 0 {
        !bits
    } else {
        bits | 0x8000_0000
    }
}

/// Inverse of [`orderable`].
#[inline(always)]
pub fn from_orderable(key: u32) -> f32 {
    f32::from_bits(if key & 0x8000_0000 != 0 { key & 0x7FFF_FFFF } else { !key })
}

/// Packs a score and a global token index.
#[inline(always)]
pub fn pack(score: f32, token: u32) -> u64 {
    let score = if score.is_nan() { f32::from_bits(CANONICAL_NAN) } else { score };
    (u64::from(orderable(score)) << 32) | u64::from(u32::MAX - token)
}

/// The score and token of a packed candidate.
#[inline(always)]
pub fn unpack(candidate: u64) -> (f32, u32) {
    (from_orderable((candidate >> 32) as u32), u32::MAX - candidate as u32)
}

/// The score of a packed candidate, `-inf` for [`EMPTY`].
#[inline(always)]
pub fn score_of(candidate: u64) -> f32 {
    if candidate == EMPTY {
        f32::NEG_INFINITY
    } else {
        unpack(candidate).0
    }
}

/// Folds `other` into `acc` element by element: the reduction of tiles, blocks, shards and ranks.
pub fn merge_into(acc: &mut [u64], other: &[u64]) {
    assert_eq!(acc.len(), other.len(), "candidate buffers of different lengths");
    for (a, &o) in acc.iter_mut().zip(other) {
        *a = (*a).max(o);
    }
}
