"""Checks an HDF5 export against docs/hdf5-format.md with h5py (run by test/export/test_onnx_ort.sh; also by hand).

Reads the layout table of the doc (between the layout-table markers) and proves that the file has exactly that
layout: every dataset matches a documented row (path pattern, dtype, shape with the config's sizes), every 'always'
row exists for every layer, the documented root attributes exist, and the stated formulas hold: int8 weights lie in
[qmin, qmax] with weight_scale == float32(amax / bound) (1 where amax <= 2^-24), q / float32(bound / amax) is within
two ulps of q * weight_scale, and each enabled quantizer has both <stem>_amax and <stem>_scale with its numerics as
attributes. Prints one line per finding; exit 1 when any check fails.
Run: python test/ref/check_hdf5_layout.py MODEL.h5 docs/hdf5-format.md
"""
import json
import re
import sys

import h5py
import numpy as np

ROOT_ATTRS = ["format", "format_version", "producer", "weight_layout", "quantize", "rounding", "range", "dequantize",
              "dequantize_exact"]
AMAX_ATTRS = ["quantizer", "num_bits", "unsigned", "narrow_range", "axis", "qmin", "qmax"]


def table(doc_path):
    text = open(doc_path, encoding="utf-8").read()
    body = text.split("<!-- layout-table: begin -->")[1].split("<!-- layout-table: end -->")[0]
    rows = []
    for line in body.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 4 or not cells[0].startswith("`"):
            continue
        path, dtype, shape, present = cells
        rows.append((path.strip("`"), [d.strip() for d in dtype.split(" or ")], [s.strip() for s in shape.split(" or ")], present))
    if not rows:
        raise SystemExit("%s: no layout table" % doc_path)
    return rows


def pattern(path):
    """Regex of a documented path: {i} a layer index, {a,b} alternatives."""
    out, pos = "", 0
    for m in re.finditer(r"\{([^}]*)\}", path):
        out += re.escape(path[pos:m.start()])
        inner = m.group(1)
        out += r"(?P<i>\d+)" if inner == "i" else "(?:" + "|".join(re.escape(a) for a in inner.split(",")) + ")"
        pos = m.end()
    return re.compile("^" + out + re.escape(path[pos:]) + "$")


def dtype_name(ds):
    if ds.dtype.kind in ("S", "U") or (ds.dtype.kind == "O" and h5py.check_string_dtype(ds.dtype)):
        info = h5py.check_string_dtype(ds.dtype)
        return "vlen-string" if info is not None and info.length is None else "string"
    return {np.dtype("float32"): "float32", np.dtype("int8"): "int8", np.dtype("int32"): "int32"}.get(ds.dtype, str(ds.dtype))


