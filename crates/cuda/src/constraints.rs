//! Per-row constraints packed into the flat tables the `_ex` kernels read ([`crate::launch::Extras`]).

use flashsampling_core::constraints::RowTransform;

use crate::arena::{f32_bytes, u32_bytes, Call, Layout, Region};
use crate::launch::{Extras, NO_MASK};

/// The host side of the constraint tables of one call, ready for upload.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConstraintTables {
    /// The bitmasks of the rows that have one, concatenated.
    pub mask: Vec<u32>,
    /// Per row: its first word in `mask`, or [`NO_MASK`].
    pub mask_start: Vec<u32>,
    /// `batch + 1` offsets into `adjust_token` and `adjust_coef` (three per entry).
    pub adjust_start: Vec<u32>,
    pub adjust_token: Vec<u32>,
    pub adjust_coef: Vec<f32>,
}

impl ConstraintTables {
    /// The tables of `transforms` (one per row); `None` when no row changes its logits.
    pub fn new(transforms: &[RowTransform<'_>]) -> Option<Self> {
        if transforms.iter().all(RowTransform::is_identity) {
            return None;
        }
        let mut t = ConstraintTables { adjust_start: vec![0], ..Default::default() };
        for row in transforms {
            match row.allowed() {
                Some(words) => {
                    t.mask_start.push(t.mask.len() as u32);
                    t.mask.extend_from_slice(words);
                }
                None => t.mask_start.push(NO_MASK),
            }
            for &(token, positive, rest, added) in row.adjustments() {
                t.adjust_token.push(token);
                t.adjust_coef.extend([positive, rest, added]);
            }
            t.adjust_start.push(t.adjust_token.len() as u32);
        }
        Some(t)
    }

    /// Lays the tables out among a call's inputs; a table no row uses is left out.
    pub(crate) fn stage(&self, layout: &mut Layout) -> StagedTables {
        StagedTables {
            mask: (!self.mask.is_empty())
                .then(|| [layout.input(&u32_bytes(&self.mask)), layout.input(&u32_bytes(&self.mask_start))]),
            adjust: (!self.adjust_token.is_empty()).then(|| {
                [
                    layout.input(&u32_bytes(&self.adjust_start)),
                    layout.input(&u32_bytes(&self.adjust_token)),
                    layout.input(&f32_bytes(&self.adjust_coef)),
                ]
            }),
        }
    }
}

/// [`ConstraintTables`] in a call's arena.
pub(crate) struct StagedTables {
    /// `mask`, `mask_start`.
    mask: Option<[Region; 2]>,
    /// `adjust_start`, `adjust_token`, `adjust_coef`.
    adjust: Option<[Region; 3]>,
}

impl StagedTables {
    /// The kernels' view: NULL for a table no row uses, so its lookups are skipped.
    pub fn extras(&self, call: &Call<'_>) -> Extras {
        let [mask, mask_start] = self.mask.map_or([0; 2], |r| r.map(|r| call.ptr(r)));
        let [adjust_start, adjust_token, adjust_coef] = self.adjust.map_or([0; 3], |r| r.map(|r| call.ptr(r)));
        Extras { mask, mask_start, adjust_start, adjust_token, adjust_coef, ..Extras::default() }
    }
}

#[cfg(test)]
mod tests {
    use flashsampling_core::{Penalties, RowConstraints};

    use super::*;

    #[test]
    fn rows_keep_their_own_mask_and_entries() {
        let mask = [0xF0F0_1234u32, 0x0000_00FF];
        let counts = [(40u32, 2u32), (3, 1)];
        let penalties = Penalties { counts: &counts, repetition: 2.0, presence: 0.25, frequency: 0.5 };
        let rows = [
            RowConstraints { bias: &[(7, 1.5)], ..Default::default() },
            RowConstraints::default(),
            RowConstraints { allowed: Some(&mask), bias: &[(40, -1.0)], penalties },
        ];
        let transforms: Vec<RowTransform> =
            rows.iter().enumerate().map(|(b, c)| RowTransform::new(c, 50, b).unwrap()).collect();
        let t = ConstraintTables::new(&transforms).unwrap();
        assert_eq!(t.mask, mask);
        assert_eq!(t.mask_start, [NO_MASK, NO_MASK, 0]);
        assert_eq!(t.adjust_start, [0, 1, 1, 3]);
        assert_eq!(t.adjust_token, [7, 3, 40]);
        // Token 3: seen once; token 40: seen twice and biased by -1.
        assert_eq!(t.adjust_coef, [1.0, 1.0, 1.5, 0.5, 2.0, -0.75, 0.5, 2.0, -2.25]);
    }

    #[test]
    fn identity_rows_need_no_tables() {
        let transforms = vec![RowTransform::default(); 3];
        assert_eq!(ConstraintTables::new(&transforms), None);
    }
}
