//! Host time of cutting one materialised row by its truncation (`survivors::cut_scaled_row`), as
//! the wgpu backend does for each truncated row it reads back: V = 151,936 scaled logits drawn
//! from N(0, 3²), one line per truncation, the median of 21 cuts.
//!
//! `cargo run --release -p flashsampling-core --example cut_scaled_rows`

use std::time::Instant;

use flashsampling_core::bench::median;
use flashsampling_core::logsumexp::LogSumExp;
use flashsampling_core::survivors::{cut_scaled_row, RowPlan};
use flashsampling_core::testdata::TestRng;
use flashsampling_core::Truncation;

fn main() {
    const V: usize = 151_936;
    let mut rng = TestRng::new(1);
    let scaled: Vec<f32> = (0..V).map(|_| (rng.normal() * 3.0) as f32).collect();
    let total = LogSumExp::of(scaled.iter().copied());
    for t in [Truncation::top_k(50).and_top_p(0.9), Truncation::top_p(0.9), Truncation::min_p(0.05)] {
        let plan = RowPlan { truncation: Some(&t), top_n: 0, list_length: Truncation::list_length(Some(&t), 0) };
        let mut survivors = 0;
        let mut times: Vec<f64> = (0..21)
            .map(|_| {
                let start = Instant::now();
                survivors = cut_scaled_row(&plan, &scaled, total, &mut []).len();
                start.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        println!("{t:?}: {:.3} ms per row, {survivors} survivors", median(&mut times));
    }
}
