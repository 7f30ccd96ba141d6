"""The translation test in PyTorch: the reference curves the page draws beside a run's own
(www/reference/translation.json), for `lecture` and the book's `Net` (`conv`).

usage: translation_pytorch.py BUNDLE_DIR [--out FILE] [--presets lecture,conv] [--seeds 0,1,2,3,4]
                              [--epochs 30] [--augment none|flip,shift:4] [--threads 1]

Each (preset, seed) run is the lecture's recipe (tests/reference/pytorch_band.py: the same
normalisation, models, initialisation after torch.manual_seed(seed), SGD lr 1e-2, batches of 64)
for --epochs epochs. With --augment flip,shift:K each training batch is flipped left-right with
probability 1/2 and shifted by a random dx, dy in -K..K, zeros shifted in (PyTorch's own random
draws: the curves compare, the draws do not). Then on the test split, for each k in
0, 1, 2, 3, 4, 6, 8 and each direction (k, 0), (-k, 0), (0, k), (0, -k):
  - accuracy on the images shifted by (dx, dy) on the normalised tensor, zeros shifted in
    (shift_pytorch.py's definition), the mean over the four directions;
  - the first layer's response, shifted vs original, as a cosine similarity per image, averaged:
    for the MLP its hidden units after tanh, for Net conv1's maps after tanh (before pooling),
    the shifted picture's maps shifted back and compared on the interior (positions whose 3x3
    window lies inside the picture before and after the shift).
Writes per preset the minimum, median and maximum over seeds of both curves, and the provenance.
Five seeds of 30 epochs of both presets took 27 minutes on one thread of a 2-core machine that was
busy with other work; `--seeds 0 --epochs 2` checks the script.

No image or per-image value is written: only statistics over the test split and seeds.
"""
import argparse
import datetime
import json
import os
import platform
import sys

import numpy as np
import torch
import torch.nn.functional as F
import torch.optim as optim

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pytorch_band import BATCH, LR, build, load, sha256_file  # noqa: E402
from shift_pytorch import shift  # noqa: E402

SHIFTS = [0, 1, 2, 3, 4, 6, 8]


def directions(k):
    return [(k, 0), (-k, 0), (0, k), (0, -k)]


def augment(imgs, flip, k):
    x = imgs.view(-1, 3, 32, 32).clone()
    if flip:
        m = torch.rand(len(x)) < 0.5
        x[m] = torch.flip(x[m], dims=[-1])
    if k:
        for i in range(len(x)):
            dx, dy = (int(v) for v in torch.randint(-k, k + 1, (2,)))
            x[i] = shift(x[i], dx, dy)
    return x.view(-1, 3072)


def response(model, preset, x):
    """The first layer's response: hidden units after tanh, or conv1's maps after tanh."""
    if preset == "conv":
        net = model[1]
        return torch.tanh(net.conv1(x.view(-1, 3, 32, 32)))
    return torch.tanh(model[0](x))


def cosine(a, b):
    a, b = a.double().flatten(1), b.double().flatten(1)
    return (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1))


def translation(model, preset, xva, yva):
    acc, sim = [], []
    with torch.no_grad():
        r0 = response(model, preset, xva)
        for k in SHIFTS:
            a, s = [], []
            for dx, dy in directions(k) if k else [(0, 0)]:
                xs = shift(xva.view(-1, 3, 32, 32), dx, dy).reshape(-1, 3072)
                a.append(float((model(xs).argmax(1) == yva).float().mean()))
                r = response(model, preset, xs)
                if preset == "conv":
                    back = shift(r, -dx, -dy)
                    lo_y, hi_y = max(1, 1 - dy), min(31, 31 - dy)
                    lo_x, hi_x = max(1, 1 - dx), min(31, 31 - dx)
                    s.append(float(cosine(r0[..., lo_y:hi_y, lo_x:hi_x], back[..., lo_y:hi_y, lo_x:hi_x]).mean()))
                else:
                    s.append(float(cosine(r0, r).mean()))
            acc.append(sum(a) / len(a))
            sim.append(sum(s) / len(s))
    return acc, sim


def run(preset, seed, epochs, data, flip, k):
    (xtr, ytr), (xva, yva) = data
    torch.manual_seed(seed)
    model, loss_fn = build(preset)
    opt = optim.SGD(model.parameters(), lr=LR)
    loader = torch.utils.data.DataLoader(list(zip(xtr, ytr)), batch_size=BATCH, shuffle=True)
    for epoch in range(epochs):
        for imgs, labels in loader:
            loss = loss_fn(model(augment(imgs, flip, k) if flip or k else imgs), labels)
            opt.zero_grad()
            loss.backward()
            opt.step()
    acc, sim = translation(model, preset, xva, yva)
    print(json.dumps({"preset": preset, "seed": seed, "epochs": epochs, "accuracy": acc, "similarity": sim}),
          flush=True)
    return acc, sim


def stats(rows):
    v = np.array(rows)
    r6 = lambda a: [round(float(x), 6) for x in a]
    return {"min": r6(v.min(0)), "median": r6(np.median(v, 0)), "max": r6(v.max(0))}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("bundle")
    p.add_argument("--out", default="www/reference/translation.json")
    p.add_argument("--presets", default="lecture,conv")
    p.add_argument("--seeds", default="0,1,2,3,4")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--augment", default="none")
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    flip, k = "flip" in a.augment.split(","), 0
    for part in a.augment.split(","):
        if part.startswith("shift:"):
            k = int(part[len("shift:"):])
    manifest = json.load(open(os.path.join(a.bundle, "manifest.json")))
    data = (load(a.bundle, manifest, "train"), load(a.bundle, manifest, "test"))
    seeds = [int(s) for s in a.seeds.split(",")]
    presets = {}
    for preset in a.presets.split(","):
        runs = [run(preset, s, a.epochs, data, flip, k) for s in seeds]
        presets[preset] = {"accuracy": stats([r[0] for r in runs]), "similarity": stats([r[1] for r in runs])}
    out = {
        "version": 1,
        "shift_px": SHIFTS,
        "presets": presets,
        "provenance": {
            "script": "tests/reference/translation_pytorch.py", "seeds": seeds, "epochs": a.epochs,
            "augment": a.augment, "threads": a.threads,
            "data": sha256_file(os.path.join(a.bundle, "manifest.json")),
            "date": datetime.date.today().isoformat(), "python": platform.python_version(),
            "torch": torch.__version__, "numpy": np.__version__,
        },
    }
    with open(a.out, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
