//! Exact top-k, top-p and min-p truncation (DESIGN.md §3.6).
//!
//! Tokens are ranked by `(y desc, token asc)`, `y = l̃ · inv_T` (untempered for greedy rows): the
//! descending order of their packed candidates `pack(y, t)` without noise, so every cut-off is
//! deterministic. Masked tokens (`y = -inf`) have probability 0 and never survive. The survivors
//! are always a prefix of this order:
//! 1. top-k keeps the first `k` tokens — exactly `k`: of tokens tied at the cut-off the lowest ids
//!    survive (Hugging Face and vLLM keep every tied token instead);
//! 2. top-p keeps the shortest prefix of those whose probability, renormalised over the top-k
//!    survivors, reaches `p`;
//! 3. min-p then keeps the tokens with `p_t ≥ min_p · p_max`, i.e. `exp(y_t - y_max) ≥ min_p`.
//!
//! Masses are summed in f64 (over tiles in a fixed order): a top-p cut-off whose prefix mass lies
//! within f64 rounding of `p` is the only place where two tile sizes could decide differently.
//! Sampling is Gumbel-max over the survivors with the same noise as the untruncated row, so a
//! truncated row draws the untruncated row's token whenever that token survives.
//!
//! Backends decide the cut-off from each row's ranked head ([`crate::ranked`]): `k` tokens for
//! top-k, [`MAX_TOP_K`] otherwise. [`Truncation::survivors`] certifies the cut-off from that list
//! or says that it cannot, and the backend then ranks the whole row (DESIGN.md §3.6).

use crate::candidate::unpack;
use crate::error::{Error, Result};
use crate::logsumexp::LogSumExp;

/// The largest `top_k`, and the length of the ranked list a backend keeps per row for top-p and
/// min-p without top-k (K_max of DESIGN.md §3.6).
pub const MAX_TOP_K: u32 = 1024;

/// The largest N of [`crate::Request::with_top_logprobs`].
pub const MAX_TOP_LOGPROBS: u32 = 20;

/// Truncation of one row; `None` leaves a criterion off. Applied after constraints and
/// temperature, in the order top-k, top-p, min-p (see the module docs for ties).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Truncation {
    /// Keep the `k` most likely tokens, `1 ≤ k ≤ 1024`.
    pub top_k: Option<u32>,
    /// Keep the smallest set of most likely tokens whose mass reaches `p`, `0 < p ≤ 1`.
    pub top_p: Option<f32>,
    /// Keep tokens at least `min_p` times as likely as the most likely one, `0 ≤ min_p ≤ 1`.
    pub min_p: Option<f32>,
}

impl Truncation {
    pub fn top_k(k: u32) -> Self {
        Truncation { top_k: Some(k), ..Default::default() }
    }

    pub fn top_p(p: f32) -> Self {
        Truncation { top_p: Some(p), ..Default::default() }
    }

    pub fn min_p(min_p: f32) -> Self {
        Truncation { min_p: Some(min_p), ..Default::default() }
    }

    pub fn and_top_k(self, k: u32) -> Self {
        Truncation { top_k: Some(k), ..self }
    }

    pub fn and_top_p(self, p: f32) -> Self {
        Truncation { top_p: Some(p), ..self }
    }

    pub fn and_min_p(self, min_p: f32) -> Self {
        Truncation { min_p: Some(min_p), ..self }
    }

    /// Whether any criterion can remove a token (`top_p = 1` and `min_p = 0` cannot).
    pub fn is_active(&self) -> bool {
        self.top_k.is_some() || self.cuts_top_p().is_some() || self.cuts_min_p().is_some()
    }

    fn cuts_top_p(&self) -> Option<f64> {
        self.top_p.filter(|&p| p < 1.0).map(f64::from)
    }

    fn cuts_min_p(&self) -> Option<f64> {
        self.min_p.filter(|&m| m > 0.0).map(f64::from)
    }

    /// Checks the domains of row `row`'s criteria.
    pub fn check(&self, row: usize) -> Result<()> {
        let bad = |what: String| Err(Error::Param { row: Some(row), what });
        if let Some(k) = self.top_k.filter(|&k| k == 0 || k > MAX_TOP_K) {
            return bad(format!("top_k must be in 1..={MAX_TOP_K}, got {k}"));
        }
        if let Some(p) = self.top_p.filter(|&p| !(p > 0.0 && p <= 1.0)) {
            return bad(format!("top_p must be in (0, 1], got {p}"));
        }
        if let Some(m) = self.min_p.filter(|&m| !(0.0..=1.0).contains(&m)) {
            return bad(format!("min_p must be in [0, 1], got {m}"));
        }
        Ok(())
    }

    /// How many tokens of a ranked list a backend must keep for this truncation and `top_n`
    /// top logprobs: enough that the list holds every survivor whenever it can be certified.
    pub fn list_length(truncation: Option<&Truncation>, top_n: usize) -> usize {
        let needed = match truncation {
            Some(t) => t.top_k.unwrap_or(MAX_TOP_K) as usize,
            None => 0,
        };
        needed.max(top_n)
    }

