//! The shaders' Philox words are bit-identical with the core's and their Gumbel values within 2
//! ulp, on the golden values and on random queries. Skips (with a message) where no adapter exists.

use flashsampling_core::noise;
use flashsampling_core::testdata::TestRng;
use flashsampling_wgpu::{NoiseQuery, WgpuBackend};
use serde_json::Value;

fn backend() -> Option<WgpuBackend> {
    match WgpuBackend::open() {
        Ok(b) => Some(b),
        Err(e) => {
            assert!(std::env::var("FLASHSAMPLING_REQUIRE").unwrap_or_default().split(',').all(|r| r.trim() != "wgpu"));
            eprintln!("skipped: {e}");
            None
        }
    }
}

/// Distance in representable f32 values.
fn ulps(a: f32, b: f32) -> u32 {
    let key = |x: f32| {
        let bits = x.to_bits() as i32;
        if bits < 0 {
            i32::MIN.wrapping_sub(bits)
        } else {
            bits
        }
    };
    key(a).abs_diff(key(b))
}

fn ulp(x: f32) -> f32 {
    f32::from_bits(x.abs().to_bits() + 1) - x.abs()
}

fn hex(v: &Value) -> u32 {
    u32::from_str_radix(v.as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
}

#[test]
fn golden_noise() {
    let Some(backend) = backend() else { return };
    let golden: Value = serde_json::from_str(include_str!("../../core/tests/data/noise-golden.json")).unwrap();
    let cases = golden["noise"].as_array().unwrap();
    let queries: Vec<NoiseQuery> = cases
        .iter()
        .map(|c| NoiseQuery {
            seed: c["seed"].as_u64().unwrap(),
            offset: c["offset"].as_u64().unwrap(),
            sample: c["sample"].as_u64().unwrap() as u32,
            token: c["token"].as_u64().unwrap() as u32,
        })
        .collect();
    let got = backend.noise(&queries).unwrap();
    for (c, (word, g)) in cases.iter().zip(got) {
        assert_eq!(word, hex(&c["word"]), "word of {c}");
        let want = f32::from_bits(hex(&c["g_bits"]));
        assert!(ulps(g, want) <= 2, "g = {g} against {want} for {c}");
    }
}

#[test]
fn random_noise_matches_core() {
    let Some(backend) = backend() else { return };
    let mut rng = TestRng::new(0x5EED);
    let queries: Vec<NoiseQuery> = (0..100_000)
        .map(|_| NoiseQuery {
            seed: rng.next_u64(),
            offset: rng.next_u64() >> (rng.next_u64() % 64),
            sample: rng.next_u64() as u32 >> (rng.next_u64() % 32),
            token: rng.next_u64() as u32,
        })
        .collect();
    let got = backend.noise(&queries).unwrap();
    let mut worst = 0;
    for (q, (word, g)) in queries.iter().zip(got) {
        let want_word = noise::word(q.seed, q.offset, q.sample, q.token);
        assert_eq!(word, want_word, "word of {q:?}");
        let want = noise::gumbel_from_word(word);
        let e = noise::exponential_from_uniform(noise::uniform_from_word(word));
        // g = -ln(E) turns an ulp of E into ulp(E) / E of g, which near g = 0 is several ulp of g;
        // allow E within 2 ulp and g within 2 ulp on top of that conditioning.
        let tolerance = 2.0 * ulp(want) + 2.0 * ulp(e) / e;
        assert!((g - want).abs() <= tolerance, "g = {g} against {want} for {q:?}");
        worst = worst.max(ulps(g, want));
    }
    eprintln!("wgpu noise: 100,000 words identical, g within {worst} ulp at worst");
}
