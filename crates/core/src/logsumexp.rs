//! The log-normaliser of DESIGN.md §3.7: per tile `(max y, Σ exp(y - max y))`, merged in a fixed
//! order so that results are deterministic; `logZ = max + ln(sum)`.

/// A partial `log Σ exp(y)`: the identity is `(-inf, 0)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LogSumExp {
    pub max: f32,
    pub sum: f32,
}

impl LogSumExp {
    pub const EMPTY: LogSumExp = LogSumExp { max: f32::NEG_INFINITY, sum: 0.0 };

    /// Of one tile's values, in order.
    pub fn of(values: &[f32]) -> Self {
        let max = values.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        if max == f32::NEG_INFINITY || max.is_nan() {
            return LogSumExp { max, sum: if max.is_nan() { f32::NAN } else { 0.0 } };
        }
        LogSumExp { max, sum: values.iter().map(|&y| (y - max).exp()).sum() }
    }

    /// Combines two partials (associative up to rounding: merge in a fixed order).
    pub fn merge(self, other: Self) -> Self {
        let max = self.max.max(other.max);
        if max == f32::NEG_INFINITY {
            return LogSumExp::EMPTY;
        }
        let scaled = |p: Self| if p.sum == 0.0 { 0.0 } else { p.sum * (p.max - max).exp() };
        LogSumExp { max, sum: scaled(self) + scaled(other) }
    }

    /// `log Σ exp(y)`.
    pub fn ln(self) -> f64 {
        f64::from(self.max) + f64::from(self.sum).ln()
    }
}
