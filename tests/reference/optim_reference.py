"""PyTorch reference values for tests/optim.rs: three steps of each optimizer on a 3-element
parameter with prescribed gradients g_t = [0.1 t, -0.2, 0.3 - 0.05 t], t = 1, 2, 3.
Run with PyTorch (2.15 was used): python optim_reference.py"""
import torch

cases = {
    "sgd": lambda p: torch.optim.SGD(p, lr=0.1),
    "sgd_momentum": lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9),
    "sgd_nesterov_wd": lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
    "adam": lambda p: torch.optim.Adam(p, lr=0.01),
    "adam_wd": lambda p: torch.optim.Adam(p, lr=0.01, betas=(0.8, 0.9), eps=1e-6, weight_decay=0.1),
}
for name, make in cases.items():
    p = torch.nn.Parameter(torch.tensor([0.5, -1.5, 2.0], dtype=torch.float32))
    opt = make([p])
    for t in (1, 2, 3):
        p.grad = torch.tensor([0.1 * t, -0.2, 0.3 - 0.05 * t], dtype=torch.float32)
        opt.step()
    print(f"{name}: [{', '.join(f'{v:.9g}' for v in p.detach().tolist())}]")
