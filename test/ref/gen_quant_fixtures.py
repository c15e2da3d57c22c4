#!/usr/bin/env python3
"""Writes test/quant/fixtures/*.json: golden fake-quant outputs, STE gradients and calibrated amax values.

Reference: nvidia-modelopt (0.47) on the CPU:
  * fake quant: modelopt TensorQuantizer (legacy torch path on CPU), narrow_range False -> [-128, 127];
    backward with pass_through_bwd=False (modelopt's clipped STE, which is pytorch-quantization's STE;
    modelopt's own default is a pure pass-through).
  * max: modelopt MaxCalibrator.
  * histogram: modelopt HistogramCalibrator with torch_hist=True (modelopt / pytorch-quantization 2.2 semantics)
    and torch_hist=False, whose numpy collection is pytorch-quantization 2.1's (the HF QDQBERT example's).
    Each compute_amax runs on a fresh copy, because the numpy path's entropy edits the stored histogram in place.
  * histogram mse: pytorch-quantization's algorithm (mse_amax below: modelopt's _compute_amax_mse with its fake-quant
    call fixed). modelopt 0.47 calls fake_tensor_quant(centers, amax, num_bits, unsigned) against the signature
    (inputs, amax, bias, num_bits, unsigned, ...), so it quantizes centers - 8 with num_bits 0; its value is kept as
    "mse_modelopt_raw" for information only.
Dev-time only: python test/ref/gen_quant_fixtures.py  (needs torch, numpy, scipy, modelopt).
"""
import copy
import importlib
import json
import os
import sys
import types

for _m in ("requests",):  # imported by modelopt's dataset helpers only; not used here
    try:
        importlib.import_module(_m)
    except ImportError:
        sys.modules[_m] = types.ModuleType(_m)

import numpy as np  # noqa: E402
import torch  # noqa: E402
from modelopt.torch.quantization.calib import HistogramCalibrator, MaxCalibrator  # noqa: E402
from modelopt.torch.quantization.config import QuantizerAttributeConfig  # noqa: E402
from modelopt.torch.quantization.nn import TensorQuantizer  # noqa: E402
from modelopt.torch.quantization.tensor_quant import fake_tensor_quant  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "quant", "fixtures")


def f32(v):
    v = float(v)
    if np.isnan(v):
        return "nan"
    if np.isinf(v):
        return "inf" if v > 0 else "-inf"
    return float("%.9g" % v)


def tensor(a):
    a = np.asarray(a, dtype=np.float32)
    return {"shape": list(a.shape), "data": [f32(v) for v in a.reshape(-1)]}


def dump(name, obj):
    with open(os.path.join(OUT, name), "w") as fh:
        json.dump(obj, fh, separators=(",", ":"))


def distributions(rng):
    """name -> list of float32 batches."""
    n = 4096
    d = {}
    d["normal"] = [rng.standard_normal(n)]
    d["laplace"] = [rng.laplace(0.0, 1.0, n)]
    t = rng.standard_t(3, n)
    t[rng.choice(n, 8, replace=False)] *= 50.0
    d["student_t_outliers"] = [t]
    d["zeros"] = [np.zeros(1024)]
    d["negative"] = [-np.abs(rng.standard_normal(n)) * 2.5]
    d["uniform"] = [rng.uniform(-3.0, 3.0, n)]
    d["multi_batch"] = [rng.standard_normal(1024) * s for s in (1.0, 3.0, 0.5, 10.0)]
    d["relu_sparse"] = [np.maximum(rng.standard_normal(2048), 0.0) for _ in range(2)]
    return {k: [np.asarray(b, dtype=np.float32) for b in v] for k, v in d.items()}


def fake_quant_ref(x, amax, num_bits=8, axis=None, unsigned=False, narrow=False, grad=None):
    cfg = QuantizerAttributeConfig(num_bits=num_bits, axis=axis, unsigned=unsigned, narrow_range=narrow,
                                   pass_through_bwd=False)
    q = TensorQuantizer(cfg)
    q.amax = torch.tensor(amax, dtype=torch.float32)
    xt = torch.tensor(x, requires_grad=True)
    y = q(xt)
    y.backward(torch.tensor(grad))
    return y.detach().numpy(), xt.grad.numpy()


