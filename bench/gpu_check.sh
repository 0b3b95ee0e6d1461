#!/usr/bin/env bash
# The one script a session lent a GPU machine runs (keep it under 8 minutes; about 3 expected).
# Prepare here:   bash bench/gpu_check_prepare.sh      (wheels into .whl/, tracr weights into .cache/)
# Run there:      the device tool, carry [".whl", ".cache"], command `bash bench/gpu_check.sh`
# Dry run here:   DEVICE=cpu PY=.venv/bin/python SKIP_INSTALL=1 QUICK=1 bash bench/gpu_check.sh
#                 (or PY=/some/bare/python to check that the carried wheels are enough)
# It installs the carried wheels, runs the CUDA tests and the benchmarks, and prints a table;
# every JSON line is also written under $OUT.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-/tmp/gpu-check}
py=${PY:-python3}
device=${DEVICE:-cuda}
site=${SITE:-/tmp/site}
wheels=${WHEELS:-.whl}
mkdir -p "$out"
if [ "${SKIP_INSTALL:-0}" != 1 ]; then
  "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target "$site" "$wheels"/*.whl || { echo "wheel install failed"; exit 2; }
  export PYTHONPATH=$site:$PWD
else
  export PYTHONPATH=$PWD
fi
export HF_HUB_OFFLINE=1 WANDB_MODE=disabled HARNESS_CACHE_DIR=$PWD/.cache
if [ "$device" = cuda ]; then
  nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$out/gpu.txt"
fi
"$py" -c "import torch, transformer_lens; print('torch', torch.__version__, \
  'transformer_lens', transformer_lens.__version__ if hasattr(transformer_lens, '__version__') else '?')" \
  | tee "$out/versions.txt"

timeout 150 "$py" -m pytest -q -p no:cacheprovider -o addopts="" -m cuda tests/test_cuda.py 2>&1 \
  | tail -n 15 | tee "$out/cuda-tests.txt"

if [ "${QUICK:-0}" = 1 ]; then  # a dry run of the plumbing: tiny steps, tiny batches
  steps=(--steps 2 --warmup 1); gpt2_batches=(4 8); epochs=2; n_train=(4); k=4
else
  steps=(); gpt2_batches=(32 128); epochs=20; n_train=(8 32); k=16
fi
run() {  # name, then the command; one JSON line each
  local name=$1; shift
  timeout 150 "$@" > "$out/$name.json" 2> "$out/$name.err" \
    || echo "{\"bench\": \"$name\", \"failed\": true}" > "$out/$name.json"
  tail -n 1 "$out/$name.json"
}
gpt2=(--n-layers 12 --n-heads 12 --d-model 768 --d-mlp 3072 --vocab 50257)
run sp-default "$py" bench/sp_speed.py --device "$device" --count-ops "${steps[@]}"
run "sp-gpt2-${gpt2_batches[0]}x16" "$py" bench/sp_speed.py --device "$device" "${gpt2[@]}" \
  --batch "${gpt2_batches[0]}" --seq 16 --count-ops "${steps[@]}"
run "sp-gpt2-${gpt2_batches[1]}x16" "$py" bench/sp_speed.py --device "$device" "${gpt2[@]}" \
  --batch "${gpt2_batches[1]}" --seq 16 "${steps[@]}"
run batched-tracr "$py" bench/batched_trials.py --device "$device" --task tracr-reverse \
  --k "$k" --epochs "$epochs" --count-ops
run mib-tracr "$py" bench/mib_speed.py --device "$device" --tasks tracr-reverse tracr-hist
if [ "$device" = cuda ]; then
  run cuda-graph "$py" bench/cuda_graph_probe.py "${steps[@]}"
fi
for n in "${n_train[@]}"; do
  run "batched-ioi-$n" "$py" bench/batched_trials.py --device "$device" --task ioi \
    --random-weights --n-train "$n" --k "$k" --epochs 5 --count-ops
done

"$py" - "$out" <<'PY'
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])
print(f"{'bench':<16} {'SP step/batched s':>17} {'floor/sequential s':>18} {'ratio':>7} "
      f"{'peak MB':>8} {'ops (ours/floor or batched/single)':>34}")
for path in sorted(out.glob("*.json")):
    try:
        r = json.loads(path.read_text().strip().splitlines()[-1])
    except Exception:
        print(f"{path.stem:<16} unreadable"); continue
    if r.get("failed"):
        print(f"{path.stem:<16} failed: {r.get('reason', 'see ' + path.stem + '.err')}"); continue
    if r["bench"] == "cuda_graph_probe":
        print(f"{path.stem:<16} {r['graph_step_s']:>17.4f} {r['eager_step_s']:>18.4f} "
              f"{r['speedup']:>7.2f} {'':>8} "
              f"{'sigmoid diff %.1e' % r['sigmoid_logits_max_abs_diff_after_5_steps']:>34}")
        continue
    if r["bench"] == "mib_speed":
        for task, t in ((k, v) for k, v in r.items() if isinstance(v, dict)):
            print(f"{'mib ' + task:<16} {t['median_s']:>17.4f} {t['median_s_one_per_pass']:>18.4f} "
                  f"{t['speedup']:>7.2f} {'':>8} {str(t['circuits_per_pass']) + ' per pass':>34}")
        continue
    if r["bench"] == "sp_speed":
        ops = f"{r['ops_per_sp_step']}/{r['ops_per_floor_step']}" if "ops_per_sp_step" in r else ""
        print(f"{path.stem:<16} {r['median_step_s']:>17.4f} {r['floor_median_s']:>18.4f} "
              f"{r['step_over_floor']:>7.3f} {r['peak_memory_mb']:>8.0f} {ops:>34}")
    else:
        ops = (f"{r['ops_per_batched_step']}/{r['ops_per_single_trial_step']}"
               if "ops_per_batched_step" in r else "")
        print(f"{path.stem:<16} {r['batched_s']:>17.3f} {r['sequential_s']:>18.3f} "
              f"{r['throughput_ratio']:>7.2f} {'':>8} {ops:>34}")
print("SP ratio = step / floor (forward+backward with per-head hooks incl. attn result); "
      "batched ratio = throughput of K trials in one pass over K one by one; "
      "cuda-graph: replayed step / eager step (speedup); "
      "mib: 22 circuits several to a pass / one per pass (speedup)")
PY
