// Tiled GEMM with fused epilogues: C[M, N] = epilogue(A[M, K] B[K, N]).
//
// Operands are windows of flat buffers, as BLAS gives them:
//   A(m, k) = a[a_off + m lda + k]      (A_TRANS: a[a_off + k lda + m])
//   B(k, n) = b[b_off + k ldb + n]      (B_TRANS: b[b_off + n ldb + k])
// The three products of a Linear layer (x: [B, in], W: [out, in] row-major, dy: [B, out]):
//   forward      y  = act(x W^T + b)          A = x, B = W (B_TRANS), M = B,   K = in,  MODE 0
//   input grad   dx = (dy W) * act'(y_prev)   A = dy, B = W,          M = B,   K = out, MODE 1
//   weight grad  dW = dy^T x                  A = dy (A_TRANS), B = x, M = out, K = B,  MODE 2
//                or plain SGD fused:  W = W - lr (dW + wd W)                              MODE 3
// MODE 0 adds the bias aux[aux_off + n] and applies the activation; MODE 1 multiplies by the
// activation's derivative at the previous layer's output aux[aux_off + m ldc + n] (act.wgsl).
// MODE 3 is PyTorch's SGD step without momentum (src/update.rs `SgdStep`), so the weight
// gradient is never stored.
//
// Tiling: a workgroup of 16x16 threads computes a 64x64 tile of C; each K step of 16 stages a
// 64x16 tile of A and a 16x64 tile of B in workgroup memory (8 KiB) as vec4s along M and N, and
// thread (lx, ly) accumulates the 4x4 block of rows 4 ly.. and columns 4 lx..: per K step two
// vec4 reads of workgroup memory feed 16 multiply-adds. Edges (sizes that are not multiples of
// the tile) are zero-filled on load and masked on store.
//
// Split-K: with few output tiles (the forward of a batch of 64 by 512 outputs is 8 tiles) the K
// range is cut into `splits` chunks of `k_chunk` (grid z); each chunk writes its partial sums to
// partial[z, M, N], and the `reduce` entry point adds them in order (deterministic) and applies
// the epilogue. With splits = 1 the epilogue runs here.
//
// rows_dim says which dimension is the batch's row count, read from the batch entry
// (batch.wgsl): 1 for M (forward, input grad), 2 for K (weight grad), 0 for neither.

override A_TRANS: bool = false;
override B_TRANS: bool = false;
override MODE: u32 = 2u;

struct Gemm {
    m: u32,
    n: u32,
    k: u32,
    lda: u32,
    ldb: u32,
    ldc: u32,
    a_off: u32,
    b_off: u32,
    c_off: u32,
    aux_off: u32,
    rows_dim: u32,
    splits: u32,
    k_chunk: u32,
    lr: f32,
    wd: f32,
    pad: u32,
}

@group(0) @binding(0) var<uniform> g: Gemm;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;
@group(0) @binding(4) var<storage, read> aux: array<f32>;
@group(0) @binding(5) var<storage, read_write> partial: array<f32>;

const TM: u32 = 64u;
const TN: u32 = 64u;
const TK: u32 = 16u;

var<workgroup> As: array<vec4<f32>, 256>; // [TK][TM / 4]
var<workgroup> Bs: array<vec4<f32>, 256>; // [TK][TN / 4]

fn dim_m() -> u32 {
    return select(g.m, batch.rows, g.rows_dim == 1u);
}

fn dim_k() -> u32 {
    return select(g.k, batch.rows, g.rows_dim == 2u);
}

fn epilogue(m: u32, n: u32, v: f32) {
    let ci = g.c_off + m * g.ldc + n;
    if MODE == 0u {
        c[ci] = act_forward(v + aux[g.aux_off + n]);
    } else if MODE == 1u {
        c[ci] = act_backward(v, aux[g.aux_off + m * g.ldc + n]);
    } else if MODE == 2u {
        c[ci] = v;
    } else {
        let p = c[ci];
        c[ci] = p - g.lr * (v + g.wd * p);
    }
}

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let M = dim_m();
    let N = g.n;
    let K = dim_k();
    let m0 = wg.y * TM;
    let n0 = wg.x * TN;
    // A short batch (the epoch's last, or evaluation's) leaves whole tiles past its rows: they
    // skip the K loop (the condition is the same for the whole workgroup, so the barriers below
    // stay in uniform control flow).
    if m0 >= M {
        return;
    }
    let kb = wg.z * g.k_chunk;
    let ke = min(K, kb + g.k_chunk);
    var acc: array<vec4<f32>, 4>;
    for (var k0 = kb; k0 < ke; k0 += TK) {
        for (var i = 0u; i < 4u; i++) {
            let e = li + i * 256u;
            var mm: u32;
            var kk: u32;
            if A_TRANS {
                mm = e % TM;
                kk = e / TM;
            } else {
                kk = e % TK;
                mm = e / TK;
            }
            let gm = m0 + mm;
            let gk = k0 + kk;
            var v = 0.0;
            if gm < M && gk < ke {
                if A_TRANS {
                    v = a[g.a_off + gk * g.lda + gm];
                } else {
                    v = a[g.a_off + gm * g.lda + gk];
                }
            }
            As[kk * 16u + mm / 4u][mm % 4u] = v;
        }
        for (var i = 0u; i < 4u; i++) {
            let e = li + i * 256u;
            var nn: u32;
            var kk: u32;
            if B_TRANS {
                kk = e % TK;
                nn = e / TK;
            } else {
                nn = e % TN;
                kk = e / TN;
            }
            let gn = n0 + nn;
            let gk = k0 + kk;
            var v = 0.0;
            if gn < N && gk < ke {
                if B_TRANS {
                    v = b[g.b_off + gn * g.ldb + gk];
                } else {
                    v = b[g.b_off + gk * g.ldb + gn];
                }
            }
            Bs[kk * 16u + nn / 4u][nn % 4u] = v;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < TK; kk++) {
            let av = As[kk * 16u + lid.y];
            let bv = Bs[kk * 16u + lid.x];
            acc[0] += av.x * bv;
            acc[1] += av.y * bv;
            acc[2] += av.z * bv;
            acc[3] += av.w * bv;
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < 4u; i++) {
        let m = m0 + 4u * lid.y + i;
        for (var j = 0u; j < 4u; j++) {
            let n = n0 + 4u * lid.x + j;
            if m < M && n < N {
                if g.splits > 1u {
                    partial[(wg.z * M + m) * N + n] = acc[i][j];
                } else {
                    epilogue(m, n, acc[i][j]);
                }
            }
        }
    }
}

// Sums the split-K partials in chunk order and applies the epilogue: one thread per element of
// C, the grid 2-D past 65535 workgroups.
@compute @workgroup_size(256)
fn reduce(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) li: u32) {
    let M = dim_m();
    let N = g.n;
    let i = (wg.y * nwg.x + wg.x) * 256u + li;
    if i >= M * N {
        return;
    }
    var s = 0.0;
    for (var z = 0u; z < g.splits; z++) {
        s += partial[z * M * N + i];
    }
    epilogue(i / N, i % N, s);
}
