"""The lecture's curve as a band: the lecture's recipe in PyTorch over several seeds, for the
`lecture`, `deep` and `conv` presets, reduced to the per-epoch minimum, median and maximum of the
validation accuracy, the validation loss and the training loss. The page draws the band behind
its live charts (www/reference/pytorch-band.json, read by `skywatch::inspect::band`).

usage: pytorch_band.py BUNDLE_DIR [--out FILE] [--runs DIR] [--presets lecture,deep,conv]
                       [--seeds 0,1,2,3,4] [--epochs 100] [--threads 1] [--merge]

  BUNDLE_DIR  a Skywatch bundle (`skywatch data --from CIFAR10_COPY --out DIR`)
  --out       the band file (default www/reference/pytorch-band.json)
  --runs      one JSON file per finished (preset, seed) run, so that an interrupted job resumes
              where it stopped (default target/band-runs); a run is reused only if it was made
              from the same bundle, recipe and versions
  --threads   torch.set_num_threads
  --merge     keep the presets of the existing --out file that are not computed now; refused
              unless it was made with the same versions, seeds, threads and images (the splits'
              digests). A preset made on another day than the file's provenance records its own
              `date`; the provenance's data stays the file's.

The recipe, as in chapter 7 of Stevens, Antiga & Viehmann, "Deep Learning with PyTorch" (and
tests/reference/lecture_pytorch.py): images normalised per channel with mean (0.4915, 0.4823,
0.4468) and std (0.2470, 0.2435, 0.2616), flattened; `lecture` is Linear(3072, 512), Tanh,
Linear(512, 2), LogSoftmax with NLLLoss; `deep` is Linear(3072, 1024), Tanh, Linear(1024, 512),
Tanh, Linear(512, 128), Tanh, Linear(128, 2) with CrossEntropyLoss; PyTorch's default
initialisation after torch.manual_seed(seed); SGD lr 1e-2; DataLoader(batch_size=64,
shuffle=True). Per epoch: the training loss is the mean over the epoch's samples of the loss of
their batch as it was trained (Skywatch's `loss`); the validation loss and accuracy are measured
on the whole test split after the epoch. Epoch numbers start at 0, as in the lecture's log and in
Skywatch's EpochStats.

No image or per-image value is written: only per-epoch statistics over seeds and provenance.
"""
import argparse
import datetime
import hashlib
import json
import os
import platform
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.optim as optim
from conv_pytorch import Net

SCRIPT = "tests/reference/pytorch_band.py"
MEAN = (0.4915, 0.4823, 0.4468)
STD = (0.2470, 0.2435, 0.2616)
RECIPES = {
    "lecture": {"layers": [3072, 512, 2], "activation": "tanh", "loss": "nll"},
    "deep": {"layers": [3072, 1024, 512, 128, 2], "activation": "tanh", "loss": "cross-entropy"},
    # The book's Net (chapter 8, p1ch8/1_convolution.ipynb): conv 3->16, 16->8 (3x3, padding 1),
    # each with tanh and 2x2 max pooling, then 512-32-2 with tanh, CrossEntropyLoss.
    "conv": {"conv": [16, 8], "layers": [512, 32, 2], "activation": "tanh", "loss": "cross-entropy"},
}
LR, BATCH = 1e-2, 64



def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load(bundle, manifest, split):
    raw = np.fromfile(os.path.join(bundle, manifest[split]["file"]), dtype=np.uint8).reshape(-1, 3073)
    x = torch.from_numpy(raw[:, 1:].astype(np.float32) / 255.0).view(-1, 3, 32, 32)
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    return ((x - mean) / std).view(-1, 3072).contiguous(), torch.from_numpy(raw[:, 0].astype(np.int64))


def build(preset):
    if "conv" in RECIPES[preset]:
        # The one definition of the book's Net (conv_pytorch.py, beside this script), on the
        # flattened rows this script feeds every model.
        return nn.Sequential(nn.Unflatten(1, (3, 32, 32)), Net()), nn.CrossEntropyLoss()
    layers = RECIPES[preset]["layers"]
    mods = []
    for i, (a, b) in enumerate(zip(layers, layers[1:])):
        mods.append(nn.Linear(a, b))
        if i < len(layers) - 2:
            mods.append(nn.Tanh())
    if RECIPES[preset]["loss"] == "nll":
        mods.append(nn.LogSoftmax(dim=1))
        return nn.Sequential(*mods), nn.NLLLoss()
    return nn.Sequential(*mods), nn.CrossEntropyLoss()


