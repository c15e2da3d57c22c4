#!/usr/bin/env bash
# pack.sh [--tar] [BUILD_DIR [PACK_DIR]]: collects what bench/gpu/run.sh needs on a GPU machine that has CUDA but no package
# registry: the built qat-train and every test binary of the 'cuda' suite (with the suite's commands, environments and
# timeouts in tests.json), the non-CUDA shared libraries they load (OpenBLAS, HDF5, protobuf-c, jansson, ... as ldd
# resolves them here; glibc's own under lib/glibc/, used only where the machine's glibc is older than the binaries
# need), bench_train_gpu and bench_int8_gemm (the training benchmark), a SQuAD v1.1 dev file and MiniLM's config and vocabulary.
# bin/NAME wrappers set LD_LIBRARY_PATH (the pack's lib/, then the machine's CUDA libraries: CUDA_HOME, /usr/local/cuda,
# PyTorch's nvidia wheels) and run libexec/NAME.
# CUDA's libraries (cudart, cuBLAS, cuBLASLt, the driver) are not packed: the GPU machine's are used.
# Defaults: BUILD_DIR = build (an nvcc build: -Dcuda=enabled), PACK_DIR = build-pack (git-ignored). --tar also writes
# PACK_DIR.tar.gz (about 26 MB; the folder is about 75 MB), which run.sh --pack unpacks.
# pack.sh --check PACK_DIR: every packed binary and library resolves, through the packed loader and libraries,
# to files inside the pack except CUDA's libraries; prints what is missing and exits 1 otherwise.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)

cuda_lib_re='^(libcuda|libcudart|libcublas|libcublasLt|libnvidia-[a-z-]*|libnvrtc|libnvJitLink|libnccl|libcusparse|libcusolver|libcufft|libcurand)\.so'
glibc_re='^(libc|libm|libmvec|libdl|libpthread|librt|libresolv|libutil|libanl|libBrokenLocale|libnss_[a-z]*|ld-linux-x86-64)\.so'

