//! The log-normaliser of DESIGN.md §3.7: per tile `(max y, Σ exp(y - max y))`, merged in a fixed
//! order so that results are deterministic; `logZ = max + ln(sum)`. Sums are f64.

/// A partial `log Σ exp(y)`: the identity is `(-inf, 0)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LogSumExp {
    pub max: f32,
    pub sum: f64,
}

impl LogSumExp {
    pub const EMPTY: LogSumExp = LogSumExp { max: f32::NEG_INFINITY, sum: 0.0 };

    /// Of values, summed in order.
    pub fn of(values: impl IntoIterator<Item = f32> + Clone) -> Self {
        let max = values.clone().into_iter().fold(f32::NEG_INFINITY, f32::max);
        if max == f32::NEG_INFINITY || max.is_nan() {
            return LogSumExp { max, sum: if max.is_nan() { f64::NAN } else { 0.0 } };
        }
        let top = f64::from(max);
        LogSumExp { max, sum: values.into_iter().map(|y| (f64::from(y) - top).exp()).sum() }
    }

    /// Combines two partials (associative up to rounding: merge in a fixed order).
    pub fn merge(self, other: Self) -> Self {
        let max = self.max.max(other.max);
        if max == f32::NEG_INFINITY {
            return LogSumExp::EMPTY;
        }
        LogSumExp { max, sum: self.relative_to(max.into()) + other.relative_to(max.into()) }
    }

    /// `Σ exp(y - top)`.
    pub fn relative_to(self, top: f64) -> f64 {
        if self.sum == 0.0 {
            0.0
        } else {
            self.sum * (f64::from(self.max) - top).exp()
        }
    }

    /// `log Σ exp(y)`.
    pub fn ln(self) -> f64 {
        f64::from(self.max) + self.sum.ln()
    }
}
