// Loss, its gradient and the batch's statistics, fused, from the last layer's logits z [rows, C]
// and labels t. With inv_b = 1 / rows (the mean over the batch, PyTorch's reduction='mean'):
//
// NLL = true: LogSoftmax + NLLLoss, as the CPU's log_softmax_forward, loss_and_grad and
// log_softmax_backward:
//   y = z - lse,  lse = max + log(sum_j exp(z_j - max))
//   loss_i = -y[t]
//   dz_j = g_j - exp(y_j) sum(g) = g_j + exp(y_j) inv_b,   g = -onehot(t) inv_b
// NLL = false: CrossEntropyLoss on logits (softmax + cross-entropy):
//   loss_i = max + log(s) - z[t],  s = sum_j exp(z_j - max)
//   dz_j = (exp(z_j - max) / s - onehot(t)_j) inv_b
// Both equal (softmax(z) - onehot(t)) / rows; each follows its CPU formula step by step.
//
// correct: argmax (the first on ties, as torch.max) equals t. One workgroup of 256 threads takes
// the batch's rows in turn; the sums are reduced in workgroup memory in a fixed order
// (deterministic) and stored at stats[batch.slot] = (summed loss, correct count): the loss and
// accuracy are accumulated on the GPU, read back once per call.
// TRAIN = true also stores each row's own loss and correctness at rows[batch.start + r] (its
// position in the epoch's order): the hard-example log (src/examples.rs) takes them from there, as
// the CPU's takes loss::RowLoss from its forward pass.
// TRAIN = false (evaluation) writes no gradient and counts confusion[t][argmax] (atomics: counts
// are exact in any order).

override NLL: bool = true;
override TRAIN: bool = true;
override CLASSES: u32 = 2u;

struct Stat {
    loss: f32,
    correct: u32,
}

@group(0) @binding(0) var<storage, read> z: array<f32>;
@group(0) @binding(1) var<storage, read> labels: array<u32>;
@group(0) @binding(2) var<storage, read_write> dz: array<f32>;
@group(0) @binding(3) var<storage, read_write> stats: array<Stat>;
@group(0) @binding(4) var<storage, read_write> confusion: array<atomic<u32>>;
@group(0) @binding(5) var<storage, read_write> rows_out: array<Stat>;

var<workgroup> wl: array<f32, 256>;
var<workgroup> wc: array<u32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) li: u32) {
    let C = CLASSES;
    let rows = batch.rows;
    let inv_b = 1.0 / f32(rows);
    var loss = 0.0;
    var correct = 0u;
    for (var r = li; r < rows; r += 256u) {
        let row = r * C;
        let t = labels[r];
        var mx = z[row];
        var best = 0u;
        for (var j = 1u; j < C; j++) {
            let v = z[row + j];
            mx = max(mx, v);
            if v > z[row + best] {
                best = j;
            }
        }
        var s = 0.0;
        for (var j = 0u; j < C; j++) {
            s += exp(z[row + j] - mx);
        }
        // This row's loss, added to the batch's sum (a - b is a + (-b): the sums are unchanged).
        var l = 0.0;
        if NLL {
            let lse = mx + log(s);
            l = -(z[row + t] - lse);
            if TRAIN {
                for (var j = 0u; j < C; j++) {
                    let g = select(0.0, -inv_b, j == t);
                    dz[row + j] = g - exp(z[row + j] - lse) * (-inv_b);
                }
            }
        } else {
            l = mx + log(s) - z[row + t];
            if TRAIN {
                for (var j = 0u; j < C; j++) {
                    let p = exp(z[row + j] - mx) / s;
                    dz[row + j] = (p - select(0.0, 1.0, j == t)) * inv_b;
                }
            }
        }
        loss += l;
        if best == t {
            correct += 1u;
        }
        if TRAIN {
            rows_out[batch.start + r] = Stat(l, select(0u, 1u, best == t));
        }
        if !TRAIN {
            atomicAdd(&confusion[t * C + best], 1u);
        }
    }
    wl[li] = loss;
    wc[li] = correct;
    workgroupBarrier();
    for (var h = 128u; h > 0u; h >>= 1u) {
        if li < h {
            wl[li] += wl[li + h];
            wc[li] += wc[li + h];
        }
        workgroupBarrier();
    }
    if li == 0u {
        stats[batch.slot] = Stat(wl[0], wc[0]);
    }
}
