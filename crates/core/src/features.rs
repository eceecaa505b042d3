//! The optional features a request can ask for and a backend can offer. A backend refuses a
//! request that asks for one it does not offer with [`crate::Error::Unsupported`], before any work.

/// One optional sampling feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Feature {
    /// Per-row token mask, logit bias and penalties ([`crate::Request::with_constraints`]).
    Constraints = 1,
    /// Sampled-token logprobs and the log-normaliser ([`crate::Request::with_logprobs`]).
    Logprobs = 2,
    /// Top-k / top-p / min-p ([`crate::Request::with_truncation`]).
    Truncation = 4,
    /// The N most likely tokens with their logprobs ([`crate::Request::with_top_logprobs`]).
    TopLogprobs = 8,
}

impl Feature {
    pub const ALL: [Feature; 4] = [Feature::Constraints, Feature::Logprobs, Feature::Truncation, Feature::TopLogprobs];

    pub fn name(self) -> &'static str {
        match self {
            Feature::Constraints => "per-row constraints",
            Feature::Logprobs => "logprobs",
            Feature::Truncation => "top-k / top-p / min-p truncation",
            Feature::TopLogprobs => "top-N logprobs",
        }
    }
}

/// A set of [`Feature`]s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Features(u8);

impl Features {
    pub const NONE: Features = Features(0);

    pub const fn of(features: &[Feature]) -> Self {
        let mut bits = 0;
        let mut i = 0;
        while i < features.len() {
            bits |= features[i] as u8;
            i += 1;
        }
        Features(bits)
    }

    pub fn contains(self, feature: Feature) -> bool {
        self.0 & feature as u8 != 0
    }

    pub fn with(self, feature: Feature) -> Self {
        Features(self.0 | feature as u8)
    }

    /// The first feature of `self` that `offered` lacks.
    pub fn first_missing(self, offered: Features) -> Option<Feature> {
        Feature::ALL.into_iter().find(|&f| self.contains(f) && !offered.contains(f))
    }
}

impl FromIterator<Feature> for Features {
    fn from_iter<I: IntoIterator<Item = Feature>>(iter: I) -> Self {
        iter.into_iter().fold(Features::NONE, Features::with)
    }
}