def main():
    h5_path, doc_path = sys.argv[1], sys.argv[2]
    rows = table(doc_path)
    f = h5py.File(h5_path, "r")
    cfg = json.loads(f["config.json"][()])
    arch = (cfg.get("architectures") or ["?"])[0]
    sym = {"L": cfg["num_hidden_layers"], "H": cfg["hidden_size"], "I": cfg["intermediate_size"], "V": cfg["vocab_size"],
           "P": cfg["max_position_embeddings"], "T": cfg["type_vocab_size"],
           "C": 2 if arch == "BertForQuestionAnswering" else cfg.get("num_labels", 2)}
    failed = []
    checked = 0

    def fail(msg):
        failed.append(msg)
        print("FAIL " + msg)

    def shape_ok(ds, shapes):
        for s in shapes:
            dims = [d.strip() for d in s.strip("[]").split(",") if d.strip()]
            want = tuple(sym[d] if d in sym else int(d) for d in dims)
            if tuple(ds.shape) == want:
                return True
        return False

    pats = [(pattern(p), p, dt, sh, pr) for p, dt, sh, pr in rows]
    datasets = []
    f.visititems(lambda name, obj: datasets.append(name) if isinstance(obj, h5py.Dataset) else None)
    for name in datasets:
        ds = f[name]
        match = [r for r in pats if r[0].match("/" + name)]
        if not match:
            fail("/%s: not in the documented layout" % name)
            continue
        _, p, dts, shapes, _ = match[0]
        m = match[0][0].match("/" + name)
        if "i" in m.groupdict() and m.group("i") is not None and int(m.group("i")) >= sym["L"]:
            fail("/%s: layer index beyond num_hidden_layers %d" % (name, sym["L"]))
        if dtype_name(ds) not in dts:
            fail("/%s: dtype %s, documented %s" % (name, dtype_name(ds), " or ".join(dts)))
        if not shape_ok(ds, shapes):
            fail("/%s: shape %s, documented %s" % (name, tuple(ds.shape), " or ".join(shapes)))
        checked += 1
    # every 'always' row exists (each layer, each alternative)
    for p, _, _, present in rows:
        if present != "always":
            continue
        alts = [p]
        while any("{" in a for a in alts):
            nxt = []
            for a in alts:
                m = re.search(r"\{([^}]*)\}", a)
                if not m:
                    nxt.append(a)
                    continue
                opts = [str(i) for i in range(sym["L"])] if m.group(1) == "i" else m.group(1).split(",")
                nxt += [a[:m.start()] + o + a[m.end():] for o in opts]
            alts = nxt
        for a in alts:
            if a.lstrip("/") not in f:
                fail("%s: documented as always present, missing" % a)
    for a in ROOT_ATTRS:
        if a not in f.attrs:
            fail("root attribute %s missing" % a)
    if f.attrs.get("format") not in (b"qdqbert-int8", "qdqbert-int8") or int(f["format_version"][()]) != 1:
        fail("format / format_version: %r / %r" % (f.attrs.get("format"), f["format_version"][()]))
    # the formulas
    n_int8 = n_quant = 0
    ulps = 0
    for name in datasets:
        ds = f[name]
        group = name.rsplit("/", 1)[0]
        if name.endswith("/weight") and ds.dtype == np.int8:
            n_int8 += 1
            q = ds[()].astype(np.int32)
            bits = int(ds.attrs["num_bits"])
            bound = 2 ** (bits - 1) - 1
            qmin, qmax = int(ds.attrs["qmin"]), int(ds.attrs["qmax"])
            if qmax != bound or qmin not in (-bound - 1, -bound) or q.min() < qmin or q.max() > qmax:
                fail("/%s: q in [%d, %d], attributes qmin %d qmax %d (bound %d)" % (name, q.min(), q.max(), qmin, qmax, bound))
            amax = np.atleast_1d(f[group + "/weight_amax"][()]).astype(np.float32)
            scale = np.atleast_1d(f[group + "/weight_scale"][()]).astype(np.float32)
            want = np.where(amax <= np.float32(2.0 ** -24), np.float32(1), amax / np.float32(bound)).astype(np.float32)
            if amax.shape != scale.shape or amax.shape[0] not in (1, q.shape[0]) or not np.array_equal(scale, want):
                fail("/%s: weight_scale is not float32(weight_amax / %d)" % (group, bound))
                continue
            s = (np.float32(bound) / amax).astype(np.float32)
            exact = np.where(s[:, None] == 0, np.float32(0), q.astype(np.float32) / np.where(s == 0, 1, s)[:, None]).astype(np.float32)
            mult = (q.astype(np.float32) * scale[:, None]).astype(np.float32)
            d = np.abs(exact.view(np.int32).astype(np.int64) - mult.view(np.int32).astype(np.int64))
            d[(exact == 0) & (mult == 0)] = 0
            if d.max() > 2:
                fail("/%s: q * weight_scale differs from q / (bound / amax) by %d ulps" % (name, d.max()))
            ulps += int((d > 0).sum())
        if name.endswith("_amax") and "quantizer" in ds.attrs:
            n_quant += 1
            missing = [a for a in AMAX_ATTRS if a not in ds.attrs]
            if missing:
                fail("/%s: attributes %s missing" % (name, ", ".join(missing)))
            if name[:-5] + "_scale" not in f:
                fail("/%s: no %s_scale beside it" % (name, name[:-5].rsplit("/", 1)[1]))
            if (f[name][()] < 0).any():
                fail("/%s: negative amax" % name)
    qj = json.loads(f["quantization.json"][()])
    enabled = sum(1 for q in qj["quantizers"] if q["enabled"])
    if enabled != n_quant:
        fail("quantization.json lists %d enabled quantizers, the file has %d <stem>_amax datasets" % (enabled, n_quant))
    print("check_hdf5_layout: %s: %d datasets match docs/hdf5-format.md, %d int8 weights (%d elements where q * scale is "
          "1 or 2 ulps off the exact value), %d quantizers; %d failed" % (h5_path, checked, n_int8, ulps, n_quant, len(failed)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
