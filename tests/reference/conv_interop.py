"""Reads a Skywatch checkpoint of the `conv` preset with Python's safetensors + NumPy: checks that
it holds exactly the tensors of the book's Net (chapter 8 of Deep Learning with PyTorch), with
PyTorch's names and shapes, so that `Net().load_state_dict(load_file(f))` (strict) takes it;
recomputes Net's output in NumPy; and writes a state_dict the way safetensors.torch.save_file
does for Skywatch to read back.

usage: conv_interop.py CHECKPOINT INPUT.npy OUTPUT.npy WRITE_STATE_DICT
  INPUT.npy   batch of normalised images [B, 3072] (float32), each row [3, 32, 32]
  OUTPUT.npy  Skywatch's logits for that batch [B, 2]
"""
import sys

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file, save_file

ckpt, x_path, out_path, write_path = sys.argv[1:5]
sd = load_file(ckpt)
expected = {
    "conv1.weight": (16, 3, 3, 3), "conv1.bias": (16,),
    "conv2.weight": (8, 16, 3, 3), "conv2.bias": (8,),
    "fc1.weight": (32, 512), "fc1.bias": (32,),
    "fc2.weight": (2, 32), "fc2.bias": (2,),
}
got = {k: v.shape for k, v in sd.items()}
assert got == expected, f"state_dict shapes {got} != Net's {expected}"
assert all(v.dtype == np.float32 for v in sd.values()), {k: v.dtype for k, v in sd.items()}
with safe_open(ckpt, "np") as f:
    assert f.metadata().get("format") == "pt", f.metadata()


def conv2d(x, w, b):
    """nn.Conv2d(kernel_size=3, padding=1): x [B, C, H, W], w [O, C, 3, 3] -> [B, O, H, W]."""
    n, c, h, wd = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    out = np.zeros((n, w.shape[0], h, wd))
    for i in range(3):
        for j in range(3):
            out += np.einsum("nchw,oc->nohw", xp[:, :, i:i + h, j:j + wd], w[:, :, i, j])
    return out + b[None, :, None, None]


def max_pool2(x):
    n, c, h, w = x.shape
    return x.reshape(n, c, h // 2, 2, w // 2, 2).max(axis=(3, 5))


p = {k: v.astype(np.float64) for k, v in sd.items()}
x = np.load(x_path).astype(np.float64).reshape(-1, 3, 32, 32)
out = max_pool2(np.tanh(conv2d(x, p["conv1.weight"], p["conv1.bias"])))
out = max_pool2(np.tanh(conv2d(out, p["conv2.weight"], p["conv2.bias"])))
out = np.tanh(out.reshape(-1, 8 * 8 * 8) @ p["fc1.weight"].T + p["fc1.bias"])
logits = out @ p["fc2.weight"].T + p["fc2.bias"]
ours = np.load(out_path)
err = np.abs(logits - ours).max()
assert err < 1e-4, f"NumPy and Skywatch logits differ by {err}"

# A file as PyTorch would write it: new weights (scaled by 0.5) so that a stale read would show.
save_file({k: (v * 0.5).astype(np.float32) for k, v in sd.items()}, write_path, metadata={"format": "pt"})
print(f"ok: exactly Net's names and shapes; max |numpy - skywatch| = {err:.2e}")
