// Register-blocked GEMM with fused epilogues: C[M, N] = epilogue(A[M, K] B[K, N]).
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
// BIAS (MODE 2 or 3, no split): the row sums of A over K, s(m) = sum_k A(m, k) in k order (the
// bias gradient db = sum_rows dy when A = dy^T, as the CPU sums it), go to c[bias_off + m]
// through the same epilogue, so the weight gradient's dispatch also does the bias's.
//
// Tiling (the tile's constants TM, TN, TK, RM, RN are prepended from the kernel table,
// src/gpu/table.rs): a workgroup of (TN / RN) x (TM / RM) invocations computes a TM x TN tile of
// C. Each K step of TK stages A[TM, TK] as As[TK][TM / 4] and B[TK, TN] as Bs[TK][TN / 4] (vec4s
// along M and N) in workgroup memory; invocation (lx, ly) accumulates the RM x RN block (RM, RN
// each 4 or 8) of rows m0 + RM ly + i and vec4 columns n0 + 4 (j NX + lx), j < RN / 4 (adjacent
// invocations read adjacent vec4s of Bs): per k, RM / 4 + RN / 4 vec4 reads of workgroup memory
// feed RM RN multiply-adds.
// Edges (sizes that are not multiples of the tile) are zero-filled on load and masked on store.
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
override BIAS: bool = false;

const NX: u32 = TN / RN;
const NY: u32 = TM / RM;
const THREADS: u32 = NX * NY;
const RM4: u32 = RM / 4u;

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
    bias_off: u32,
}

@group(0) @binding(0) var<uniform> g: Gemm;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;
@group(0) @binding(4) var<storage, read> aux: array<f32>;
@group(0) @binding(5) var<storage, read_write> partial: array<f32>;

var<workgroup> As: array<vec4<f32>, TK * TM / 4u>; // [TK][TM / 4]
var<workgroup> Bs: array<vec4<f32>, TK * TN / 4u>; // [TK][TN / 4]

fn dim_m() -> u32 {
    return select(g.m, batch.rows, g.rows_dim == 1u);
}

fn dim_k() -> u32 {
    return select(g.k, batch.rows, g.rows_dim == 2u);
}

// A(m, k) and B(k, n), 0 past M and N.
fn load_a(m: u32, k: u32, M: u32) -> f32 {
    if m >= M {
        return 0.0;
    }
    if A_TRANS {
        return a[g.a_off + k * g.lda + m];
    }
    return a[g.a_off + m * g.lda + k];
}

fn load_b(k: u32, n: u32, N: u32) -> f32 {
    if n >= N {
        return 0.0;
    }
    if B_TRANS {
        return b[g.b_off + n * g.ldb + k];
    }
    return b[g.b_off + k * g.ldb + n];
}

fn update(ci: u32, v: f32) {
    if MODE == 2u {
        c[ci] = v;
    } else {
        let p = c[ci];
        c[ci] = p - g.lr * (v + g.wd * p);
    }
}

fn epilogue(m: u32, n: u32, v: f32) {
    let ci = g.c_off + m * g.ldc + n;
    if MODE == 0u {
        c[ci] = act_forward(v + aux[g.aux_off + n]);
    } else if MODE == 1u {
        c[ci] = act_backward(v, aux[g.aux_off + m * g.ldc + n]);
    } else {
        update(ci, v);
    }
}

