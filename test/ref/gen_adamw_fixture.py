"""Writes test/train/fixtures/adamw_torch.json: parameters after each of 5 torch.optim.AdamW steps with given
gradients (decay and no-decay parameters, lr changing per step). Dev-time only."""
import json
import os

import torch

torch.manual_seed(3)
w = torch.randn(4, 6)
b = torch.randn(6)
grads = [(torch.randn(4, 6), torch.randn(6)) for _ in range(5)]
lrs = [1e-2, 8e-3, 5e-3, 2e-3, 1e-3]
pw, pb = w.clone().requires_grad_(True), b.clone().requires_grad_(True)
opt = torch.optim.AdamW([{"params": [pw], "weight_decay": 0.01}, {"params": [pb], "weight_decay": 0.0}],
                        lr=lrs[0], betas=(0.9, 0.999), eps=1e-8, foreach=False)
steps = []
for (gw, gb), lr in zip(grads, lrs):
    for group in opt.param_groups:
        group["lr"] = lr
    pw.grad, pb.grad = gw.clone(), gb.clone()
    opt.step()
    steps.append({"lr": lr, "grad_w": gw.flatten().tolist(), "grad_b": gb.flatten().tolist(),
                  "w": pw.detach().flatten().tolist(), "b": pb.detach().flatten().tolist()})
out = os.path.join(os.path.dirname(__file__), "..", "train", "fixtures", "adamw_torch.json")
with open(out, "w") as f:
    json.dump({"generator": "test/ref/gen_adamw_fixture.py", "torch": torch.__version__, "w0": w.flatten().tolist(),
               "b0": b.flatten().tolist(), "steps": steps}, f)
