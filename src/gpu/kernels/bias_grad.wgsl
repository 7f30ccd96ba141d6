// Bias gradient of a Linear layer, db = sum over the batch's rows of dy (dy: [rows, n]), summed
// row by row in order as the CPU does; one thread per output feature, coalesced across features.
//
//   SGD = false:  out[off + o] = db[o]                     (into the gradient buffer)
//   SGD = true:   p = out[off + o];  out[off + o] = p - lr (db[o] + wd p)
//                 (PyTorch's SGD step without momentum, applied to the bias in the parameters)

override SGD: bool = false;

struct BiasGrad {
    n: u32,
    off: u32,
    lr: f32,
    wd: f32,
}

@group(0) @binding(0) var<uniform> bg: BiasGrad;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let o = gid.x;
    if o >= bg.n {
        return;
    }
    var s = 0.0;
    for (var r = 0u; r < batch.rows; r++) {
        s += dy[r * bg.n + o];
    }
    if SGD {
        let p = out[bg.off + o];
        out[bg.off + o] = p - bg.lr * (s + bg.wd * p);
    } else {
        out[bg.off + o] = s;
    }
}