# ldd_entries FILE [LOADER ARGS...]: "name<TAB>path" per needed library (path "not found" when unresolved)
ldd_entries() {
  local f="$1"; shift
  if [ $# -gt 0 ]; then "$@" --list "$f"; else ldd "$f"; fi 2>/dev/null | awk '
    /=>/ { name = $1; path = $3; if ($3 == "not") path = "not found"; printf "%s\t%s\n", name, path; next }
    /^[ \t]*\// { n = split($1, parts, "/"); printf "%s\t%s\n", parts[n], $1 }'
}

check_pack() {
  local pack
  pack=$(cd "$1" && pwd)
  local loader="$pack/lib/glibc/ld-linux-x86-64.so.2" bad=0 n=0 cuda_seen=""
  [ -x "$loader" ] || { echo "pack check: $pack/lib/glibc/ld-linux-x86-64.so.2 missing"; return 1; }
  for f in "$pack"/libexec/* "$pack"/lib/*.so*; do
    [ -f "$f" ] || continue
    n=$((n + 1))
    while IFS=$'\t' read -r name path; do
      case "$name" in linux-vdso.so.*|ld-linux-x86-64.so.*) continue ;; esac
      if [[ "$name" =~ $cuda_lib_re ]]; then
        cuda_seen="$cuda_seen $name"
        continue
      fi
      case "$path" in
        "$pack"/lib/*) ;;
        *) echo "pack check: ${f#"$pack"/} needs $name, resolved outside the pack: $path"; bad=$((bad + 1)) ;;
      esac
    done < <(ldd_entries "$f" "$loader" --inhibit-cache --library-path "$pack/lib:$pack/lib/glibc")
  done
  local cuda_names
  cuda_names=$(tr ' ' '\n' <<<"$cuda_seen" | sed '/^$/d' | sort -u | tr '\n' ' ')
  echo "pack check: $n files, $bad unresolved or outside the pack; left to the GPU machine: ${cuda_names:-none}"
  [ "$bad" -eq 0 ] && [ "$n" -gt 0 ]
}

if [ "${1:-}" = "--check" ]; then
  [ $# -eq 2 ] || { echo "usage: pack.sh --check PACK_DIR" >&2; exit 2; }
  check_pack "$2"
  exit $?
fi

tar=0
if [ "${1:-}" = "--tar" ]; then tar=1; shift; fi
build=$(cd "${1:-$root/build}" && pwd) || exit 1
pack=${2:-$root/build-pack}
[ -f "$build/meson-info/intro-tests.json" ] || { echo "pack.sh: $build is not a configured meson build" >&2; exit 1; }
[ -x "$build/programs/qat-train" ] || { echo "pack.sh: $build/programs/qat-train not built (ninja -C $build)" >&2; exit 1; }
tmp="$pack.tmp.$$"
rm -rf "$tmp"
mkdir -p "$tmp/bin" "$tmp/libexec" "$tmp/lib/glibc" "$tmp/data"
trap 'rm -rf "$tmp"' EXIT

# tests.json: the cuda suite with paths made relative (@PACK@: the pack, @ROOT@: the source tree, @SQUAD@: data)
python3 - "$build" "$root" "$tmp" <<'PY'
import json, os, sys
build, root, out = sys.argv[1:4]
tests, bins = [], {os.path.join(build, "programs", "qat-train")}
def rel(v):
    if not os.path.isabs(v) and os.path.isfile(os.path.join(build, v)):  # a target given relative to the build
        v = os.path.join(build, v)
    if v.startswith(build + "/"):
        bins.add(v)
        return "@PACK@/bin/" + os.path.basename(v)
    if v == root:
        return "@ROOT@"
    if v.startswith(root + "/"):
        return "@ROOT@/" + os.path.relpath(v, root)
    return v
for t in json.load(open(os.path.join(build, "meson-info", "intro-tests.json"))):
    if not any(s.split(":")[-1] == "cuda" for s in t["suite"]):
        continue
    env = {k: rel(v) for k, v in t["env"].items()}
    if "QB_SQUAD_DIR" in env:
        env["QB_SQUAD_DIR"] = "@SQUAD@"
    tests.append({"name": t["name"], "argv": [rel(a) for a in t["cmd"]], "env": env, "timeout": t["timeout"]})
for name in ("bench_train_gpu", "bench_int8_gemm"):  # the training benchmark (train_bench.sh) and its GEMM probe
    bench = os.path.join(build, "bench", name)
    if os.path.isfile(bench):
        bins.add(bench)
json.dump({"build": os.path.basename(build), "tests": tests}, open(os.path.join(out, "tests.json"), "w"), indent=1)
open(os.path.join(out, "binaries.txt"), "w").write("".join(b + "\n" for b in sorted(bins)))
PY

copy_lib() {  # copy_lib NAME PATH DEST_DIR: the file the link points to, under the name the binaries ask for
  [ -e "$3/$1" ] || cp -L "$2" "$3/$1"
}
while read -r bin; do
  [ -x "$bin" ] || { echo "pack.sh: $bin (a cuda suite binary) not built" >&2; exit 1; }
  name=$(basename "$bin")
  cp "$bin" "$tmp/libexec/$name"
  sed "s/@NAME@/$name/" >"$tmp/bin/$name" <<'SH'
#!/bin/sh
# generated by bench/gpu/pack.sh: runs the packed binary with the pack's libraries and the machine's CUDA
here=$(cd "$(dirname "$0")/.." && pwd)
[ -n "${QB_PACK_ENV:-}" ] || . "$here/env.sh"
exec $QB_PACK_LOADER "$here/libexec/@NAME@" "$@"
SH
  chmod +x "$tmp/bin/$name"
done <"$tmp/binaries.txt"

# the libraries, and theirs (ldd lists the whole closure)
for f in "$tmp"/libexec/*; do
  while IFS=$'\t' read -r name path; do
    case "$name" in linux-vdso.so.*) continue ;; esac
    if [[ "$name" =~ $cuda_lib_re ]]; then continue; fi
    [ "$path" = "not found" ] && { echo "pack.sh: $(basename "$f") needs $name, which ldd does not find here" >&2; exit 1; }
    if [[ "$name" =~ $glibc_re ]]; then copy_lib "$name" "$path" "$tmp/lib/glibc"; else copy_lib "$name" "$path" "$tmp/lib"; fi
  done < <(ldd_entries "$f")
done
# the glibc version the binaries and libraries need (the loader falls back to the packed glibc below it)
need=$(for f in "$tmp"/libexec/* "$tmp"/lib/*.so*; do objdump -T "$f" 2>/dev/null; done | grep -o 'GLIBC_[0-9][0-9.]*' |
  sed 's/GLIBC_//' | sort -t. -k1,1n -k2,2n -u | tail -1)

cat >"$tmp/env.sh" <<SH
# env.sh (generated by bench/gpu/pack.sh from $(basename "$build"), glibc $(getconf GNU_LIBC_VERSION | cut -d' ' -f2), needs $need):
# sourced by the bin/ wrappers (or once by run.sh): LD_LIBRARY_PATH = the pack's lib/ + the machine's CUDA libraries;
# QB_PACK_LOADER = the packed glibc's loader where the machine's glibc is older than $need, else empty.
pack_dir=\$(cd "\$(dirname "\${BASH_SOURCE:-\$0}")" 2>/dev/null && pwd)
[ -f "\$pack_dir/env.sh" ] || pack_dir=\$here
qb_need_glibc=$need
SH
cat >>"$tmp/env.sh" <<'SH'
qb_cuda_dirs=""
for d in ${CUDA_HOME:+"$CUDA_HOME/lib64"} ${CUDA_PATH:+"$CUDA_PATH/lib64"} /usr/local/cuda/lib64 /usr/local/cuda-13*/lib64 \
         /usr/local/cuda/targets/x86_64-linux/lib /usr/lib/x86_64-linux-gnu; do
  case "$qb_cuda_dirs:" in *":$d:"*) continue ;; esac
  [ -e "$d/libcublasLt.so.13" ] && qb_cuda_dirs="$qb_cuda_dirs:$d"
done
if [ -z "$qb_cuda_dirs" ] && command -v python3 >/dev/null; then  # PyTorch's CUDA 13 wheels (nvidia-*-cu13)
  for d in $(python3 -c 'import glob, site
for r in site.getsitepackages() + [site.getusersitepackages()]:
    for d in sorted(set(glob.glob(r + "/nvidia/*/lib") + glob.glob(r + "/nvidia/cu13/lib*"))): print(d)' 2>/dev/null); do
    ls "$d"/libcudart.so.13* "$d"/libcublas*.so.13* >/dev/null 2>&1 && qb_cuda_dirs="$qb_cuda_dirs:$d"
  done
fi
# NCCL (libnccl.so.2, linked by the data-parallel backend): from the CUDA dirs, else PyTorch's nvidia-nccl wheel
qb_nccl=""
for d in $(echo "$qb_cuda_dirs" | tr : " "); do [ -e "$d/libnccl.so.2" ] && qb_nccl=$d; done
if [ -z "$qb_nccl" ] && command -v python3 >/dev/null; then
  qb_nccl=$(python3 -c 'import glob, site
for r in site.getsitepackages() + [site.getusersitepackages()]:
    for f in sorted(glob.glob(r + "/nvidia/nccl/lib/libnccl.so.2") + glob.glob(r + "/nvidia/cu13/lib*/libnccl.so.2")): print(f.rsplit("/", 1)[0])' 2>/dev/null | head -1)
  [ -n "$qb_nccl" ] && qb_cuda_dirs="$qb_cuda_dirs:$qb_nccl"
fi
qb_have=$(getconf GNU_LIBC_VERSION 2>/dev/null | cut -d' ' -f2)
QB_PACK_LOADER=""
if [ -n "$qb_need_glibc" ] && [ "$(printf '%s\n%s\n' "$qb_need_glibc" "${qb_have:-0}" | sort -t. -k1,1n -k2,2n | head -1)" != "$qb_need_glibc" ]; then
  QB_PACK_LOADER="$pack_dir/lib/glibc/ld-linux-x86-64.so.2 --library-path $pack_dir/lib:$pack_dir/lib/glibc$qb_cuda_dirs"
fi
export LD_LIBRARY_PATH="$pack_dir/lib$qb_cuda_dirs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export QB_PACK_LOADER QB_PACK_CUDA_DIRS="${qb_cuda_dirs#:}" QB_PACK_ENV=1
SH

squad=${QB_SQUAD_DIR:-$root/../shared/data/squad}
[ -f "$squad/dev-v1.1.json.gz" ] && cp "$squad/dev-v1.1.json.gz" "$tmp/data/"
if [ -f "$root/.cache/minilm/vocab.txt" ]; then
  mkdir -p "$tmp/data/minilm-vocab"
  cp "$root/.cache/minilm/vocab.txt" "$root/.cache/minilm/config.json" "$tmp/data/minilm-vocab/"
fi
git -C "$root" rev-parse HEAD >"$tmp/commit.txt" 2>/dev/null || echo unknown >"$tmp/commit.txt"
"$build/programs/qat-train" --version >"$tmp/version.txt"

check_pack "$tmp" >"$tmp/check.txt" || { cat "$tmp/check.txt" >&2; exit 1; }
rm -rf "$pack"
mv "$tmp" "$pack"
trap - EXIT
if [ $tar -eq 1 ]; then
  tar -C "$(dirname "$pack")" -czf "$pack.tar.gz.tmp" "$(basename "$pack")" && mv "$pack.tar.gz.tmp" "$pack.tar.gz" ||
    { echo "pack.sh: cannot write $pack.tar.gz" >&2; exit 1; }
  echo "pack.sh: $pack.tar.gz: $(du -h "$pack.tar.gz" | cut -f1)"
fi
echo "pack.sh: $pack: $(ls "$pack/libexec" | wc -l) binaries, $(ls "$pack/lib" | wc -l) libraries (+$(ls "$pack/lib/glibc" | wc -l) glibc), $(du -sh "$pack" | cut -f1); $(tail -1 "$pack/check.txt" | sed 's/^pack check: //')"
