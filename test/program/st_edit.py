#!/usr/bin/env python3
"""st_edit.py: rewrites a safetensors file with one deliberate defect, for the bad-input tests (stdlib only).

  st_edit.py IN OUT fill NAME VALUE      every element of F32 tensor NAME set to VALUE (nan, inf, 1e38, ...)
  st_edit.py IN OUT row NAME ROW VALUE    row ROW of 2-d F32 tensor NAME set to VALUE
  st_edit.py IN OUT meta KEY JSON        __metadata__[KEY] = the JSON value (e.g. 5, a non-string)
  st_edit.py IN OUT hole BYTES           BYTES unused bytes inserted before the second tensor's data
"""
import json
import struct
import sys


def main():
    src, dst, cmd = sys.argv[1], sys.argv[2], sys.argv[3]
    raw = open(src, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    data = bytearray(raw[8 + n:])
    if cmd == "fill":
        name, value = sys.argv[4], float(sys.argv[5])
        t = header[name]
        assert t["dtype"] == "F32", t
        b, e = t["data_offsets"]
        data[b:e] = struct.pack("<f", value) * ((e - b) // 4)
    elif cmd == "row":
        name, row, value = sys.argv[4], int(sys.argv[5]), float(sys.argv[6])
        t = header[name]
        assert t["dtype"] == "F32" and len(t["shape"]) == 2, t
        width = t["shape"][1] * 4
        b = t["data_offsets"][0] + row * width
        data[b:b + width] = struct.pack("<f", value) * t["shape"][1]
    elif cmd == "meta":
        header.setdefault("__metadata__", {})[sys.argv[4]] = json.loads(sys.argv[5])
    elif cmd == "hole":
        gap = int(sys.argv[4])
        tensors = sorted((v["data_offsets"][0], k) for k, v in header.items() if k != "__metadata__")
        cut = tensors[1][0]
        for _, k in tensors[1:]:
            header[k]["data_offsets"] = [o + gap for o in header[k]["data_offsets"]]
        data[cut:cut] = b"\0" * gap
    else:
        sys.exit("unknown command " + cmd)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    open(dst, "wb").write(struct.pack("<Q", len(text)) + text + bytes(data))


if __name__ == "__main__":
    main()
