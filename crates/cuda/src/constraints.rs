//! Per-row constraints packed into the flat tables the `_ex` kernels read ([`crate::launch::Extras`]).

use flashsampling_core::constraints::RowTransform;

use crate::launch::NO_MASK;

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
