//! The benchmark, on a GPU only: `cargo test --release -p flashsampling-cuda --test bench --
//! --ignored --nocapture`, CSV to $FLASHSAMPLING_BENCH_CSV (default bench-cuda.csv). Until the
//! CLI's `bench --backend cuda` calls `flashsampling_cuda::bench::run`, this drives it.

use flashsampling_core::bench::{Record, BATCHES, SHAPES};

#[test]
#[ignore = "needs a GPU; minutes"]
fn bench_cuda() {
    let records = flashsampling_cuda::bench::run(&SHAPES, &BATCHES, 100).unwrap();
    let mut csv = format!("{}\n", Record::CSV_HEADER);
    for r in &records {
        println!("{}", r.csv());
        csv.push_str(&r.csv());
        csv.push('\n');
    }
    let path = std::env::var("FLASHSAMPLING_BENCH_CSV").unwrap_or_else(|_| "bench-cuda.csv".into());
    std::fs::write(&path, csv).unwrap();
}
