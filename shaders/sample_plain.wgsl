// sample.wgsl's epilogue for calls without constraints or logprobs: temperature only.

fn scaled_logit(sum: f32, row: Row, b: u32, token: u32) -> f32 {
    return tempered(sum, row);
}

fn tile_done(tile: u32, first_hidden: u32, tile_rows: u32, block: u32, lid: u32) {}
