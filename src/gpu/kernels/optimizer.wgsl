// Optimizer steps over the flat parameter buffer (layer by layer, weight [out, in] then bias, as
// Mlp::params), PyTorch's rules exactly as src/optim.rs (dampening 0, maximize off). Per
// parameter p with gradient g, at step t:
//
// sgd (momentum m > 0):  g = g + wd p;  buf = g if t = 1 else m buf + g;
//                        p = p - lr (g + m buf)   (Nesterov)   or   p = p - lr buf
// adam:                  g = g + wd p;  m1 = m1 + (1 - b1) (g - m1);  m2 = b2 m2 + (1 - b2) g^2;
//                        p = p - step_size m1 / (sqrt(m2) / bc2_sqrt + eps)
//                        step_size = lr / (1 - b1^t), bc2_sqrt = sqrt(1 - b2^t): per step, from
//                        the batch entry (computed on the CPU as src/optim.rs does)
// (Plain SGD without momentum is fused into the weight-gradient GEMM and the bias kernel.)
// One thread per parameter; the grid is 2-D past 65535 workgroups.

struct Optim {
    n: u32,
    nesterov: u32,
    lr: f32,
    momentum: f32,
    wd: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
}

@group(0) @binding(0) var<uniform> o: Optim;
@group(0) @binding(1) var<storage, read_write> params: array<f32>;
@group(0) @binding(2) var<storage, read> grads: array<f32>;
@group(0) @binding(3) var<storage, read_write> state1: array<f32>;
@group(0) @binding(4) var<storage, read_write> state2: array<f32>;

@compute @workgroup_size(256)
fn sgd(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
       @builtin(local_invocation_index) li: u32) {
    let i = (wg.y * nwg.x + wg.x) * 256u + li;
    if i >= o.n {
        return;
    }
    let p = params[i];
    let g = grads[i] + o.wd * p;
    let buf = select(o.momentum * state1[i] + g, g, batch.first == 1u);
    state1[i] = buf;
    params[i] = p - o.lr * select(buf, g + o.momentum * buf, o.nesterov == 1u);
}

@compute @workgroup_size(256)
fn adam(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let i = (wg.y * nwg.x + wg.x) * 256u + li;
    if i >= o.n {
        return;
    }
    let p = params[i];
    let g = grads[i] + o.wd * p;
    let m1 = state1[i] + (1.0 - o.beta1) * (g - state1[i]);
    let m2 = o.beta2 * state2[i] + (1.0 - o.beta2) * g * g;
    state1[i] = m1;
    state2[i] = m2;
    params[i] = p - batch.step_size * m1 / (sqrt(m2) / batch.bc2_sqrt + o.eps);
}