    /// How many of the ranked `keys` survive, or `None` when the list cannot tell (the certificate
    /// of DESIGN.md §3.6 fails): top-p when the kept mass does not reach `p`, min-p when every
    /// kept token is above the threshold. `keys` are packed `(y, token)` in descending order, the
    /// most likely tokens of the row, at least `list_length` of them unless `complete` (every token
    /// of positive probability); `total` is the row's log-normaliser over every token.
    pub fn survivors(&self, keys: &[u64], complete: bool, total: LogSumExp) -> Option<usize> {
        let Some(&first) = keys.first() else { return Some(0) };
        let top = f64::from(unpack(first).0);
        if !top.is_finite() {
            // NaN (a bad row) or +inf (which takes every sample): the first token decides.
            return Some(1);
        }
        let weight = |key: u64| (f64::from(unpack(key).0) - top).exp();
        let (mut len, mut whole) = match self.top_k {
            Some(k) => ((k as usize).min(keys.len()), true),
            None => (keys.len(), complete),
        };
        if let Some(p) = self.cuts_top_p() {
            let mass = if self.top_k.is_some() {
                keys[..len].iter().map(|&k| weight(k)).sum()
            } else {
                total.relative_to(top)
            };
            let mut kept = 0.0;
            match keys[..len].iter().position(|&k| {
                kept += weight(k);
                kept >= p * mass
            }) {
                Some(i) => (len, whole) = (i + 1, true),
                None if whole => {}
                None => return None,
            }
        }
        if let Some(min_p) = self.cuts_min_p() {
            match keys[..len].iter().position(|&k| weight(k) < min_p) {
                Some(i) => (len, whole) = (i, true),
                None if whole => {}
                None => return None,
            }
        }
        whole.then_some(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::candidate::pack;

    fn keys(ys: &[f32]) -> Vec<u64> {
        let mut k: Vec<u64> = ys.iter().enumerate().map(|(t, &y)| pack(y, t as u32)).collect();
        k.sort_unstable_by(|a, b| b.cmp(a));
        k
    }

    fn total(ys: &[f32]) -> LogSumExp {
        LogSumExp::of(ys.iter().copied())
    }

    #[test]
    fn prefixes_of_the_rank_order() {
        let ys = [0.0f32, -1.0, -2.0, -3.0, -4.0];
        let k = keys(&ys);
        let all = total(&ys);
        assert_eq!(Truncation::top_k(2).survivors(&k, true, all), Some(2));
        assert_eq!(Truncation::top_k(9).survivors(&k, true, all), Some(5));
        // p = (1, e^-1, e^-2, ...) / Z: the first two hold 0.8707.
        assert_eq!(Truncation::top_p(0.87).survivors(&k, true, all), Some(2));
        assert_eq!(Truncation::top_p(0.88).survivors(&k, true, all), Some(3));
        assert_eq!(Truncation::min_p(0.2).survivors(&k, true, all), Some(2));
        assert_eq!(Truncation::min_p(1.0).survivors(&k, true, all), Some(1));
        // top-p over the renormalised top-2: 1 / (1 + e^-1) = 0.731.
        assert_eq!(Truncation::top_k(2).and_top_p(0.73).survivors(&k, true, all), Some(1));
        assert_eq!(Truncation::top_k(2).and_top_p(0.74).survivors(&k, true, all), Some(2));
    }

    #[test]
    fn incomplete_lists_certify_or_refuse() {
        let ys: Vec<f32> = (0..100).map(|t| -(t as f32) * 0.01).collect();
        let all = total(&ys);
        let head = &keys(&ys)[..10];
        // Ten nearly flat tokens of a hundred hold 15% of the mass, four of them 6.2%.
        assert_eq!(Truncation::top_p(0.05).survivors(head, false, all), Some(4));
        assert_eq!(Truncation::top_p(0.5).survivors(head, false, all), None);
        assert_eq!(Truncation::min_p(0.5).survivors(head, false, all), None);
        assert_eq!(Truncation::min_p(0.95).survivors(head, false, all), Some(6));
        assert_eq!(Truncation::top_k(10).and_min_p(0.5).survivors(head, false, all), Some(10));
    }

    #[test]
    fn ties_keep_the_lowest_ids_and_bad_rows_keep_one() {
        let ys = [1.0f32, 2.0, 2.0, 2.0, 0.5];
        let k = keys(&ys);
        let n = Truncation::top_k(2).survivors(&k, true, total(&ys)).unwrap();
        assert_eq!(k[..n].iter().map(|&c| unpack(c).1).collect::<Vec<_>>(), [1, 2]);
        let nan = keys(&[1.0, f32::NAN]);
        assert_eq!(Truncation::top_p(0.5).survivors(&nan, true, total(&[1.0, f32::NAN])), Some(1));
        assert_eq!(Truncation::top_p(0.5).survivors(&[], true, LogSumExp::EMPTY), Some(0));
    }

    #[test]
    fn domains() {
        let ok = [Truncation::top_k(1), Truncation::top_k(1024), Truncation::top_p(1.0), Truncation::min_p(0.0)];
        assert!(ok.iter().all(|t| t.check(0).is_ok()));
        let bad = [
            Truncation::top_k(0),
            Truncation::top_k(1025),
            Truncation::top_p(0.0),
            Truncation::top_p(1.5),
            Truncation::top_p(f32::NAN),
            Truncation::min_p(-0.1),
            Truncation::min_p(f32::NAN),
            Truncation::min_p(1.01),
        ];
        for t in bad {
            assert!(matches!(t.check(3), Err(Error::Param { row: Some(3), .. })), "{t:?} accepted");
        }
        assert!(!Truncation::top_p(1.0).and_min_p(0.0).is_active());
    }
}
