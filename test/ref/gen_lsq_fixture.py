"""Writes test/quant/fixtures/lsq_torch.json: forward and gradients of torch._fake_quantize_learnable_per_tensor_affine
(LSQ, zero point 0) for signed full and narrow 8-bit and 4-bit ranges, with and without LSQ's gradient scale
1 / sqrt(numel * qmax), on inputs that fall inside and outside the range and onto rounding ties. Dev-time only."""
import json
import math
import os

import torch

torch.manual_seed(11)
cases = []
for n, scale, qmin, qmax, lsq_scaling in [(64, 0.02, -128, 127, False), (300, 0.013, -128, 127, True), (50, 0.1, -127, 127, True),
                                          (40, 0.25, -8, 7, True), (1000, 0.005, -128, 127, True)]:
    x = torch.randn(n) * (scale * qmax * 0.8)
    x[:4] = torch.tensor([0.5, -0.5, 2.5, -3.5]) * scale  # ties: round half to even
    x[4:6] = torch.tensor([qmax + 3.0, qmin - 3.0]) * scale  # clipped
    x = x.float().requires_grad_()
    s = torch.tensor([scale], dtype=torch.float32, requires_grad=True)
    zp = torch.tensor([0.0])
    g = 1.0 / math.sqrt(n * qmax) if lsq_scaling else 1.0
    y = torch._fake_quantize_learnable_per_tensor_affine(x, s, zp, qmin, qmax, g)
    dy = torch.randn(n).float()
    y.backward(dy)
    cases.append({"n": n, "scale": scale, "qmin": qmin, "qmax": qmax, "grad_factor": g, "x": x.detach().tolist(),
                  "dy": dy.tolist(), "y": y.detach().tolist(), "dx": x.grad.tolist(), "dscale": s.grad.item()})
path = os.path.join(os.path.dirname(__file__), "..", "quant", "fixtures", "lsq_torch.json")
os.makedirs(os.path.dirname(path), exist_ok=True)
with open(path, "w") as f:
    json.dump({"torch": torch.__version__, "cases": cases}, f)
    f.write("\n")
