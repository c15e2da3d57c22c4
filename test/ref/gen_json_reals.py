"""Writes test/base/fixtures/json_reals.json: doubles (as their 64-bit patterns) and how Python's json module writes
them (float.__repr__, what transformers' save_pretrained puts into config.json), for test/base/test_json.c.

Cases: values configs carry (0.1, 1e-12, 0.02, 512.0, 1e30), float32 values widened to double, the edges of the
fixed/exponent switch, subnormals and extremes, and random bit patterns. Run: python3 test/ref/gen_json_reals.py
"""
import json
import os
import random
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "base", "fixtures", "json_reals.json")


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def main():
    rng = random.Random(15)
    values = [0.1, 1e-12, 0.02, 512.0, 1e30, 1e-5, 1e-4, 0.0001234, 1e15, 1e16, 123456789012345680.0, 100000.0, -0.0,
              0.0, 1.0, -2.5, 0.3, 2.0 ** -1074, 2.2250738585072014e-308, 1.7976931348623157e308, 9007199254740993.0,
              f32(0.1), f32(1e-12), f32(0.02), f32(0.9), 0.012345678901234568, 5e-324, 1e22, 1e23, 1.5e300]
    values += [rng.uniform(-1, 1) * 10 ** rng.randint(-30, 30) for _ in range(300)]
    values += [f32(rng.uniform(0, 1)) for _ in range(100)]
    bits = [rng.getrandbits(64) for _ in range(600)]
    values += [v for v in (struct.unpack("<d", struct.pack("<Q", b))[0] for b in bits) if v == v and abs(v) != float("inf")]
    cases = [["%016x" % struct.unpack("<Q", struct.pack("<d", v))[0], json.dumps(v)] for v in values]
    with open(OUT, "w") as f:
        f.write('{"cases": [\n' + ",\n".join(json.dumps(c) for c in cases) + "\n]}\n")
    print("wrote", len(cases), "cases")


if __name__ == "__main__":
    main()
