//! Exact distributions in f64: what the statistical tests compare samples against.

use crate::tensor::{HiddenRef, LmHeadRef};
use crate::truncation::Truncation;

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

/// The distribution a row truncated by `t` samples from: `softmax(logits / temperature)` cut by
/// top-k, then top-p over the renormalised top-k survivors, then min-p, and renormalised. Tokens
/// are ranked by (logit desc, index asc), in f64 throughout: written apart from the backends'
/// ranked lists so that the tests compare two implementations.
pub fn truncated_probabilities(logits: &[f64], temperature: f64, t: &Truncation) -> Vec<f64> {
    let probs = probabilities(logits, temperature);
    let mut order: Vec<usize> = (0..logits.len()).filter(|&i| logits[i] > f64::NEG_INFINITY).collect();
    order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]).then(a.cmp(&b)));
    let mut keep = order.len().min(t.top_k.map_or(usize::MAX, |k| k as usize));
    if let Some(p) = t.top_p.map(f64::from).filter(|&p| p < 1.0) {
        let mass: f64 = order[..keep].iter().map(|&i| probs[i]).sum();
        let mut cumulative = 0.0;
        keep = order[..keep]
            .iter()
            .position(|&i| {
                cumulative += probs[i];
                cumulative >= p * mass
            })
            .map_or(keep, |i| i + 1);
    }
    if let Some(min_p) = t.min_p.map(f64::from).filter(|&m| m > 0.0) {
        let most = probs[order[0]];
        keep = order[..keep].iter().position(|&i| probs[i] < min_p * most).unwrap_or(keep);
    }
    let kept: f64 = order[..keep].iter().map(|&i| probs[i]).sum();
    let mut out = vec![0.0; logits.len()];
    for &i in &order[..keep] {
        out[i] = probs[i] / kept;
    }
    out
}
