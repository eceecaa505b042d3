// Read-only bandwidth stream for the benchmark's floor: invocations fold the vec4<u32> words of
// `data` (grid-stride, four independent loads in flight) and store only an impossible result, so
// the reads cannot be removed and nothing is written.

@group(0) @binding(0) var<storage, read> data: array<vec4<u32>>;
@group(0) @binding(1) var<storage, read_write> sink: array<u32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let stride = groups.x * 256u;
    let n = arrayLength(&data);
    var acc = vec4<u32>(0u);
    var i = gid.x;
    for (; i + 3u * stride < n; i += 4u * stride) {
        acc ^= data[i] ^ data[i + stride] ^ data[i + 2u * stride] ^ data[i + 3u * stride];
    }
    for (; i < n; i += stride) {
        acc ^= data[i];
    }
    if all(acc == vec4<u32>(0xFFFFFFFFu, 0u, 0xFFFFFFFFu, gid.x)) {
        sink[0] = acc.x;
    }
}
