//! The statistical test kit shared by every backend's tests: goodness-of-fit of observed token
//! counts against exact probabilities (Pearson chi-square and the G-test), with the bins of small
//! expected count merged, and correct p-values from the regularised incomplete gamma function.

/// Bins whose expected count is below this are merged (the usual rule for the chi-square
/// approximation).
pub const MIN_EXPECTED: f64 = 5.0;

/// Outcome of a goodness-of-fit test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GofResult {
    pub statistic: f64,
    pub dof: usize,
    pub p_value: f64,
    /// Bins after merging.
    pub bins: usize,
    /// Samples that fell on outcomes of probability 0: any makes the p-value 0.
    pub impossible: u64,
}

/// Merges the outcomes, in order of increasing expected count, into bins of expected count at
/// least [`MIN_EXPECTED`]. Returns `(observed, expected)` per bin and the count of samples that
/// fell on zero-probability outcomes.
pub fn merge_bins(observed: &[u64], probs: &[f64]) -> (Vec<f64>, Vec<f64>, u64) {
    assert_eq!(observed.len(), probs.len(), "one probability per outcome");
    let total: u64 = observed.iter().sum();
    let impossible = observed.iter().zip(probs).filter(|(_, &p)| p <= 0.0).map(|(&o, _)| o).sum();
    let mut order: Vec<usize> = (0..probs.len()).filter(|&i| probs[i] > 0.0).collect();
    order.sort_by(|&a, &b| probs[a].total_cmp(&probs[b]));
    let (mut obs, mut exp) = (Vec::new(), Vec::new());
    let (mut o_acc, mut e_acc) = (0.0, 0.0);
    for i in order {
        o_acc += observed[i] as f64;
        e_acc += probs[i] * total as f64;
        if e_acc >= MIN_EXPECTED {
            obs.push(o_acc);
            exp.push(e_acc);
            o_acc = 0.0;
            e_acc = 0.0;
        }
    }
    if e_acc > 0.0 || o_acc > 0.0 {
        match (obs.last_mut(), exp.last_mut()) {
            (Some(o), Some(e)) => {
                *o += o_acc;
                *e += e_acc;
            }
            _ => {
                obs.push(o_acc);
                exp.push(e_acc);
            }
        }
    }
    (obs, exp, impossible)
}

fn finish(statistic: f64, bins: usize, impossible: u64) -> GofResult {
    let dof = bins.saturating_sub(1);
    let p_value = if impossible > 0 {
        0.0
    } else if dof == 0 {
        1.0
    } else {
        chi_square_sf(statistic, dof as f64)
    };
    GofResult { statistic, dof, p_value, bins, impossible }
}

/// Pearson's chi-square test of `observed` counts against `probs` (which sum to 1).
pub fn chi_square(observed: &[u64], probs: &[f64]) -> GofResult {
    let (obs, exp, impossible) = merge_bins(observed, probs);
    let statistic = obs.iter().zip(&exp).map(|(o, e)| (o - e) * (o - e) / e).sum();
    finish(statistic, obs.len(), impossible)
}

/// The G-test (log-likelihood ratio) of `observed` counts against `probs`.
pub fn g_test(observed: &[u64], probs: &[f64]) -> GofResult {
    let (obs, exp, impossible) = merge_bins(observed, probs);
    let statistic = 2.0 * obs.iter().zip(&exp).filter(|(o, _)| **o > 0.0).map(|(o, e)| o * (o / e).ln()).sum::<f64>();
    finish(statistic, obs.len(), impossible)
}

/// Counts of each outcome in `0..outcomes`.
pub fn histogram(samples: impl IntoIterator<Item = usize>, outcomes: usize) -> Vec<u64> {
    let mut counts = vec![0u64; outcomes];
    for s in samples {
        counts[s] += 1;
    }
    counts
}

/// Survival function of the chi-square distribution: `P(X > x)` with `dof` degrees of freedom.
pub fn chi_square_sf(x: f64, dof: f64) -> f64 {
    if x <= 0.0 {
        1.0
    } else {
        gamma_q(dof / 2.0, x / 2.0)
    }
}

/// `ln Γ(x)` for `x > 0` (Lanczos, g = 7, nine terms: about 15 correct digits).
pub fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let t = x + G + 0.5;
    let series = C[1..].iter().enumerate().fold(C[0], |s, (i, &c)| s + c / (x + i as f64 + 1.0));
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + series.ln()
}

