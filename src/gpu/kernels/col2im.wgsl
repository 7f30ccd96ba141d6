// col2im: the input gradient of a convolution from dcol = W^T dY ([C_in k k, N], N = images H' W'),
// as src/layers/conv.rs `Conv2d::col2im`: every input pixel gets the sum of the dcol entries
// that im2col copied from it,
//
//   dx(c, b, y, x) = sum over i, j < k (ascending, from 0) with y' s + i - p = y, x' s + j - p = x
//                    and (y', x') inside the H' x W' output of
//                      dcol[(c k k + i k + j) N + (b H' + y') W' + x']
//
// in the CPU's order (i, then j), so the sums are the CPU's bit for bit. The (channel, image)
// plane of H x W values goes to out_off + c cs + b is (the previous block's pooled layout,
// CNHW: cs = images H W, is = H W; or NCHW for an input gradient of the data). A gather, not
// a scatter: one thread per input pixel, no atomics; the grid is 2-D past 65535 workgroups.

struct Col2im {
    c_in: u32,
    h: u32,
    w: u32,
    k: u32,
    pad: u32,
    stride: u32,
    oh: u32,
    ow: u32,
    cs: u32,
    is: u32,
    images: u32,
    out_off: u32,
}

@group(0) @binding(0) var<uniform> g: Col2im;
@group(0) @binding(1) var<storage, read> dcol: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let e = (wg.y * nwg.x + wg.x) * 256u + li;
    let hw = g.h * g.w;
    if e >= g.c_in * g.images * hw {
        return;
    }
    // e runs over (c, b, y, x).
    let c = e / (g.images * hw);
    let b = e / hw % g.images;
    let y = e % hw / g.w;
    let x = e % g.w;
    let n = g.images * g.oh * g.ow;
    var s = 0.0;
    for (var i = 0u; i < g.k; i++) {
        // y' s = y + p - i, inside the output and on the stride.
        let ty = i32(y + g.pad) - i32(i);
        if ty < 0 || u32(ty) % g.stride != 0u || u32(ty) / g.stride >= g.oh {
            continue;
        }
        let oy = u32(ty) / g.stride;
        for (var j = 0u; j < g.k; j++) {
            let tx = i32(x + g.pad) - i32(j);
            if tx < 0 || u32(tx) % g.stride != 0u || u32(tx) / g.stride >= g.ow {
                continue;
            }
            let ox = u32(tx) / g.stride;
            s += dcol[((c * g.k + i) * g.k + j) * n + (b * g.oh + oy) * g.ow + ox];
        }
    }
    dx[g.out_off + c * g.cs + b * g.is + y * g.w + x] = s;
}
