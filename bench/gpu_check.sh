#!/usr/bin/env bash
# The one script a session lent a GPU machine runs (keep it under 8 minutes).
# Prepare here:   bash ../shared/device/fetch-wheels.sh pytest==9.2.0 pluggy==1.6.0 \
#                     iniconfig==2.1.0 pytest-timeout==2.4.0
#                 HARNESS_CACHE_DIR=$PWD/.cache .venv/bin/harness ls tasks   # tracr weights cached
#                 .venv/bin/python -c "from harness.tasks import load; [load(t, device='cpu', cache_dir='.cache') for t in ('tracr-reverse', 'tracr-proportion')]"
# Run there:      the device tool with carry [".whl", ".cache"] and command `bash bench/gpu_check.sh`
# It installs the carried wheels, runs the CUDA tests and the benchmarks, and prints a table;
# every JSON line is also written under $OUT.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-/tmp/gpu-check}
mkdir -p "$out"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target /tmp/site .whl/*.whl || { echo "wheel install failed"; exit 2; }
export PYTHONPATH=/tmp/site:$PWD HF_HUB_OFFLINE=1 WANDB_MODE=disabled HARNESS_CACHE_DIR=$PWD/.cache
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$out/gpu.txt"

timeout 150 python3 -m pytest -q -p no:cacheprovider -m cuda tests/test_cuda.py 2>&1 \
  | tail -n 15 | tee "$out/cuda-tests.txt"

run() {  # name, then the command; one JSON line each
  local name=$1; shift
  timeout 120 "$@" > "$out/$name.json" 2> "$out/$name.err" || echo "{\"bench\": \"$name\", \"failed\": true}" > "$out/$name.json"
  tail -n 1 "$out/$name.json"
}
gpt2=(--n-layers 12 --n-heads 12 --d-model 768 --d-mlp 3072 --vocab 50257)
run sp-default      python3 bench/sp_speed.py --device cuda
run sp-gpt2-32x16   python3 bench/sp_speed.py --device cuda "${gpt2[@]}" --batch 32 --seq 16
run sp-gpt2-128x16  python3 bench/sp_speed.py --device cuda "${gpt2[@]}" --batch 128 --seq 16
run batched-tracr   python3 bench/batched_trials.py --device cuda --task tracr-reverse --k 16 --epochs 20
run batched-gpt2    python3 bench/batched_trials.py --device cuda --task ioi --random-weights \
                      --n-train 32 --k 16 --epochs 5

python3 - "$out" <<'PY'
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])
print(f"{'bench':<16} {'step / batched s':>16} {'floor / seq s':>14} {'ratio':>8} {'peak MB':>9}")
for path in sorted(out.glob("*.json")):
    try:
        r = json.loads(path.read_text().strip().splitlines()[-1])
    except Exception:
        print(f"{path.stem:<16} unreadable"); continue
    if r.get("failed"):
        print(f"{path.stem:<16} failed (see {path.stem}.err)"); continue
    if r["bench"] == "sp_speed":
        print(f"{path.stem:<16} {r['median_step_s']:>16.4f} {r['floor_median_s']:>14.4f} "
              f"{r['step_over_floor']:>8.3f} {r['peak_memory_mb']:>9.0f}")
    else:
        print(f"{path.stem:<16} {r['batched_s']:>16.3f} {r['sequential_s']:>14.3f} "
              f"{r['throughput_ratio']:>8.2f} {'':>9}")
PY
