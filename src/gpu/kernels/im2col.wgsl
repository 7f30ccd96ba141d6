// im2col of a convolution (PyTorch's nn.Conv2d: groups 1, dilation 1, zero padding), as
// src/layers/conv.rs `Conv2d::im2col`:
//
//   col[(c k k + i k + j) N + (b H' + y) W' + x] = in(c, b, y s + i - p, x s + j - p)   (0 outside)
//
// for input channel c < C_in, kernel offsets i, j < k, image b < images, output position
// (y, x) < (H', W'), N = images H' W' columns, so col: [C_in k k, N]. The input's (channel,
// image) plane of H x W values starts at in_off + c cs + b is: the gathered batch
// [B, C_in, H, W] (NCHW: cs = H W, is = C_in H W) or the previous block's pooled output
// [C_in, images, H, W] (CNHW: cs = images H W, is = H W).
//
// Images from the batch's row count on (a short last batch; batch.wgsl) get zero columns, so
// the weight gradient, which sums over all N columns, adds exact zeros for them.
// One thread per element of col; the grid is 2-D past 65535 workgroups.

struct Im2col {
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
    in_off: u32,
}

@group(0) @binding(0) var<uniform> g: Im2col;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> col: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let e = (wg.y * nwg.x + wg.x) * 256u + li;
    let plane = g.oh * g.ow;
    let n = g.images * plane;
    if e >= g.c_in * g.k * g.k * n {
        return;
    }
    let row = e / n;
    let pos = e % n;
    let c = row / (g.k * g.k);
    let i = row / g.k % g.k;
    let j = row % g.k;
    let b = pos / plane;
    let y = pos % plane / g.ow;
    let x = pos % g.ow;
    // Signed positions: padding puts them below zero.
    let iy = i32(y * g.stride + i) - i32(g.pad);
    let ix = i32(x * g.stride + j) - i32(g.pad);
    var v = 0.0;
    if b < batch.rows && iy >= 0 && iy < i32(g.h) && ix >= 0 && ix < i32(g.w) {
        v = src[g.in_off + c * g.cs + b * g.is + u32(iy) * g.w + u32(ix)];
    }
    col[e] = v;
}
