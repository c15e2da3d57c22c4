"""Writes test/autograd/fixtures/ops_torch.json: forward outputs and input gradients of each engine op,
computed by PyTorch, for test_ops_torch.c. Dev-time only: /work/refenv/bin/python test/ref/gen_autograd_fixtures.py

Each case: inputs (float32 tensors), optional int ids/labels, output, upstream gradient R (the C test backpropagates
R through its own op) and the gradient of every float input. Case names match test/autograd/op_cases.c."""
import json
import math
import os
import sys

import torch
import torch.nn.functional as F

torch.manual_seed(1234)
g = torch.Generator().manual_seed(1234)


def rnd(*shape, scale=1.0):
    return (torch.randn(*shape, generator=g) * scale).float()


def tensor_json(t):
    t = t.detach().contiguous().float()
    vals = []
    for v in t.flatten().tolist():
        if math.isnan(v):
            vals.append("nan")
        elif math.isinf(v):
            vals.append("inf" if v > 0 else "-inf")
        else:
            vals.append(float("%.9g" % v))
    return {"shape": list(t.shape), "data": vals}


cases = {}


def case(name, inputs, fn, ints=None):
    leaves = [x.clone().requires_grad_(True) for x in inputs]
    out = fn(*leaves)
    R = rnd(*out.shape)
    (out * R).sum().backward()
    c = {
        "inputs": [tensor_json(x) for x in inputs],
        "output": tensor_json(out),
        "upstream": tensor_json(R),
        "grads": [tensor_json(x.grad if x.grad is not None else torch.zeros_like(x)) for x in leaves],
    }
    if ints is not None:
        c["ints"] = ints
    cases[name] = c


# matmul family
case("matmul_nn", [rnd(5, 7), rnd(7, 3)], lambda a, b: a @ b)
case("matmul_tn", [rnd(7, 5), rnd(7, 3)], lambda a, b: a.t() @ b)
case("matmul_nt", [rnd(5, 7), rnd(3, 7)], lambda a, b: a @ b.t())
case("matmul_tt", [rnd(7, 5), rnd(3, 7)], lambda a, b: a.t() @ b.t())
case("matmul_batched", [rnd(2, 3, 4, 5), rnd(2, 3, 5, 6)], lambda a, b: a @ b)
case("matmul_shared_b", [rnd(2, 3, 4, 5), rnd(5, 6)], lambda a, b: a @ b)
case("linear_bias", [rnd(2, 3, 8), rnd(6, 8), rnd(6)], lambda x, w, b: F.linear(x, w, b))
case("linear_nobias", [rnd(4, 8), rnd(6, 8)], lambda x, w: F.linear(x, w))
# elementwise
case("add_same", [rnd(3, 4), rnd(3, 4)], lambda a, b: a + b)
case("add_bcast_mid", [rnd(2, 3, 4), rnd(2, 1, 4)], lambda a, b: a + b)
case("sub_bcast_last", [rnd(2, 3, 4), rnd(4)], lambda a, b: a - b)
case("mul_bcast", [rnd(2, 3, 4), rnd(3, 1)], lambda a, b: a * b)
case("scale", [rnd(3, 5)], lambda x: x * 0.125)
case("bias_add", [rnd(2, 3, 5), rnd(5)], lambda x, b: x + b)
# activations
case("gelu", [rnd(4, 6, scale=2.0)], lambda x: F.gelu(x))
case("gelu_tanh", [rnd(4, 6, scale=2.0)], lambda x: F.gelu(x, approximate="tanh"))
case("tanh", [rnd(4, 6)], torch.tanh)
case("relu", [rnd(4, 6)], F.relu)
# normalisation, attention
case("layernorm", [rnd(3, 4, 16, scale=3.0) + 1.0, rnd(16), rnd(16)], lambda x, w, b: F.layer_norm(x, (16,), w, b, 1e-12))
case("layernorm_eps", [rnd(5, 8), rnd(8), rnd(8)], lambda x, w, b: F.layer_norm(x, (8,), w, b, 1e-5))
mask = torch.zeros(2, 1, 1, 5)
mask[0, 0, 0, 3:] = torch.finfo(torch.float32).min
mask[1, 0, 0, 4:] = torch.finfo(torch.float32).min
cases_mask = mask
case("softmax_masked", [rnd(2, 3, 5, 5, scale=2.0), mask], lambda x, m: F.softmax(x * 0.5 + m, dim=-1))
case("softmax_plain", [rnd(4, 7)], lambda x: F.softmax(x, dim=-1))
# embedding
ids = [[1, 4, 4, 0], [9, 2, 1, 1]]
case("embedding", [rnd(10, 6)], lambda w: F.embedding(torch.tensor(ids), w), ints=ids)
# shapes
case("permute_contiguous", [rnd(2, 3, 4, 5)], lambda x: x.permute(0, 2, 1, 3).contiguous())
case("split_heads", [rnd(2, 3, 8)], lambda x: x.view(2, 3, 2, 4).permute(0, 2, 1, 3))
case("merge_heads", [rnd(2, 2, 3, 4)], lambda x: x.permute(0, 2, 1, 3).reshape(2, 3, 8))
case("slice_mid", [rnd(3, 6, 4)], lambda x: x[:, 2:5, :])
# reductions and losses
case("sum", [rnd(3, 4)], lambda x: x.sum().reshape(1))
case("mean", [rnd(3, 4)], lambda x: x.mean().reshape(1))
labels = [2, -100, 0, 4, 1, -100]
case("cross_entropy", [rnd(6, 5, scale=2.0)], lambda x: F.cross_entropy(x, torch.tensor(labels), ignore_index=-100).reshape(1),
     ints=labels)
case("mse", [rnd(3, 4), rnd(3, 4)], lambda a, b: F.mse_loss(a, b).reshape(1))
case("bce_with_logits", [rnd(3, 4, scale=3.0), torch.rand(3, 4, generator=g)],
     lambda x, t: F.binary_cross_entropy_with_logits(x, t).reshape(1))

out = os.path.join(os.path.dirname(__file__), "..", "autograd", "fixtures", "ops_torch.json")
with open(out, "w") as f:
    json.dump({"generator": "test/ref/gen_autograd_fixtures.py", "torch": torch.__version__, "cases": cases}, f, separators=(",", ":"))
print("wrote", out, len(cases), "cases", file=sys.stderr)
