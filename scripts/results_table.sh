#!/usr/bin/env bash
# results_table.sh: runs the README's results table on the CPU, one run at a time, and prints it as markdown: MiniLM
# fine-tuned in fp32 (configs/squad_minilm_fp32.ini), its PTQ with each calibrator (configs/squad_minilm_ptq.ini),
# QAT from the best PTQ checkpoint (configs/squad_minilm_qat_finetuned.ini) and QAT + KD with the fp32 model as the
# teacher (configs/squad_minilm_qat_kd.ini), all evaluated on the same dev questions. Outputs and logs in OUT.
# usage: scripts/results_table.sh [--check | --reuse | --print] [OUT]     (OUT: out/results)
#   --check  checks every run's config and overrides with qat-train --check; runs nothing
#   --reuse  skips the runs that finished before (OUT/NAME.done), reruns the rest
#   --print  prints the table of what OUT holds; runs nothing
# QAT_TRAIN names the binary (default build/programs/qat-train); QB_RESULTS_THREADS the threads (default 2).
set -euo pipefail
cd "$(dirname "$0")/.."
mode=run
case "${1:-}" in --check | --reuse | --print) mode=${1#--}; shift ;; -*) sed -n '2,10s/^# \{0,1\}//p' "$0" >&2; exit 2 ;; esac
out=${1:-out/results}
exe=${QAT_TRAIN:-./build/programs/qat-train}
[ -x "$exe" ] || { echo "results_table: $exe: not built (meson setup build && ninja -C build)" >&2; exit 1; }
common=("run.threads=${QB_RESULTS_THREADS:-2}" train.progress=lines)
export OMP_WAIT_POLICY=passive  # the cores are shared: waiting threads yield them
calibrators=(max percentile_99.9 percentile_99.99 percentile_99.999 entropy mse)

# run NAME CONFIG [section.key=value ...]: one qat-train run, its output in OUT/NAME.log
run() {
  local name=$1
  shift
  if [ "$mode" = check ]; then
    "$exe" --check "$@" "${common[@]}" >/dev/null || { echo "results_table: $name: the config does not check" >&2; exit 1; }
    echo "results_table: $name: ok"
    return
  fi
  [ "$mode" = reuse ] && [ -f "$out/$name.done" ] && return
  rm -f "$out/$name.done"
  echo "results_table: $name: $exe $* ${common[*]}" | tee "$out/$name.cmd" >&2
  if ! "$exe" "$@" "${common[@]}" >"$out/$name.log" 2>&1; then
    tail -n 5 "$out/$name.log" >&2
    echo "results_table: $name failed (log: $out/$name.log)" >&2
    exit 1
  fi
  touch "$out/$name.done"
}

# json_num FILE KEY: the number KEY holds in FILE (as qat-train writes it: one key per line)
json_num() { sed -n "s/^ *\"$2\": *\([-0-9.eE+]*\),\{0,1\}$/\1/p" "$1" | head -n 1; }
# log_secs LOG PREFIX: the seconds of the line "PREFIX... in N s" of LOG
log_secs() { sed -n "s/^$2.* in \([0-9.]*\) s.*/\1/p" "$1" | head -n 1; }

# The calibrator with the best F1 (the first on ties), from the finished PTQ runs.
best_ptq() {
  local best="" best_f1=-1 name f1
  for name in "${calibrators[@]}"; do
    [ -f "$out/ptq_$name/eval_results.json" ] || continue
    f1=$(json_num "$out/ptq_$name/eval_results.json" eval_f1)
    if awk -v a="$f1" -v b="$best_f1" 'BEGIN { exit !(a > b) }'; then best=$name best_f1=$f1; fi
  done
  echo "${best:-percentile_99.99}"
}

cal_args() {  # cal_args NAME: the quant overrides of a calibrator name
  case "$1" in
    percentile_*) echo "quant.calibrator=percentile quant.percentile=${1#percentile_}" ;;
    *) echo "quant.calibrator=$1" ;;
  esac
}

[ "$mode" = check ] || mkdir -p "$out"
if [ "$mode" != print ]; then
  if [ "$mode" = run ] || { [ "$mode" = reuse ] && [ ! -f "$out/load_start.txt" ]; }; then uptime >"$out/load_start.txt"; fi
  run fp32 configs/squad_minilm_fp32.ini "run.output_dir=$out/fp32"
  run fp32_eval configs/squad_minilm_fp32.ini run.task=eval "model.path=$out/fp32" "run.output_dir=$out/fp32"
  for name in "${calibrators[@]}"; do
    # shellcheck disable=SC2046  # cal_args gives whole words
    run "ptq_$name" configs/squad_minilm_ptq.ini "model.path=$out/fp32" "run.output_dir=$out/ptq_$name" $(cal_args "$name")
  done
  best=$(best_ptq)
  [ "$mode" = check ] || echo "$best" >"$out/best_ptq.txt"
  run qat configs/squad_minilm_qat_finetuned.ini "model.path=$out/ptq_$best" "run.output_dir=$out/qat"
  run qat_eval configs/squad_minilm_qat_finetuned.ini run.task=eval "model.path=$out/qat" "run.output_dir=$out/qat"
  run qat_kd configs/squad_minilm_qat_kd.ini "model.path=$out/ptq_$best" "train.teacher=$out/fp32" "run.output_dir=$out/qat_kd"
  run qat_kd_eval configs/squad_minilm_qat_kd.ini run.task=eval "model.path=$out/qat_kd" "run.output_dir=$out/qat_kd"
  [ "$mode" = check ] && exit 0
  uptime >"$out/load_end.txt"
