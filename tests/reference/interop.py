"""Reads a Skywatch checkpoint with Python's safetensors + NumPy, checks PyTorch's state_dict
names and shapes, recomputes the network's output in NumPy, and writes a state_dict the way
safetensors.torch.save_file does (F32 tensors, {"format": "pt"}) for Skywatch to read back.

usage: interop.py CHECKPOINT INPUT.npy OUTPUT.npy WRITE_STATE_DICT
  INPUT.npy   batch of normalised images [B, 3072] (float32)
  OUTPUT.npy  Skywatch's log-probabilities for that batch [B, 2]
"""
import json
import sys

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file, save_file

ckpt, x_path, out_path, write_path = sys.argv[1:5]
sd = load_file(ckpt)
expected = {"0.weight": (512, 3072), "0.bias": (512,), "2.weight": (2, 512), "2.bias": (2,)}
got = {k: v.shape for k, v in sd.items()}
assert got == expected, f"state_dict shapes {got} != {expected}"
assert all(v.dtype == np.float32 for v in sd.values()), {k: v.dtype for k, v in sd.items()}
with safe_open(ckpt, "np") as f:
    assert f.metadata().get("format") == "pt", f.metadata()
    # The training configuration travels as JSON metadata, beside the tensors PyTorch loads.
    assert json.loads(f.metadata()["skywatch.train"])["seed"] == 1234567, f.metadata()

# nn.Sequential(Linear(3072, 512), Tanh(), Linear(512, 2), LogSoftmax(dim=1)) in float64.
x = np.load(x_path).astype(np.float64)
h = np.tanh(x @ sd["0.weight"].T.astype(np.float64) + sd["0.bias"])
z = h @ sd["2.weight"].T.astype(np.float64) + sd["2.bias"]
logp = z - (np.log(np.exp(z - z.max(1, keepdims=True)).sum(1, keepdims=True)) + z.max(1, keepdims=True))
ours = np.load(out_path)
err = np.abs(logp - ours).max()
assert err < 1e-4, f"NumPy and Skywatch outputs differ by {err}"

# A file as PyTorch would write it: new weights (scaled by 0.5) so that a stale read would show.
save_file({k: (v * 0.5).astype(np.float32) for k, v in sd.items()}, write_path, metadata={"format": "pt"})
print(f"ok: names and shapes match PyTorch's state_dict; max |numpy - skywatch| = {err:.2e}")
