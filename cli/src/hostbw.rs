//! Host memory bandwidth, measured both ways (DESIGN.md §6): a read-only stream (a sum) and a
//! copy (bytes read + written), each over a buffer far larger than the caches, on every thread.

use std::time::Instant;

pub struct HostBandwidth {
    /// Bytes per second read by a parallel sum.
    pub read: f64,
    /// Bytes per second read plus written by a parallel copy.
    pub copy: f64,
}

const BYTES: usize = 1 << 30;

pub fn host_bandwidth() -> HostBandwidth {
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let src: Vec<u64> = (0..BYTES / 8).map(|i| i as u64 ^ 0x5DEE_CE66).collect();
    let mut dst = vec![0u64; src.len()];
    let chunk = src.len().div_ceil(threads);
    let best = |f: &mut dyn FnMut()| {
        (0..3)
            .map(|_| {
                let start = Instant::now();
                f();
                start.elapsed().as_secs_f64()
            })
            .fold(f64::INFINITY, f64::min)
    };
    let read = best(&mut || {
        let total: u64 = std::thread::scope(|s| {
            let handles: Vec<_> = src.chunks(chunk).map(|c| s.spawn(move || sum_lanes(c))).collect();
            handles.into_iter().map(|h| h.join().unwrap_or(0)).fold(0, u64::wrapping_add)
        });
        std::hint::black_box(total);
    });
    let copy = best(&mut || {
        std::thread::scope(|s| {
            for (d, c) in dst.chunks_mut(chunk).zip(src.chunks(chunk)) {
                s.spawn(move || d.copy_from_slice(c));
            }
        });
        std::hint::black_box(&dst);
    });
    HostBandwidth { read: BYTES as f64 / read, copy: 2.0 * BYTES as f64 / copy }
}

/// A sum over eight independent lanes: one accumulator chain would measure add latency, not memory.
fn sum_lanes(values: &[u64]) -> u64 {
    let mut lanes = [0u64; 8];
    for block in values.chunks_exact(8) {
        for (l, &v) in lanes.iter_mut().zip(block) {
            *l = l.wrapping_add(v);
        }
    }
    lanes.iter().chain(values.chunks_exact(8).remainder()).fold(0, |a, &x| a.wrapping_add(x))
}