def run(preset, seed, epochs, data):
    (xtr, ytr), (xva, yva) = data
    torch.manual_seed(seed)
    model, loss_fn = build(preset)
    opt = optim.SGD(model.parameters(), lr=LR)
    loader = torch.utils.data.DataLoader(list(zip(xtr, ytr)), batch_size=BATCH, shuffle=True)
    rows = []
    for epoch in range(epochs):
        t0, total, n = time.perf_counter(), 0.0, 0
        for imgs, labels in loader:
            loss = loss_fn(model(imgs), labels)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(labels)
            n += len(labels)
        with torch.no_grad():
            out = model(xva)
            val_loss = float(loss_fn(out, yva))
            val_acc = float((out.argmax(1) == yva).float().mean())
        rows.append({"train_loss": total / n, "val_loss": val_loss, "val_accuracy": val_acc})
        print(json.dumps({"preset": preset, "seed": seed, "epoch": epoch, **rows[-1],
                          "seconds": round(time.perf_counter() - t0, 3)}), flush=True)
    return rows


def band(runs, metric):
    v = np.array([[r[metric] for r in rows] for rows in runs])  # [seeds, epochs]
    r6 = lambda a: [round(float(x), 6) for x in a]
    return {"min": r6(v.min(0)), "median": r6(np.median(v, 0)), "max": r6(v.max(0))}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("bundle")
    p.add_argument("--out", default="www/reference/pytorch-band.json")
    p.add_argument("--runs", default="target/band-runs")
    p.add_argument("--presets", default="lecture,deep")
    p.add_argument("--seeds", default="0,1,2,3,4")
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--merge", action="store_true")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    presets, seeds = a.presets.split(","), [int(s) for s in a.seeds.split(",")]
    manifest_path = os.path.join(a.bundle, "manifest.json")
    manifest = json.load(open(manifest_path))
    if manifest["classes"] != ["airplane", "bird"]:
        sys.exit(f"the band is for CIFAR-2 (airplane, bird); this bundle has {manifest['classes']}")
    data_info = {
        "classes": manifest["classes"],
        "manifest_sha256": sha256_file(manifest_path),
        "train": {k: manifest["train"][k] for k in ("count", "sha256")},
        "test": {k: manifest["test"][k] for k in ("count", "sha256")},
        "source_kind": manifest["source"]["kind"],
        "source_fingerprint": manifest["source"]["fingerprint"],
    }
    versions = {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__}
    data = (load(a.bundle, manifest, "train"), load(a.bundle, manifest, "test"))
    os.makedirs(a.runs, exist_ok=True)
    results = {}
    for preset in presets:
        results[preset] = []
        for seed in seeds:
            key = {"preset": preset, "seed": seed, "epochs": a.epochs, "recipe": RECIPES[preset],
                   "data": data_info["manifest_sha256"], **versions}
            path = os.path.join(a.runs, f"{preset}-seed{seed}.json")
            cached = json.load(open(path)) if os.path.exists(path) else None
            if cached and cached["key"] == key:
                rows = cached["rows"]
            else:
                rows = run(preset, seed, a.epochs, data)
                tmp = path + ".tmp"
                json.dump({"key": key, "rows": rows}, open(tmp, "w"))
                os.replace(tmp, path)
            results[preset].append(rows)
    out = {
        "format": "skywatch-pytorch-band",
        "version": 1,
        "provenance": {
            "script": SCRIPT,
            **versions,
            "seeds": seeds,
            "threads": a.threads,
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d"),
            "data": data_info,
            "recipe": {
                "normalize": {"mean": MEAN, "std": STD},
                "optimizer": {"kind": "sgd", "lr": LR},
                "batch_size": BATCH,
                "shuffle": "torch.utils.data.DataLoader(shuffle=True), seeded by torch.manual_seed(seed)",
                "init": "PyTorch defaults after torch.manual_seed(seed)",
                "train_loss": "mean over the epoch's samples of their batch's loss as trained",
                "validation": "whole test split after each epoch",
            },
        },
        "presets": {
            preset: {
                **RECIPES[preset],
                "epochs": a.epochs,
                **{m: band(results[preset], m) for m in ("val_accuracy", "val_loss", "train_loss")},
            }
            for preset in presets
        },
    }
    if a.merge and os.path.exists(a.out):
        old = json.load(open(a.out))
        # The same pixels and labels (the splits' digests), not the same manifest file: a bundle
        # built from another copy of CIFAR-10 records another source path and fingerprint.
        pixels = lambda d: {k: d.get(k) for k in ("classes", "train", "test")}
        same = {k: (pixels(old["provenance"][k]) == pixels(v) if k == "data" else old["provenance"].get(k) == v)
                for k, v in out["provenance"].items() if k not in ("date", "recipe")}
        if not all(same.values()):
            sys.exit(f"--merge: {a.out} was made otherwise ({[k for k, ok in same.items() if not ok]} differ)")
        for name, band_of in old["presets"].items():
            if name not in out["presets"]:
                out["presets"][name] = band_of
        for name in presets:
            out["presets"][name]["date"] = out["provenance"]["date"]
        out["provenance"]["date"] = old["provenance"]["date"]
        out["provenance"]["data"] = old["provenance"]["data"]
    os.makedirs(os.path.dirname(a.out) or ".", exist_ok=True)
    tmp = a.out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(out, f, separators=(",", ":"))
        f.write("\n")
    os.replace(tmp, a.out)
    print(f"wrote {a.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