/// The upper regularised incomplete gamma function `Q(a, x) = Γ(a, x) / Γ(a)`.
pub fn gamma_q(a: f64, x: f64) -> f64 {
    assert!(a > 0.0 && x >= 0.0, "gamma_q({a}, {x})");
    if x < a + 1.0 {
        1.0 - gamma_p_series(a, x)
    } else {
        gamma_q_continued_fraction(a, x)
    }
}

fn gamma_p_series(a: f64, x: f64) -> f64 {
    if x == 0.0 {
        return 0.0;
    }
    let (mut term, mut sum, mut n) = (1.0 / a, 1.0 / a, a);
    for _ in 0..10_000 {
        n += 1.0;
        term *= x / n;
        sum += term;
        if term.abs() < sum.abs() * 1e-16 {
            break;
        }
    }
    sum * (-x + a * x.ln() - ln_gamma(a)).exp()
}

fn gamma_q_continued_fraction(a: f64, x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let mut b = x + 1.0 - a;
    let mut c = 1.0 / TINY;
    let mut d = 1.0 / b;
    let mut h = d;
    for i in 1..10_000 {
        let an = -(i as f64) * (i as f64 - a);
        b += 2.0;
        d = an * d + b;
        if d.abs() < TINY {
            d = TINY;
        }
        c = b + an / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        let delta = d * c;
        h *= delta;
        if (delta - 1.0).abs() < 1e-16 {
            break;
        }
    }
    (-x + a * x.ln() - ln_gamma(a)).exp() * h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ln_gamma_matches_factorials() {
        let mut fact = 1.0f64;
        for n in 1..30 {
            assert!((ln_gamma(n as f64) - fact.ln()).abs() < 1e-10 * fact.ln().abs().max(1.0), "Γ({n})");
            fact *= n as f64;
        }
        assert!((ln_gamma(0.5) - std::f64::consts::PI.sqrt().ln()).abs() < 1e-12);
    }

    #[test]
    fn chi_square_quantiles() {
        // Standard table values: the 5% and 0.1% critical points.
        for (x, dof, p) in
            [(3.841_459, 1.0, 0.05), (18.307_038, 10.0, 0.05), (10.827_566, 1.0, 0.001), (124.342_113, 100.0, 0.05)]
        {
            let got = chi_square_sf(x, dof);
            assert!((got - p).abs() < 1e-6 * p.max(1e-3) * 100.0, "sf({x}, {dof}) = {got}, expected {p}");
        }
        // dof 2: the survival function is exp(-x/2) exactly.
        for x in [0.1, 1.0, 7.5, 40.0, 200.0] {
            assert!((chi_square_sf(x, 2.0) / (-x / 2.0f64).exp() - 1.0).abs() < 1e-10);
        }
    }

    #[test]
    fn merging_keeps_totals_and_minimum_expectation() {
        let probs = [0.5, 0.3, 0.1, 0.05, 0.03, 0.01, 0.005, 0.005];
        let observed = [52, 28, 11, 4, 3, 1, 1, 0];
        let (obs, exp, impossible) = merge_bins(&observed, &probs);
        assert_eq!(impossible, 0);
        assert_eq!(obs.iter().sum::<f64>(), 100.0);
        assert!((exp.iter().sum::<f64>() - 100.0).abs() < 1e-9);
        assert!(exp.iter().all(|&e| e >= MIN_EXPECTED), "{exp:?}");
    }

    #[test]
    fn tests_reject_wrong_distributions_and_accept_right_ones() {
        let probs = vec![0.25; 4];
        let fair = chi_square(&[2510, 2490, 2475, 2525], &probs);
        assert!(fair.p_value > 0.5, "{fair:?}");
        let biased = chi_square(&[2700, 2400, 2450, 2450], &probs);
        assert!(biased.p_value < 1e-3, "{biased:?}");
        let g = g_test(&[2700, 2400, 2450, 2450], &probs);
        assert!(g.p_value < 1e-3 && (g.statistic - biased.statistic).abs() / biased.statistic < 0.05);
        let impossible = chi_square(&[5, 5, 1], &[0.5, 0.5, 0.0]);
        assert_eq!((impossible.p_value, impossible.impossible), (0.0, 1));
    }
}
