// Max pooling with the convolution block's epilogue, as src/model/features.rs computes a block:
//
//   pooled(c, b, a, e) = act(max over i, j < k of y[c, b, a k + i, e k + j] + bias[c])
//   arg[((c images + b) H' + a) W' + e] = i k + j of that maximum
//
// (PyTorch's nn.MaxPool2d(k): stride k, no padding, floor mode, H' = H / k, W' = W / k), for
// the convolution's output y: [C, images, H, W] (CNHW, bias not yet added; src/layers/conv.rs
// `forward_unbiased`). Adding the bias and the activation after the pooling equals PyTorch's
// maxpool(act(conv + b)) (a max commutes with adding a per-channel constant and with a
// non-decreasing activation) on a quarter of the values: the CPU's order, so the same numbers.
// Ties and NaN as PyTorch's CPU kernel and src/layers/pool.rs: the first maximum in row-major
// order wins, and a NaN wins over any number (the last NaN) where the compiler keeps NaN (WGSL
// lets it assume there are none, https://www.w3.org/TR/WGSL/#floating-point-evaluation; a NaN
// here means the run diverged, which the loss reports either way).
//
// The (channel, image) plane of H' x W' outputs goes to c cs + b is: the next block's input
// (CNHW: cs = images H' W', is = H' W'), or after the last block straight into the flattened
// features [B, C H' W'] that the first linear layer reads (cs = H' W', is = C H' W'), which is
// PyTorch's view(-1, C H' W'). The bias is params[bias_off + c]; ACT from act.wgsl.
// One thread per pooled value; the grid is 2-D past 65535 workgroups.

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
@group(0) @binding(1) var<storage, read> y: array<f32>;
@group(0) @binding(2) var<storage, read> params: array<f32>;
@group(0) @binding(3) var<storage, read_write> pooled: array<f32>;
@group(0) @binding(4) var<storage, read_write> arg: array<u32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let o = (wg.y * nwg.x + wg.x) * 256u + li;
    let out_plane = g.ph * g.pw;
    if o >= g.channels * g.images * out_plane {
        return;
    }
    let q = o / out_plane;
    let a = o % out_plane / g.pw;
    let e = o % g.pw;
    let base = q * g.h * g.w + a * g.k * g.w + e * g.k;
    var best = y[base];
    var at = 0u;
    for (var i = 0u; i < g.k; i++) {
        for (var j = 0u; j < g.k; j++) {
            let v = y[base + i * g.w + j];
            // PyTorch's `if (val > maxval || isnan(val))`; v != v is NaN (WGSL has no isnan).
            // Starting from the first value equals starting from -inf (src/layers/pool.rs).
            if v > best || v != v {
                best = v;
                at = i * g.k + j;
            }
        }
    }
    let c = q / g.images;
    let b = q % g.images;
    arg[o] = at;
    pooled[c * g.cs + b * g.is + a * g.pw + e] = act_forward(best + params[g.bias_off + c]);
}
