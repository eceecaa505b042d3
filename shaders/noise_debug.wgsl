// Test entry point: the noise word and Gumbel value of given (seed, offset, sample, token) queries.

struct Query {
    seed: vec2<u32>,
    offset: vec2<u32>,
    sample: u32,
    token: u32,
    pad: vec2<u32>,
}

@group(0) @binding(0) var<storage, read> queries: array<Query>;
@group(0) @binding(1) var<storage, read_write> results: array<vec2<u32>>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if i >= arrayLength(&queries) {
        return;
    }
    let q = queries[i];
    let word = noise_words(q.seed, q.offset, q.sample, q.token)[q.token & 3u];
    results[i] = vec2<u32>(word, bitcast<u32>(gumbel_from_word(word)));
}
