#!/usr/bin/env bash
# bench_precision_loss.sh: the QA training loss curve with bf16 GEMMs against fp32 on the CPU: calibrates MiniLM once
# (configs/squad_minilm_qat.ini; an OUT_DIR/calib from an earlier run is reused), then QAT-trains STEPS steps from the
# same calibrated checkpoint, seed and data in each precision (run.precision), logging every step, and prints both
# curves, the largest relative difference |bf16 - fp32| / fp32 over the steps and the wall and CPU time of each run.
# Run from the repository root: bench/bench_precision_loss.sh [STEPS (50)] [OUT_DIR (out/precision_loss)] [section.key=value ...]
# (the overrides apply to both training runs, e.g. train.batch_size=4 data.max_seq_length=64 for a quicker curve)
set -euo pipefail
STEPS=${1:-50}
OUT=${2:-out/precision_loss}
shift $(( $# < 2 ? $# : 2 ))
BIN=${QB_BUILD_DIR:-build}/programs/qat-train
CFG=configs/squad_minilm_qat.ini
[ -x "$BIN" ] || { echo "bench_precision_loss: $BIN not built (ninja -C build)" >&2; exit 1; }
[ -f .cache/minilm/model.safetensors ] || { echo "bench_precision_loss: no MiniLM in .cache/minilm (scripts/fetch_minilm.sh)" >&2; exit 1; }
mkdir -p "$OUT"
[ -f "$OUT/calib/config.json" ] || "$BIN" "$CFG" run.task=calibrate run.output_dir="$OUT/calib" > "$OUT/calib.log"
for p in fp32 bf16; do
  /usr/bin/time -f "%e %U %S" -o "$OUT/$p.time" "$BIN" "$CFG" run.task=train model.path="$OUT/calib" run.output_dir="$OUT/$p" \
    run.precision=$p train.max_steps="$STEPS" train.logging_steps=1 train.save_steps=0 "$@" > "$OUT/$p.log"
done
python3 - "$OUT" "$STEPS" <<'EOF'
import json, sys
out, steps = sys.argv[1], int(sys.argv[2])
def losses(p):
    rows = [json.loads(l) for l in open(f"{out}/{p}/metrics.jsonl") if l.strip()]
    return {r["step"]: r["loss"] for r in rows if "loss" in r}
a, b = losses("fp32"), losses("bf16")
common = sorted(set(a) & set(b))
print("step  loss fp32   loss bf16   rel diff")
worst = 0.0
for s in common:
    rel = abs(b[s] - a[s]) / abs(a[s])
    worst = max(worst, rel)
    print(f"{s:4d}  {a[s]:9.5f}   {b[s]:9.5f}   {rel:8.2e}")
for p in ("fp32", "bf16"):
    wall, user, sys_ = (float(x) for x in open(f"{out}/{p}.time").read().split())
    print(f"{p}: {len(a if p == 'fp32' else b)} steps logged, wall {wall:.1f} s, cpu {user + sys_:.1f} s")
print(f"max relative loss difference bf16 vs fp32 over {len(common)} steps: {worst:.3e}")
EOF
