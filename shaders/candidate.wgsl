// Packed candidates as (hi, lo) u32 pairs, compared lexicographically: the u64 order of
// DESIGN.md §3.4 — hi the order-preserving image of the score, lo `0xFFFFFFFF - token`.

// Order-preserving image of the f32 bits, every NaN made the positive quiet NaN first.
fn orderable(x: f32) -> u32 {
    var bits = bitcast<u32>(x);
    if (bits & 0x7FFFFFFFu) > 0x7F800000u {
        bits = 0x7FC00000u;
    }
    if (bits & 0x80000000u) != 0u {
        return ~bits;
    }
    return bits | 0x80000000u;
}

fn from_orderable(key: u32) -> f32 {
    if (key & 0x80000000u) != 0u {
        return bitcast<f32>(key & 0x7FFFFFFFu);
    }
    return bitcast<f32>(~key);
}

fn better(a: vec2<u32>, b: vec2<u32>) -> bool {
    return a.x > b.x || (a.x == b.x && a.y > b.y);
}
