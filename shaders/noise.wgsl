// Gumbel noise as a pure function of (seed, offset, sample, global token): DESIGN.md §3.2.
// WGSL has no 64-bit integers, so Philox's 32x32->64 products are built from 16-bit halves.

const PHILOX_M0: u32 = 0xD2511F53u;
const PHILOX_M1: u32 = 0xCD9E8D57u;
const PHILOX_W0: u32 = 0x9E3779B9u;
const PHILOX_W1: u32 = 0xBB67AE85u;
const TWO_POW_MINUS_32: f32 = 2.3283064365386963e-10;
const UNIFORM_MAX: f32 = 0.99999994039535522;

// High 32 bits of the 64-bit product a * b.
fn mul_hi(a: u32, b: u32) -> u32 {
    let al = a & 0xFFFFu;
    let ah = a >> 16u;
    let bl = b & 0xFFFFu;
    let bh = b >> 16u;
    let ll = al * bl;
    let lh = al * bh;
    let hl = ah * bl;
    let hh = ah * bh;
    let mid = (ll >> 16u) + (lh & 0xFFFFu) + (hl & 0xFFFFu);
    return hh + (lh >> 16u) + (hl >> 16u) + (mid >> 16u);
}

fn philox4x32_10(counter: vec4<u32>, key: vec2<u32>) -> vec4<u32> {
    var c = counter;
    var k = key;
    for (var r = 0u; r < 10u; r++) {
        if r > 0u {
            k = k + vec2<u32>(PHILOX_W0, PHILOX_W1);
        }
        let hi0 = mul_hi(PHILOX_M0, c.x);
        let lo0 = PHILOX_M0 * c.x;
        let hi1 = mul_hi(PHILOX_M1, c.z);
        let lo1 = PHILOX_M1 * c.z;
        c = vec4<u32>(hi1 ^ c.y ^ k.x, lo1, hi0 ^ c.w ^ k.y, lo0);
    }
    return c;
}

// The four noise words of the group holding `token`, under a row's (seed, offset) and a sample.
fn noise_words(seed: vec2<u32>, offset: vec2<u32>, sample: u32, token: u32) -> vec4<u32> {
    return philox4x32_10(vec4<u32>(token >> 2u, sample, offset.x, offset.y), seed);
}

// Accurate logarithms (< 1 ulp, after fdlibm's logf/log1pf): the built-in `log` may be a few ulp
// off, which biases the tail and breaks agreement with the other backends.
const LN2_HI: f32 = 6.9313812256e-01;
const LN2_LO: f32 = 9.0580006145e-06;
const SQRT_HALF_BITS: u32 = 0x3F3504F3u;

// ln(1 + f) + k ln 2 + c for f in [sqrt(1/2) - 1, sqrt(2) - 1).
fn log_reduced(f: f32, k: f32, c: f32) -> f32 {
    let s = f / (2.0 + f);
    let z = s * s;
    let w = z * z;
    let t1 = w * (0.40000972152 + w * 0.24279078841);
    let t2 = z * (0.66666662693 + w * 0.28498786688);
    let r = t2 + t1;
    let hfsq = 0.5 * f * f;
    return s * (hfsq + r) + (k * LN2_LO + c) - hfsq + f + k * LN2_HI;
}

// ln(x) for positive normal x.
fn log_accurate(x: f32) -> f32 {
    let ix = bitcast<u32>(x) + (0x3F800000u - SQRT_HALF_BITS);
    let k = f32(i32(ix >> 23u) - 127);
    let f = bitcast<f32>((ix & 0x007FFFFFu) + SQRT_HALF_BITS) - 1.0;
    return log_reduced(f, k, 0.0);
}

// ln(1 + x) for x > -1, with the rounding error of 1 + x carried in c.
fn log1p(x: f32) -> f32 {
    if abs(x) < 5.9604645e-08 {
        return x;
    }
    if x >= -0.29289323 && x < 0.41421356 {
        return log_reduced(x, 0.0, 0.0);
    }
    let u = 1.0 + x;
    let iu = bitcast<u32>(u) + (0x3F800000u - SQRT_HALF_BITS);
    let ki = i32(iu >> 23u) - 127;
    var c = 0.0;
    if ki < 25 {
        c = select(x - (u - 1.0), 1.0 - (u - x), ki >= 2) / u;
    }
    let f = bitcast<f32>((iu & 0x007FFFFFu) + SQRT_HALF_BITS) - 1.0;
    return log_reduced(f, f32(ki), c);
}

fn gumbel_from_word(word: u32) -> f32 {
    let w = min((f32(word) + 0.5) * TWO_POW_MINUS_32, UNIFORM_MAX);
    let e = -log1p(-w);
    return -log_accurate(e);
}
