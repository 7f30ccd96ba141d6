"""Reference numbers for the translation test's shift and for the flip of data augmentation,
computed by PyTorch, for tests/translation.rs.

The shift by (dx, dy) moves the normalised image right by dx and down by dy with zeros (the mean
colour) shifted in: F.pad by the shift, then a crop back to 32x32. It is checked here against a
second definition (torch.roll, then the wrapped-around rows and columns set to 0). The flip is
torch.flip over the width (torchvision's RandomHorizontalFlip).

The image is a formula of its flat index, value i + 1 at index i = c * 1024 + y * 32 + x, so that
each output value names the input it came from (0: shifted in). Writes
tests/reference/shift_reference.json.

usage: python shift_pytorch.py
Needs PyTorch (scripts/python-env --torch); not run in CI, which checks the committed output.
"""
import json
import os

import torch
import torch.nn.functional as F

CASES = [(1, 0), (-1, 0), (0, 2), (0, -2), (3, -4), (-8, 8), (8, 0), (5, 7)]


def shift(x, dx, dy):
    """x: [C, H, W]; out[c, y, x] = x[c, y - dy, x - dx] inside, else 0."""
    h, w = x.shape[-2:]
    padded = F.pad(x, (max(dx, 0), max(-dx, 0), max(dy, 0), max(-dy, 0)))
    top, left = max(-dy, 0), max(-dx, 0)
    return padded[..., top:top + h, left:left + w]


def shift_by_roll(x, dx, dy):
    out = torch.roll(x, shifts=(dy, dx), dims=(-2, -1)).clone()
    if dy > 0:
        out[..., :dy, :] = 0
    elif dy < 0:
        out[..., dy:, :] = 0
    if dx > 0:
        out[..., :, :dx] = 0
    elif dx < 0:
        out[..., :, dx:] = 0
    return out


def main():
    x = (torch.arange(3 * 32 * 32, dtype=torch.float32) + 1).view(3, 32, 32)
    cases = []
    for dx, dy in CASES:
        out = shift(x, dx, dy)
        assert torch.equal(out, shift_by_roll(x, dx, dy)), (dx, dy)
        cases.append({"dx": dx, "dy": dy, "out": [int(v) for v in out.reshape(-1).tolist()]})
    flip = torch.flip(x, dims=[-1])
    out = {
        "note": "tests/reference/shift_pytorch.py: image value i + 1 at flat index i; 0 is shifted in",
        "torch": torch.__version__,
        "shifts": cases,
        "flip": [int(v) for v in flip.reshape(-1).tolist()],
    }
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "shift_reference.json")
    with open(path, "w") as f:
        json.dump(out, f, separators=(",", ":"))
        f.write("\n")


if __name__ == "__main__":
    main()