fi

# The table: EM/F1 of each run's eval_results.json, the gap to fp32, and time (train: s/step over the whole run;
# PTQ: calibration + evaluation seconds).
best=$(cat "$out/best_ptq.txt" 2>/dev/null || best_ptq)
fp32_em=$(json_num "$out/fp32/eval_results.json" eval_exact_match)
fp32_f1=$(json_num "$out/fp32/eval_results.json" eval_f1)
row() {  # row LABEL DIR TIME COMMAND
  local em f1
  [ -f "$2/eval_results.json" ] || { echo "| $1 | | | | | not run | |"; return; }
  em=$(json_num "$2/eval_results.json" eval_exact_match)
  f1=$(json_num "$2/eval_results.json" eval_f1)
  awk -v l="$1" -v em="$em" -v f1="$f1" -v e0="$fp32_em" -v f0="$fp32_f1" -v t="$3" -v c="$4" \
    'BEGIN { printf "| %s | %.2f | %.2f | %+.2f | %+.2f | %s | `%s` |\n", l, em, f1, em - e0, f1 - f0, t, c }'
}
train_time() {  # train_time DIR: "s/step (steps, train s; eval s)"
  local rt steps ev
  [ -f "$1/eval_results.json" ] || return 0
  rt=$(json_num "$1/train_results.json" train_runtime)
  steps=$(json_num "$1/train_results.json" global_step)
  ev=$(json_num "$1/eval_results.json" eval_runtime)
  awk -v rt="$rt" -v n="$steps" -v ev="$ev" 'BEGIN { printf "%.2f s/step (%d steps, %.0f s; eval %.1f s)", rt / n, n, rt, ev }'
}
ptq_time() {  # ptq_time NAME: "calibration s + eval s"
  local cal ev
  [ -f "$out/ptq_$1/eval_results.json" ] || return 0
  cal=$(log_secs "$out/ptq_$1.log" "calibrate:")
  ev=$(json_num "$out/ptq_$1/eval_results.json" eval_runtime)
  awk -v c="$cal" -v e="$ev" 'BEGIN { printf "%.1f s + %.1f s", c, e }'
}
cmd() { [ -f "$out/$1.cmd" ] && sed -e "s|^results_table: [a-z_0-9.]*: [^ ]*|qat-train|" -e "s| run.threads=[0-9]* train.progress=lines||" "$out/$1.cmd"; }

cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -n 1)
n_dev=$(json_num "$out/fp32/eval_results.json" eval_examples)
n_train=$(sed -n 's/^data: .*train[^:]*: \([0-9]*\) questions.*/\1/p' "$out/fp32.log" | head -n 1)
echo "MiniLM (all-MiniLM-L6-v2) on SQuAD v1.1: fine-tuned on the first $n_train training questions, evaluated on the first"
echo "$n_dev dev questions; ${common[0]}, $cpu ($(nproc) cores); load average at the start: $(sed 's/.*load average: //' "$out/load_start.txt" 2>/dev/null),"
echo "at the end: $(sed 's/.*load average: //' "$out/load_end.txt" 2>/dev/null) (a shared host: times are noisy, up to several x)."
echo
echo "| model | EM | F1 | EM vs fp32 | F1 vs fp32 | time | command |"
echo "|---|---|---|---|---|---|---|"
row "fp32 fine-tuned (train, quant.disable)" "$out/fp32" "$(train_time "$out/fp32")" "$(cmd fp32)"
for name in "${calibrators[@]}"; do
  label="PTQ ${name/_/ }"
  [ "$name" = "$best" ] && label="$label (best)"
  row "$label" "$out/ptq_$name" "$(ptq_time "$name")" "$(cmd "ptq_$name")"
done
row "QAT from PTQ ${best/_/ }, 1 epoch" "$out/qat" "$(train_time "$out/qat")" "$(cmd qat)"
row "QAT + KD (teacher fp32), 1 epoch" "$out/qat_kd" "$(train_time "$out/qat_kd")" "$(cmd qat_kd)"
