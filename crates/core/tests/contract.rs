//! The contract's fixed points: Philox known answers, golden noise values, candidate order.

use flashsampling_core::candidate::{merge_into, orderable, pack, unpack, EMPTY};
use flashsampling_core::noise::{self, gumbel_max, NoiseStream};
use flashsampling_core::output::{RowStatus, SampleOutput};
use flashsampling_core::philox::philox4x32_10;
use serde_json::Value;

fn golden() -> Value {
    serde_json::from_str(include_str!("data/noise-golden.json")).expect("valid golden file")
}

fn hex(v: &Value) -> u32 {
    u32::from_str_radix(v.as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
}

fn ulps(a: f32, b: f32) -> u32 {
    orderable(a).abs_diff(orderable(b))
}

#[test]
fn philox_matches_random123_known_answers() {
    let g = golden();
    let kats = g["philox_known_answers"].as_array().unwrap();
    assert_eq!(kats.len(), 3);
    for kat in kats {
        let c: Vec<u32> = kat["counter"].as_array().unwrap().iter().map(hex).collect();
        let k: Vec<u32> = kat["key"].as_array().unwrap().iter().map(hex).collect();
        let out: Vec<u32> = kat["out"].as_array().unwrap().iter().map(hex).collect();
        assert_eq!(philox4x32_10([c[0], c[1], c[2], c[3]], [k[0], k[1]]).to_vec(), out);
    }
}

#[test]
fn noise_matches_golden_values() {
    let g = golden();
    let cases = g["noise"].as_array().unwrap();
    assert!(cases.len() >= 10);
    for c in cases {
        let (seed, offset) = (c["seed"].as_u64().unwrap(), c["offset"].as_u64().unwrap());
        let (sample, token) = (c["sample"].as_u64().unwrap() as u32, c["token"].as_u64().unwrap() as u32);
        let word = noise::word(seed, offset, sample, token);
        assert_eq!(word, hex(&c["word"]), "word of {c}");
        let w = noise::uniform_from_word(word);
        assert_eq!(w, c["w"].as_f64().unwrap() as f32, "w of {c}");
        let e = noise::exponential_from_uniform(w);
        assert!(ulps(e, c["E"].as_f64().unwrap() as f32) <= 2, "E of {c}: {e}");
        let g = noise::gumbel(seed, offset, sample, token);
        assert!(ulps(g, f32::from_bits(hex(&c["g_bits"]))) <= 2, "g of {c}: {g}");
    }
}

#[test]
fn noise_stream_equals_pointwise_noise_in_any_visiting_order() {
    let (seed, offset, sample) = (0x1234_5678_9ABC_DEF0, 77, 3);
    let mut stream = NoiseStream::new(seed, offset, sample);
    for t in [5u32, 6, 7, 8, 2, 100, 101, 4_000_000_001, 3] {
        assert_eq!(stream.gumbel(t).to_bits(), noise::gumbel(seed, offset, sample, t).to_bits(), "token {t}");
    }
}

#[test]
fn gumbel_max_bounds_every_word() {
    let max = gumbel_max();
    assert!(max > 22.8 && max < 23.0, "{max}");
    let mut word = 0u32;
    for _ in 0..200_000 {
        assert!(noise::gumbel_from_word(word) <= max);
        word = word.wrapping_add(0x9E37_79B9 >> (word & 7));
    }
    for w in (0..4096).chain(u32::MAX - 4096..=u32::MAX) {
        assert!(noise::gumbel_from_word(w) <= max);
        assert!(noise::gumbel_from_word(w).is_finite());
    }
}

#[test]
fn packed_order_is_score_order() {
    let scores = [
        f32::NEG_INFINITY,
        -f32::MAX,
        -3.5,
        -1e-30,
        -f32::from_bits(1),
        -0.0,
        0.0,
        f32::from_bits(1),
        1e-30,
        2.0,
        f32::MAX,
        f32::INFINITY,
    ];
    for pair in scores.windows(2) {
        assert!(pack(pair[0], 9) < pack(pair[1], 9), "{} !< {}", pair[0], pair[1]);
        assert!(pack(pair[0], 0) < pack(pair[1], u32::MAX - 1), "the score decides before the token");
    }
    for &s in &scores {
        let (back, token) = unpack(pack(s, 12345));
        assert_eq!((back.to_bits(), token), (s.to_bits(), 12345));
        assert!(pack(s, 0) > EMPTY);
    }
}

#[test]
fn ties_go_to_the_lowest_token() {
    assert!(pack(1.5, 3) > pack(1.5, 4));
    assert!(pack(f32::NEG_INFINITY, 0) > pack(f32::NEG_INFINITY, 1));
    let mut acc = vec![pack(0.25, 900), EMPTY];
    merge_into(&mut acc, &[pack(0.25, 17), pack(-1.0, 2)]);
    assert_eq!(unpack(acc[0]).1, 17);
    assert_eq!(unpack(acc[1]).1, 2);
}

#[test]
fn nan_wins_every_reduction_and_marks_the_row() {
    let nan = pack(f32::NAN, 40);
    assert_eq!(nan, pack(-f32::NAN, 40), "every NaN is made the same NaN");
    assert!(nan > pack(f32::INFINITY, 0));
    let out = SampleOutput::from_candidates(&[pack(1.0, 5), nan, pack(f32::NEG_INFINITY, 3), pack(2.0, 8)], 2);
    assert_eq!(out.status, vec![RowStatus::NanLogits, RowStatus::AllMasked]);
    assert_eq!(out.tokens, vec![0, 0, 0, 0]);
    let ok = SampleOutput::from_candidates(&[pack(1.0, 5), pack(-2.0, 6)], 1);
    assert_eq!((ok.status, ok.tokens), (vec![RowStatus::Ok, RowStatus::Ok], vec![5, 6]));
}

#[test]
fn derived_seeds_differ_per_request() {
    use flashsampling_core::derive_row_seed;
    let seeds: std::collections::HashSet<u64> = (0..10_000).map(|r| derive_row_seed(42, r)).collect();
    assert_eq!(seeds.len(), 10_000);
    assert_ne!(derive_row_seed(42, 0), derive_row_seed(43, 0));
}

#[test]
fn word_class_bounds_hold_for_every_class_edge_and_random_words() {
    use flashsampling_core::noise::GumbelBounds;
    let bounds = GumbelBounds::new();
    let mut rng = flashsampling_core::testdata::TestRng::new(5);
    for z in 0..32u32 {
        let lo = 1u32 << (31 - z);
        let hi = if z == 0 { u32::MAX } else { (lo << 1) - 1 };
        for w in [lo, lo + 1, hi - 1, hi, lo + (hi - lo) / 2] {
            assert!(noise::gumbel_from_word(w) <= bounds.of_word(w), "word {w:#x}");
        }
        for _ in 0..2000 {
            let w = lo + (rng.next_u64() as u32) % (hi - lo + 1).max(1);
            assert!(noise::gumbel_from_word(w) <= bounds.of_word(w), "word {w:#x}");
        }
    }
    assert_eq!(bounds.of_word(0), gumbel_max());
}
