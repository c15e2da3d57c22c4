# tiny_env.sh: sourced by the program tests (needs $tmp and $src): tiny_env TASK MODEL MAX_STEPS SAVE_STEPS puts the
# tiny model (test/model/fixtures/tiny with fixtures/vocab.txt) in $tmp/model and writes $tmp/run.ini, a one-thread
# run of TASK from MODEL on fixtures/squad_tiny.json with sequences of 32 tokens.
tiny_env() {
  local fix="$src/test/program/fixtures"
  mkdir -p "$tmp/model"
  cp "$src/test/model/fixtures/tiny/config.json" "$src/test/model/fixtures/tiny/model.safetensors" "$fix/vocab.txt" "$tmp/model/"
  cat >"$tmp/run.ini" <<INI
[run]
task = $1
threads = 1
output_dir = $tmp/out
[model]
path = $2
[data]
train_file = $fix/squad_tiny.json
dev_file = $fix/squad_tiny.json
max_seq_length = 32
doc_stride = 8
[quant]
calib_samples = 4
[train]
max_steps = $3
batch_size = 2
save_steps = $4
logging_steps = 1
[eval]
batch_size = 4
max_answer_length = 8
INI
}
