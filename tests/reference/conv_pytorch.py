"""Reference numbers for the convolutional layers and the book's `Net` (Deep Learning with
PyTorch, chapter 8), computed by PyTorch, for tests/conv.rs.

Every input is a formula of its flat index (below, `wave`), evaluated in float64 and rounded to
float32, so that the Rust test builds exactly the same tensors without a data file. Writes
tests/reference/conv_reference.json (small: outputs only).

usage: python conv_pytorch.py [CHECKPOINT.safetensors]
  With a Skywatch checkpoint of the `conv` preset, also checks that the book's Net loads it with
  PyTorch's strict `load_state_dict`, and that a state_dict saved from Net has Skywatch's names.
Needs PyTorch (scripts/python-env --torch); not run in CI, which checks the committed output.
"""
import json
import math
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_default_dtype(torch.float32)


def wave(shape, a, b, scale=1.0):
    """scale * sin(a * i + b) over the flat index i, rounded to float32."""
    n = math.prod(shape)
    v = [scale * math.sin(a * i + b) for i in range(n)]
    return torch.tensor(v, dtype=torch.float64).to(torch.float32).reshape(shape)


def flat(t):
    return [float(v) for v in t.detach().reshape(-1).tolist()]


class Net(nn.Module):
    """The book's Net, as printed in chapter 8 (p1ch8/1_convolution.ipynb)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(16, 8, kernel_size=3, padding=1)
        self.fc1 = nn.Linear(8 * 8 * 8, 32)
        self.fc2 = nn.Linear(32, 2)

    def forward(self, x):
        out = F.max_pool2d(torch.tanh(self.conv1(x)), 2)
        out = F.max_pool2d(torch.tanh(self.conv2(out)), 2)
        out = out.view(-1, 8 * 8 * 8)
        out = torch.tanh(self.fc1(out))
        out = self.fc2(out)
        return out


def conv_case(n, cin, h, w, cout, k, stride, pad):
    x = wave((n, cin, h, w), 0.7, 0.3).requires_grad_()
    weight = wave((cout, cin, k, k), 1.3, 0.1, 0.2).requires_grad_()
    bias = wave((cout,), 2.1, 0.0, 0.1).requires_grad_()
    y = F.conv2d(x, weight, bias, stride=stride, padding=pad)
    dy = wave(tuple(y.shape), 0.9, 0.5)
    y.backward(dy)
    return {
        "n": n, "cin": cin, "h": h, "w": w, "cout": cout, "k": k, "stride": stride, "pad": pad,
        "out": list(y.shape[2:]), "y": flat(y), "dx": flat(x.grad), "dw": flat(weight.grad), "db": flat(bias.grad),
    }


def pool_case(n, c, h, w, k):
    x = wave((n, c, h, w), 0.7, 0.3).requires_grad_()
    y = F.max_pool2d(x, k)
    dy = wave(tuple(y.shape), 0.9, 0.5)
    y.backward(dy)
    return {"n": n, "c": c, "h": h, "w": w, "k": k, "y": flat(y), "dx": flat(x.grad)}


def net_case():
    net = Net()
    names = [name for name, _ in net.named_parameters()]
    with torch.no_grad():
        for i, (_, p) in enumerate(net.named_parameters()):
            p.copy_(wave(tuple(p.shape), 0.37 + 0.01 * i, 0.5 * i, 0.1))
    x = wave((3, 3, 32, 32), 0.011, 0.2, 2.0)
    target = torch.tensor([0, 1, 1])
    logits = net(x)
    loss = F.cross_entropy(logits, target)
    loss.backward()
    grads = {n: p.grad.clone() for n, p in net.named_parameters()}
    xg = x.clone().requires_grad_()
    # The gradient of sum_i log p[i, target_i] with respect to the input (saliency).
    F.log_softmax(net(xg), 1).gather(1, target[:, None]).sum().backward()
    return {
        "names": names,
        "params": sum(p.numel() for p in net.parameters()),
        "targets": target.tolist(),
        "logits": flat(logits),
        "loss": float(loss.detach()),
        "grad_head": {n: flat(g)[:8] for n, g in grads.items()},
        "grad_sum": {n: float(g.double().sum()) for n, g in grads.items()},
        "grad_abs_sum": {n: float(g.double().abs().sum()) for n, g in grads.items()},
        "input_grad_head": flat(xg.grad)[:16],
        "input_grad_abs_sum": float(xg.grad.double().abs().sum()),
    }


def check_checkpoint(path):
    from safetensors.torch import load_file, save_file
    net = Net()
    net.load_state_dict(load_file(path))  # strict: exactly Net's tensors
    out = os.path.join(os.path.dirname(os.path.abspath(path)), "net-state-dict.safetensors")
    save_file(net.state_dict(), out)
    print(f"ok: Net().load_state_dict(load_file({path!r})) (strict); wrote {out}")


def main():
    ref = {
        "source": "tests/reference/conv_pytorch.py",
        "torch": torch.__version__,
        "conv": [
            conv_case(2, 3, 7, 5, 4, 3, 1, 1),
            conv_case(1, 2, 6, 9, 3, 3, 2, 0),
            conv_case(2, 5, 4, 4, 2, 1, 1, 0),
        ],
        "pool": [pool_case(2, 3, 7, 5, 2), pool_case(1, 2, 6, 6, 3)],
        "net": net_case(),
    }
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "conv_reference.json"), "w") as f:
        json.dump(ref, f, indent=None, separators=(",", ":"))
        f.write("\n")
    print("wrote conv_reference.json")
    if len(sys.argv) > 1:
        check_checkpoint(sys.argv[1])


if __name__ == "__main__":
    main()
