"""The lecture's training in PyTorch on a Skywatch bundle, for side-by-side comparison.

usage: lecture_pytorch.py BUNDLE_DIR [EPOCHS] [THREADS] [--deep | --conv] [--stacked]
Prints one JSON line per epoch: epoch, loss (mean over the epoch), val_accuracy, seconds (training
only), eval_seconds (the validation pass after it).
--deep: the lecture's deeper 3072-1024-512-128-2 model; --conv: the book's Net of chapter 8
(conv_pytorch.py's one definition), with CrossEntropyLoss as in the book.
With --stacked, batches are sliced from pre-stacked tensors instead of the lecture's DataLoader.
"""
import json
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.optim as optim

from conv_pytorch import Net

args = [a for a in sys.argv[1:] if not a.startswith("--")]
bundle, epochs, threads = args[0], int(args[1]) if len(args) > 1 else 100, int(args[2]) if len(args) > 2 else 1
deep, conv, stacked = "--deep" in sys.argv, "--conv" in sys.argv, "--stacked" in sys.argv
torch.set_num_threads(threads)
torch.manual_seed(0)
m = json.load(open(f"{bundle}/manifest.json"))


def load(split):
    raw = np.fromfile(f"{bundle}/{m[split]['file']}", dtype=np.uint8).reshape(-1, 3073)
    x = torch.from_numpy(raw[:, 1:].astype(np.float32) / 255.0).view(-1, 3, 32, 32)
    mean = torch.tensor([0.4915, 0.4823, 0.4468]).view(1, 3, 1, 1)
    std = torch.tensor([0.2470, 0.2435, 0.2616]).view(1, 3, 1, 1)
    return ((x - mean) / std).view(-1, 3072).contiguous(), torch.from_numpy(raw[:, 0].astype(np.int64))


xtr, ytr = load("train")
xva, yva = load("test")
if conv:
    # Images arrive flat, as Skywatch's bundle rows: unflattened in front of the book's Net.
    model = nn.Sequential(nn.Unflatten(1, (3, 32, 32)), Net())
    loss_fn = nn.CrossEntropyLoss()
elif deep:
    model = nn.Sequential(nn.Linear(3072, 1024), nn.Tanh(), nn.Linear(1024, 512), nn.Tanh(),
                          nn.Linear(512, 128), nn.Tanh(), nn.Linear(128, 2))
    loss_fn = nn.CrossEntropyLoss()
else:
    model = nn.Sequential(nn.Linear(3072, 512), nn.Tanh(), nn.Linear(512, 2), nn.LogSoftmax(dim=1))
    loss_fn = nn.NLLLoss()
opt = optim.SGD(model.parameters(), lr=1e-2)
loader = torch.utils.data.DataLoader(list(zip(xtr, ytr)), batch_size=64, shuffle=True)
for epoch in range(epochs):
    t0, total, n = time.perf_counter(), 0.0, 0
    if stacked:
        perm = torch.randperm(len(xtr))
        batches = ((xtr[perm[i:i + 64]], ytr[perm[i:i + 64]]) for i in range(0, len(xtr), 64))
    else:
        batches = loader
    for imgs, labels in batches:
        loss = loss_fn(model(imgs), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        total += float(loss) * len(labels)
        n += len(labels)
    secs = time.perf_counter() - t0
    with torch.no_grad():
        acc = (model(xva).argmax(1) == yva).float().mean().item()
    eval_secs = time.perf_counter() - t0 - secs
    print(json.dumps({"epoch": epoch, "loss": total / n, "val_accuracy": acc, "seconds": secs, "eval_seconds": eval_secs}),
          flush=True)
