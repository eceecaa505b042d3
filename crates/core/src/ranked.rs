//! A row's most likely tokens, as packed `(y, token)` keys (no noise) in descending order: the
//! rank order of [`crate::truncation`]. [`TopList`] keeps the largest keys of a stream of tiles;
//! lists of several tiles or threads merge exactly (the top `n` of a union is the top `n` of the
//! parts' top `n`).

use crate::candidate::pack;

/// The ranked head of a row: `complete` when it holds every token of positive probability.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Ranked {
    pub keys: Vec<u64>,
    pub complete: bool,
}

impl Ranked {
    /// Every token of a materialised row of scaled logits, tokens from `first_token`.
    pub fn all(scaled: &[f32], first_token: u32) -> Self {
        let mut list = TopList::new(scaled.len().max(1));
        list.offer_tile(scaled, first_token);
        list.finish()
    }
}

/// The `capacity` largest keys offered so far.
#[derive(Debug, Clone)]
pub struct TopList {
    capacity: usize,
    /// Up to twice the capacity: compacted to the largest `capacity` when full.
    keys: Vec<u64>,
    /// Once compacted, the smallest kept key: nothing at or below it can enter.
    floor: u64,
    offered: u64,
}

impl TopList {
    pub fn new(capacity: usize) -> Self {
        assert!(capacity > 0, "a ranked list keeps at least one token");
        TopList { capacity, keys: Vec::new(), floor: 0, offered: 0 }
    }

    /// Offers the tokens of one tile of scaled logits, tokens from `first_token`; masked tokens
    /// (`-inf`, probability 0) are not ranked.
    pub fn offer_tile(&mut self, scaled: &[f32], first_token: u32) {
        for (j, &y) in scaled.iter().enumerate() {
            if y != f32::NEG_INFINITY {
                self.offered += 1;
                self.push(pack(y, first_token + j as u32));
            }
        }
    }

    #[inline]
    fn push(&mut self, key: u64) {
        if key > self.floor {
            self.keys.push(key);
            if self.keys.len() == 2 * self.capacity {
                self.compact();
            }
        }
    }

    fn compact(&mut self) {
        if self.keys.len() > self.capacity {
            self.keys.select_nth_unstable_by(self.capacity - 1, |a, b| b.cmp(a));
            self.keys.truncate(self.capacity);
            self.floor = self.keys.iter().copied().min().unwrap_or(0);
        }
    }

    /// Folds in another list of the same capacity (another thread's tiles).
    pub fn merge(&mut self, other: TopList) {
        self.offered += other.offered;
        for key in other.keys {
            self.push(key);
        }
    }

    /// The kept keys in descending order.
    pub fn finish(mut self) -> Ranked {
        self.compact();
        self.keys.sort_unstable_by(|a, b| b.cmp(a));
        Ranked { complete: self.offered <= self.capacity as u64, keys: self.keys }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata::TestRng;

    #[test]
    fn keeps_the_largest_across_tiles_and_merges() {
        let mut rng = TestRng::new(5);
        let ys: Vec<f32> =
            (0..5000).map(|_| if rng.uniform() < 0.1 { f32::NEG_INFINITY } else { rng.normal() as f32 }).collect();
        let mut expected: Vec<u64> =
            ys.iter().enumerate().filter(|(_, y)| y.is_finite()).map(|(t, &y)| pack(y, t as u32)).collect();
        expected.sort_unstable_by(|a, b| b.cmp(a));
        for capacity in [1, 7, 100, 4999, 6000] {
            let (mut a, mut b) = (TopList::new(capacity), TopList::new(capacity));
            for (i, tile) in ys.chunks(64).enumerate() {
                let list = if i % 3 == 0 { &mut a } else { &mut b };
                list.offer_tile(tile, (i * 64) as u32);
            }
            a.merge(b);
            let ranked = a.finish();
            let n = capacity.min(expected.len());
            assert_eq!(ranked.keys, expected[..n], "capacity {capacity}");
            assert_eq!(ranked.complete, capacity >= expected.len());
        }
        assert_eq!(Ranked::all(&ys, 0).keys, expected);
    }
}