def gen_fake_quant(rng, dists):
    cases = []

    def add(name, x, amax, **kw):
        x = np.asarray(x, dtype=np.float32)
        g = rng.standard_normal(x.shape).astype(np.float32)
        y, dx = fake_quant_ref(x, amax, grad=g, **kw)
        amax_flat = np.asarray(amax, dtype=np.float32).reshape(-1)
        cases.append({"name": name, "x": tensor(x), "amax": tensor(amax_flat), "num_bits": kw.get("num_bits", 8),
                      "axis": -1 if kw.get("axis") is None else kw["axis"][0],
                      "unsigned": kw.get("unsigned", False), "narrow_range": kw.get("narrow", False),
                      "grad_y": tensor(g), "y": tensor(y), "grad_x": tensor(dx)})

    ties = np.array([0.5, 1.5, 2.5, 3.5, -0.5, -1.5, -2.5, 126.5, 127.5, -127.5, -128.5, -128.49, -129.0, 127.0,
                     -0.0, 0.0, 1e-30, -200.0, 200.0], dtype=np.float32)
    add("ties_amax127", ties, 127.0)
    add("ties_narrow", ties, 127.0, narrow=True)
    for name in ("normal", "laplace", "student_t_outliers", "uniform", "negative"):
        x = dists[name][0][:1024]
        add(name + "_max", x, float(np.abs(x).max()))
        add(name + "_clip", x, float(np.abs(x).max()) * 0.37)
    x = dists["normal"][0][:512]
    add("tiny_amax", x, 2.0 ** -24)
    add("zero_amax", x, 0.0)
    add("above_tiny_amax", x, 2.0 ** -23)
    add("bits4", x, 2.0, num_bits=4)
    add("bits16", x, 3.0, num_bits=16)
    add("unsigned", np.abs(x), 2.0, unsigned=True)
    w = (rng.standard_normal((16, 64)) * np.logspace(-3, 3, 16)[:, None]).astype(np.float32)
    add("per_channel_rows", w, np.abs(w).max(axis=1, keepdims=True) * 0.8, axis=(0,))
    a = (rng.standard_normal((4, 8, 32)) * np.logspace(-2, 2, 8)[None, :, None]).astype(np.float32)
    amax = np.abs(a).max(axis=(0, 2), keepdims=True) * 0.6
    amax[0, 3, 0] = 0.0
    add("per_channel_axis1", a, amax, axis=(1,))
    dump("fake_quant.json", {"reference": "modelopt %s TensorQuantizer, CPU" % mo_version(), "cases": cases})


def gen_max(rng, dists):
    cases = []
    for name, batches in dists.items():
        c = MaxCalibrator(8, None, False)
        for b in batches:
            c.collect(torch.tensor(b))
        cases.append({"name": name, "axis": -1, "batches_from": "calib_histogram.json",
                      "amax": tensor(np.asarray(c.compute_amax()).reshape(-1))})
    scales = np.logspace(-3, 3, 16)[:, None]
    wb = [(rng.standard_normal((16, 64)) * scales * s).astype(np.float32) for s in (1.0, 2.0, 0.5)]
    c = MaxCalibrator(8, (0,), False)
    for b in wb:
        c.collect(torch.tensor(b))
    cases.append({"name": "per_channel_rows", "axis": 0, "batches": [tensor(b) for b in wb],
                  "amax": tensor(c.compute_amax().numpy().reshape(-1))})
    ab = [(rng.standard_normal((2, 8, 16)) * np.logspace(-2, 2, 8)[None, :, None] * s).astype(np.float32)
          for s in (1.0, 3.0)]
    c = MaxCalibrator(8, (1,), False)
    for b in ab:
        c.collect(torch.tensor(b))
    cases.append({"name": "per_channel_axis1", "axis": 1, "batches": [tensor(b) for b in ab],
                  "amax": tensor(c.compute_amax().numpy().reshape(-1))})
    dump("calib_max.json", {"reference": "modelopt %s MaxCalibrator" % mo_version(), "cases": cases})


