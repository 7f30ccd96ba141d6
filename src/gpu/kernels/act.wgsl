// Activations and their derivatives, written in terms of the forward output y (as src/layers.rs):
//
//   ACT = 0 (none):  y = x                 dx = dy
//   ACT = 1 (tanh):  y = tanh(x)           dx = dy (1 - y^2)
//   ACT = 2 (ReLU):  y = max(x, 0)         dx = dy [y > 0]
//
// tanh is the CPU's branch-free formula (src/layers.rs `tanh`), not the WGSL builtin, whose
// accuracy the spec leaves to the platform (sinh/cosh can overflow to inf/inf for large x):
//   tanh(x) = sign(x) (-m / (2 + m)),  m = expm1(-2|x|),  |x| clamped to 9 (tanh(9) = 1 in f32),
//   expm1(y) = 2^k (expm1(r) + 1) - 1 with y = k ln2 + r, |r| <= ln2/2, expm1(r) by Taylor to r^7.

override ACT: u32 = 0u;

fn tanh_f32(x: f32) -> f32 {
    let a = min(abs(x), 9.0);
    let y = -2.0 * a;
    let k = round(y * 1.442695041);
    // ln 2 in two parts (Cody and Waite), so that k ln2 is exact in the first.
    let r = (y - k * 0.69314575) - k * 1.4286068e-6;
    let p = r * (1.0 + r * (0.5 + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0
        + r * (1.0 / 720.0 + r * (1.0 / 5040.0)))))));
    // 2^k for k in [-26, 0], from its exponent bits.
    let two_k = bitcast<f32>(u32(i32(k) + 127) << 23u);
    let m = two_k * p + (two_k - 1.0);
    let t = -m / (2.0 + m);
    return select(t, -t, x < 0.0);
}

fn act_forward(x: f32) -> f32 {
    if ACT == 1u {
        return tanh_f32(x);
    }
    if ACT == 2u {
        return max(x, 0.0);
    }
    return x;
}

fn act_backward(d: f32, y: f32) -> f32 {
    if ACT == 1u {
        return d * (1.0 - y * y);
    }
    if ACT == 2u {
        return select(d, 0.0, y <= 0.0);
    }
    return d;
}
