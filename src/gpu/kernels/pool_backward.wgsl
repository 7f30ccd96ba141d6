// The backward pass of a convolution block's pooling and activation, as src/model/features.rs
// runs it (src/layers/pool.rs `backward` after the activation's derivative):
//
//   dy[c, b, u, v] = act'(pooled(c, b, a, e)) dpooled(c, b, a, e)   if (u, v) = (a k + i, e k + j)
//                                                                   with arg = i k + j
//                  = 0                                              elsewhere
//
// for the convolution's output gradient dy: [C, images, H, W] (CNHW), with pooled / dpooled the
// block's output and its gradient in the layout pool_forward.wgsl wrote (plane (c, b) at
// c cs + b is: CNHW, or the flattened features [B, C H' W'] for the last block, whose gradient
// the first linear layer's input-gradient GEMM wrote there), arg its choices, and act'
// act.wgsl's derivative in terms of the output, (1 - y^2) for tanh, [y > 0] for ReLU. Rows and
// columns that floor mode drops, and images from the batch's row count on (batch.wgsl), get 0:
// the weight gradient sums dy over every column.
// One thread per element of dy; the grid is 2-D past 65535 workgroups.

struct Pool {
    channels: u32,
    images: u32,
    h: u32,
    w: u32,
    k: u32,
    ph: u32,
    pw: u32,
    cs: u32,
    is: u32,
    bias_off: u32,
}

@group(0) @binding(0) var<uniform> g: Pool;
@group(0) @binding(1) var<storage, read> dpooled: array<f32>;
@group(0) @binding(2) var<storage, read> pooled: array<f32>;
@group(0) @binding(3) var<storage, read> arg: array<u32>;
@group(0) @binding(4) var<storage, read_write> dy: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let e = (wg.y * nwg.x + wg.x) * 256u + li;
    let hw = g.h * g.w;
    if e >= g.channels * g.images * hw {
        return;
    }
    let q = e / hw;
    let u = e % hw / g.w;
    let v = e % g.w;
    let c = q / g.images;
    let b = q % g.images;
    let a = u / g.k;
    let f = v / g.k;
    var d = 0.0;
    if b < batch.rows && a < g.ph && f < g.pw && arg[(q * g.ph + a) * g.pw + f] == (u % g.k) * g.k + v % g.k {
        let p = c * g.cs + b * g.is + a * g.pw + f;
        d = act_backward(dpooled[p], pooled[p]);
    }
    dy[e] = d;
}
