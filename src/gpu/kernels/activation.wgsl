// Element-wise activation kernels over n values (the training fuses both into the GEMM's
// epilogue; these stand-alone forms apply them to a whole buffer):
//
//   forward:   x[i] = act(x[i])                     (y = tanh(x) or max(x, 0), in place)
//   backward:  d[i] = d[i] act'(y[i])               (d (1 - y^2) or d [y > 0], in place)
//
// with the formulas of act.wgsl. One thread per element; the grid is 2-D past 65535 workgroups.

struct Elementwise {
    n: u32,
}

@group(0) @binding(0) var<uniform> e: Elementwise;
@group(0) @binding(1) var<storage, read_write> d: array<f32>;
@group(0) @binding(2) var<storage, read> y: array<f32>;

@compute @workgroup_size(256)
fn forward(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) li: u32) {
    let i = (wg.y * nwg.x + wg.x) * 256u + li;
    if i < e.n {
        d[i] = act_forward(d[i]);
    }
}

@compute @workgroup_size(256)
fn backward(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) li: u32) {
    let i = (wg.y * nwg.x + wg.x) * 256u + li;
    if i < e.n {
        d[i] = act_backward(d[i], y[i]);
    }
}