@compute @workgroup_size(NX, NY)
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
    // The invocations that also sum A's rows for the fused bias: the first column of the first
    // column of tiles.
    let sums = BIAS && wg.x == 0u && lid.x == 0u;
    // The RM x RN block: row i, vec4 column j in cij (RM, RN in {4, 8}); row sums in s0, s1.
    var c00 = vec4<f32>(0.0);
    var c10 = vec4<f32>(0.0);
    var c20 = vec4<f32>(0.0);
    var c30 = vec4<f32>(0.0);
    var c40 = vec4<f32>(0.0);
    var c50 = vec4<f32>(0.0);
    var c60 = vec4<f32>(0.0);
    var c70 = vec4<f32>(0.0);
    var c01 = vec4<f32>(0.0);
    var c11 = vec4<f32>(0.0);
    var c21 = vec4<f32>(0.0);
    var c31 = vec4<f32>(0.0);
    var c41 = vec4<f32>(0.0);
    var c51 = vec4<f32>(0.0);
    var c61 = vec4<f32>(0.0);
    var c71 = vec4<f32>(0.0);
    var s0 = vec4<f32>(0.0);
    var s1 = vec4<f32>(0.0);
    for (var k0 = kb; k0 < ke; k0 += TK) {
        // Each invocation fills whole vec4 slots: 4 consecutive rows of A (columns of B) at
        // one k, one vec4 store to workgroup memory.
        for (var e = li; e < TM * TK / 4u; e += THREADS) {
            var m4: u32;
            var kk: u32;
            if A_TRANS {
                m4 = e % (TM / 4u);
                kk = e / (TM / 4u);
            } else {
                kk = e % TK;
                m4 = e / TK;
            }
            var v = vec4<f32>(0.0);
            let gk = k0 + kk;
            if gk < ke {
                let gm = m0 + 4u * m4;
                v = vec4<f32>(load_a(gm, gk, M), load_a(gm + 1u, gk, M), load_a(gm + 2u, gk, M),
                              load_a(gm + 3u, gk, M));
            }
            As[kk * (TM / 4u) + m4] = v;
        }
        for (var e = li; e < TN * TK / 4u; e += THREADS) {
            var n4: u32;
            var kk: u32;
            if B_TRANS {
                kk = e % TK;
                n4 = e / TK;
            } else {
                n4 = e % (TN / 4u);
                kk = e / (TN / 4u);
            }
            var v = vec4<f32>(0.0);
            let gk = k0 + kk;
            if gk < ke {
                let gn = n0 + 4u * n4;
                v = vec4<f32>(load_b(gk, gn, N), load_b(gk, gn + 1u, N), load_b(gk, gn + 2u, N),
                              load_b(gk, gn + 3u, N));
            }
            Bs[kk * (TN / 4u) + n4] = v;
        }
        workgroupBarrier();
        if sums {
            for (var kk = 0u; kk < TK; kk++) {
                s0 += As[kk * (TM / 4u) + lid.y * RM4];
                if RM == 8u {
                    s1 += As[kk * (TM / 4u) + lid.y * RM4 + 1u];
                }
            }
        }
        // The register block written out (no loops, no private arrays): compilers of software
        // adapters keep indexed arrays in memory, not registers.
        for (var kk = 0u; kk < TK; kk++) {
            let ab = kk * (TM / 4u) + lid.y * RM4;
            let bb = kk * (TN / 4u) + lid.x;
            let a0 = As[ab];
            let b0 = Bs[bb];
            c00 += a0.x * b0;
            c10 += a0.y * b0;
            c20 += a0.z * b0;
            c30 += a0.w * b0;
            if RN == 8u {
                let b1 = Bs[bb + NX];
                c01 += a0.x * b1;
                c11 += a0.y * b1;
                c21 += a0.z * b1;
                c31 += a0.w * b1;
                if RM == 8u {
                    let a1 = As[ab + 1u];
                    c40 += a1.x * b0;
                    c50 += a1.y * b0;
                    c60 += a1.z * b0;
                    c70 += a1.w * b0;
                    c41 += a1.x * b1;
                    c51 += a1.y * b1;
                    c61 += a1.z * b1;
                    c71 += a1.w * b1;
                }
            } else if RM == 8u {
                let a1 = As[ab + 1u];
                c40 += a1.x * b0;
                c50 += a1.y * b0;
                c60 += a1.z * b0;
                c70 += a1.w * b0;
            }
        }
        workgroupBarrier();
    }
    let r = m0 + lid.y * RM;
    let o = vec4<u32>(M, N, n0 + 4u * lid.x, wg.z);
    store_row(r, o, c00, c01, sums, s0.x);
    store_row(r + 1u, o, c10, c11, sums, s0.y);
    store_row(r + 2u, o, c20, c21, sums, s0.z);
    store_row(r + 3u, o, c30, c31, sums, s0.w);
    if RM == 8u {
        store_row(r + 4u, o, c40, c41, sums, s1.x);
        store_row(r + 5u, o, c50, c51, sums, s1.y);
        store_row(r + 6u, o, c60, c61, sums, s1.z);
        store_row(r + 7u, o, c70, c71, sums, s1.w);
    }
}

// Row m of the invocation's block: v0 at columns o.z.., v1 (RN = 8) at o.z + 4 NX..; with `sums`,
// also the row sum s to the bias. o = (M, N, first column, K chunk).
fn store_row(m: u32, o: vec4<u32>, v0: vec4<f32>, v1: vec4<f32>, sums: bool, s: f32) {
    if m >= o.x {
        return;
    }
    if sums {
        update(g.bias_off + m, s);
    }
    store4(m, o.z, v0, o);
    if RN == 8u {
        store4(m, o.z + 4u * NX, v1, o);
    }
}

fn store4(m: u32, n: u32, v: vec4<f32>, o: vec4<u32>) {
    store1(m, n, v.x, o);
    store1(m, n + 1u, v.y, o);
    store1(m, n + 2u, v.z, o);
    store1(m, n + 3u, v.w, o);
}

// One element of C: a split-K partial, or through the epilogue.
fn store1(m: u32, n: u32, v: f32, o: vec4<u32>) {
    if n >= o.y {
        return;
    }
    if g.splits > 1u {
        partial[(o.w * o.x + m) * o.y + n] = v;
    } else {
        epilogue(m, n, v);
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
