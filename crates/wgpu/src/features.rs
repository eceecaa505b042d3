//! The per-call data of pass 1's features epilogue (shaders/sample_features.wgsl): each row's
//! constraints packed into one table the shader searches, and the log-normaliser partials it
//! leaves per (tile, row), merged here in tile order so that results are deterministic.

use flashsampling_core::constraints::RowTransform;
use flashsampling_core::logsumexp::LogSumExp;

/// The mask word of a row without a mask.
const NO_MASK: u32 = u32::MAX;

/// The shader's `table` as flat words: one `vec4<u32>` entry per row, then the adjustments (one
/// entry each), then the masks.
pub(crate) fn table(transforms: &[RowTransform<'_>]) -> Vec<u32> {
    let batch = transforms.len();
    let adjustments: usize = transforms.iter().map(|t| t.adjustments().len()).sum();
    let first_mask_word = 4 * (batch + adjustments);
    let mut rows = Vec::with_capacity(4 * batch);
    let mut entries = Vec::with_capacity(4 * adjustments);
    let mut masks = Vec::new();
    for t in transforms {
        let begin = batch + entries.len() / 4;
        entries.extend(
            t.adjustments()
                .iter()
                .flat_map(|&(token, pos, neg, added)| [token, pos.to_bits(), neg.to_bits(), added.to_bits()]),
        );
        let mask = t.allowed().map_or(NO_MASK, |m| {
            let at = first_mask_word + masks.len();
            masks.extend_from_slice(m);
            at as u32
        });
        rows.extend([begin as u32, (batch + entries.len() / 4) as u32, mask, 0]);
    }
    rows.extend(entries);
    rows.extend(masks);
    rows
}

/// Each row's log-normaliser from `partials[tile * batch + b]`, `(max y, Σ exp(y - max y))` as
/// f32 bits, merged in tile order.
pub(crate) fn merge_norms(partials: &[u8], norms: &mut [LogSumExp]) {
    let batch = norms.len();
    norms.fill(LogSumExp::EMPTY);
    for tile in partials.chunks_exact(8 * batch) {
        for (norm, p) in norms.iter_mut().zip(tile.chunks_exact(8)) {
            let word = |i: usize| f32::from_le_bytes(p[i..i + 4].try_into().expect("4 bytes"));
            *norm = norm.merge(LogSumExp { max: word(0), sum: word(4).into() });
        }
    }
}
