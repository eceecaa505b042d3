//! The f32 dot product of the CPU fast path: 16 independent lanes summed in a fixed tree, so the
//! result is bit-identical whether the compiler uses SSE or AVX registers (no FMA: it would round
//! differently from machine to machine).

const LANES: usize = 16;

#[inline(always)]
fn dot_lanes(a: &[f32], b: &[f32]) -> f32 {
    let whole = a.len() / LANES * LANES;
    let mut acc = [0.0f32; LANES];
    for (x, y) in a[..whole].chunks_exact(LANES).zip(b[..whole].chunks_exact(LANES)) {
        for i in 0..LANES {
            acc[i] += x[i] * y[i];
        }
    }
    let mut width = LANES;
    while width > 1 {
        width /= 2;
        for i in 0..width {
            acc[i] += acc[i + width];
        }
    }
    a[whole..].iter().zip(&b[whole..]).fold(acc[0], |s, (x, y)| s + x * y)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
unsafe fn dot_avx(a: &[f32], b: &[f32]) -> f32 {
    dot_lanes(a, b)
}

/// `Σ a[i]·b[i]` in f32 over `a.len()` elements (`b` may be longer).
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let b = &b[..a.len()];
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx") {
        // SAFETY: the CPU supports AVX, checked just above.
        return unsafe { dot_avx(a, b) };
    }
    dot_lanes(a, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_f64_sum_and_every_length() {
        let mut rng = crate::testdata::TestRng::new(11);
        for len in [1usize, 3, 15, 16, 17, 100, 4096, 4103] {
            let a: Vec<f32> = (0..len).map(|_| rng.normal() as f32).collect();
            let b: Vec<f32> = (0..len).map(|_| rng.normal() as f32).collect();
            let exact: f64 = a.iter().zip(&b).map(|(&x, &y)| f64::from(x) * f64::from(y)).sum();
            let scale: f64 = a.iter().zip(&b).map(|(&x, &y)| (f64::from(x) * f64::from(y)).abs()).sum();
            let got = f64::from(dot(&a, &b));
            assert!((got - exact).abs() <= 1e-6 * scale + 1e-30, "len {len}: {got} vs {exact}");
            assert_eq!(dot(&a, &b).to_bits(), dot_lanes(&a, &b).to_bits(), "dispatch changed the rounding");
        }
    }
}
