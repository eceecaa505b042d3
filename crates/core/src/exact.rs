//! Exact distributions in f64: what the statistical tests compare samples against.

use crate::tensor::{HiddenRef, LmHeadRef};

/// The logits of row `b` over the head's shard, dot products accumulated in f64.
pub fn logits_f64(head: &LmHeadRef<'_>, hidden: &HiddenRef<'_>, b: usize) -> Vec<f64> {
    let dim = head.dim;
    let h: Vec<f64> = (0..dim).map(|k| f64::from(hidden.data.get(b * dim + k))).collect();
    (0..head.rows)
        .map(|t| {
            let base = t * dim;
            h.iter().enumerate().map(|(k, &hk)| f64::from(head.weights.get(base + k)) * hk).sum()
        })
        .collect()
}

/// `softmax(logits / temperature)` for `temperature > 0`; `-inf` logits get probability 0.
pub fn probabilities(logits: &[f64], temperature: f64) -> Vec<f64> {
    assert!(temperature > 0.0, "greedy rows have no distribution: use argmax");
    let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let weights: Vec<f64> = logits.iter().map(|&l| ((l - max) / temperature).exp()).collect();
    let total: f64 = weights.iter().sum();
    weights.into_iter().map(|w| w / total).collect()
}

/// Index of the largest logit (the lowest index among equals).
pub fn argmax(logits: &[f64]) -> usize {
    logits.iter().enumerate().fold(0, |best, (i, &l)| if l > logits[best] { i } else { best })
}