def mse_amax(calib_hist, calib_bin_edges, num_bits=8, unsigned=False, stride=1, start_bin=128):
    """pytorch-quantization calib/histogram.py _compute_amax_mse (spec section 2.2), on the CPU."""
    counts = torch.from_numpy(np.asarray(calib_hist)[:]).float()
    edges = torch.from_numpy(np.asarray(calib_bin_edges)[:]).float()
    centers = (edges[1:] + edges[:-1]) / 2
    mses = []
    arguments = []
    for i in range(start_bin, len(centers), stride):
        amax = centers[i]
        quant_centers = fake_tensor_quant(centers, amax, None, num_bits, unsigned)
        mse = ((quant_centers - centers) ** 2 * counts).mean()
        mses.append(mse)
        arguments.append(i)
    argmin = np.argmin(mses)
    return centers[arguments[argmin]]


def hist_results(batches, torch_hist, skip_zeros=False, unsigned=False):
    c = HistogramCalibrator(8, None, unsigned, num_bins=2048, skip_zeros=skip_zeros, torch_hist=torch_hist)
    for b in batches:
        c.collect(torch.tensor(b))
    hist = np.asarray(c._calib_hist.numpy() if torch.is_tensor(c._calib_hist) else c._calib_hist)
    edges = np.asarray(c._calib_bin_edges.numpy() if torch.is_tensor(c._calib_bin_edges) else c._calib_bin_edges)
    idx = sorted(set(list(range(0, len(edges), 64)) + [1, 2, 3, len(edges) - 3, len(edges) - 2, len(edges) - 1]))
    res = {"counts": [int(v) for v in hist], "n_edges": len(edges), "edge_index": idx,
           "edge_value": [float(edges[i]) for i in idx]}
    for label, method, kw in (("percentile_99_99", "percentile", {"percentile": 99.99}),
                              ("percentile_99_9", "percentile", {"percentile": 99.9}),
                              ("percentile_99", "percentile", {"percentile": 99.0}),
                              ("entropy", "entropy", {}), ("mse_modelopt_raw", "mse", {})):
        try:
            amax = copy.deepcopy(c).compute_amax(method, **kw)
            res[label] = f32(float(amax))
        except Exception as e:  # the reference fails (recorded; the C test skips the value)
            res[label] = None
            res[label + "_error"] = str(e)[:200]
    hist_i = c._calib_hist.int().numpy() if torch.is_tensor(c._calib_hist) else c._calib_hist
    try:
        res["mse"] = f32(float(mse_amax(hist_i, edges)))
    except Exception as e:  # e.g. negative centres (all-zero numpy histogram) make a negative amax
        res["mse"] = None
        res["mse_error"] = str(e)[:200]
    return res


def gen_histogram(dists):
    cases = []
    for name, batches in dists.items():
        cases.append({"name": name, "batches": [tensor(b) for b in batches],
                      "modelopt": hist_results(batches, True), "pq21_numpy": hist_results(batches, False)})
    sz = [np.array([0, 0, 0, 0, 0, 1, 2, 3, 4, 5], np.float32), np.array([0, 0, 0, 0, 0, 6, 7, 8, 9, 10], np.float32)]
    cases.append({"name": "skip_zeros", "skip_zeros": True, "batches": [tensor(b) for b in sz],
                  "modelopt": hist_results(sz, True, skip_zeros=True),
                  "pq21_numpy": hist_results(sz, False, skip_zeros=True)})
    dump("calib_histogram.json", {"reference": "modelopt %s HistogramCalibrator (torch_hist True / False)"
                                  % mo_version(), "edges_note": "edge_value[k] = stored edges[edge_index[k]]",
                                  "cases": cases})


def mo_version():
    import modelopt
    return modelopt.__version__


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)
    rng = np.random.default_rng(20240607)
    dists = distributions(rng)
    gen_fake_quant(rng, dists)
    gen_max(rng, dists)
    gen_histogram(dists)


if __name__ == "__main__":
    main()
