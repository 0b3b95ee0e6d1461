"""Time one SP step here and in auto-circuit 1.0.1; print one JSON line with both.

    make bench-env                                # once: auto-circuit's own venv
    python bench/compare_autocircuit.py           # 4 layers, 8 heads, d_model 256, CPU
    python bench/compare_autocircuit.py --n-layers 12 --n-heads 12 --d-model 768 \\
        --d-mlp 3072 --vocab 50257 --batch 32 --seq 16 [--device cuda]

Each side runs in its own process and venv (auto-circuit only imports with
transformer-lens 2.x; this project uses 3.x): ``bench/_sp_step_harness.py`` with this
project's python and ``bench/_sp_step_autocircuit.py`` with ``bench/.venv-autocircuit``'s.
Both build the same ``HookedTransformerConfig`` (seed 0) and batch and time the same step:
per-example hard-concrete masks, one patched forward, KL to the clean logits at the last
position, backward to the masks, one Adam step. ``--repeats N`` alternates the two sides
N times and reports the median of each side's medians. ``ratio`` is ours / theirs (below
1: this project is faster). On a small shared CPU box, pass ``--threads 1``: with
other processes on the cores, torch's default thread pool can slow both sides by 10x and
more and the ratio then measures contention. Exit status: 0, 1 when a side failed or the edge counts
differ, 2 when the auto-circuit venv is missing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from bench_model import add_model_flags

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
CONFIG_FLAGS = ("n_layers", "n_heads", "d_model", "d_mlp", "vocab", "batch", "seq")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = add_model_flags(argparse.ArgumentParser(description=__doc__.splitlines()[0]))
    parser.add_argument("--repeats", type=int, default=1, help="runs of each side, alternated")
    parser.add_argument(
        "--harness-python",
        default=os.environ.get("HARNESS_PYTHON", str(ROOT / ".venv" / "bin" / "python")),
        help="python of this project's venv (env HARNESS_PYTHON)",
    )
    parser.add_argument(
        "--autocircuit-python",
        default=os.environ.get(
            "AUTOCIRCUIT_PYTHON", str(BENCH / ".venv-autocircuit" / "bin" / "python")
        ),
        help="python of the auto-circuit venv (env AUTOCIRCUIT_PYTHON)",
    )
    parser.add_argument(
        "--check-sp",
        action="store_true",
        help="also time auto-circuit's own SP function (sp_call_step_s)",
    )
    return parser.parse_args(argv)


def run_side(python: str, script: str, flags: list[str]) -> dict:
    """Run one side's script; its last stdout line is its JSON result."""
    proc = subprocess.run(
        [python, str(BENCH / script), *flags],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "disabled"},
    )
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        raise RuntimeError(f"{script} failed (exit {proc.returncode}):\n{tail}")
    return json.loads(lines[-1])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for name, python in (
        ("auto-circuit", args.autocircuit_python),
        ("harness", args.harness_python),
    ):
        if not Path(python).exists():
            hint = "`make bench-env` builds it" if name == "auto-circuit" else "`make install`"
            print(f"{name} venv missing ({python} not found): {hint}", file=sys.stderr)
            return 2

    flags = []
    for name in (*CONFIG_FLAGS, "steps", "warmup", "device", "threads"):
        flags += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
    runs: dict[str, list[dict]] = {"harness": [], "autocircuit": []}
    try:
        for _ in range(args.repeats):
            runs["harness"].append(run_side(args.harness_python, "_sp_step_harness.py", flags))
            runs["autocircuit"].append(
                run_side(
                    args.autocircuit_python,
                    "_sp_step_autocircuit.py",
                    flags + (["--check-sp"] if args.check_sp else []),
                )
            )
    except RuntimeError as error:
        print(error, file=sys.stderr)
        return 1

    ours = statistics.median(r["median_step_s"] for r in runs["harness"])
    theirs = statistics.median(r["median_step_s"] for r in runs["autocircuit"])
    h, a = runs["harness"][-1], runs["autocircuit"][-1]
    result = {
        "bench": "compare_autocircuit",
        "device": h["device"],
        "torch_threads": h["torch_threads"],
        "config": {k: getattr(args, k) for k in CONFIG_FLAGS},
        "steps": h["steps"],
        "repeats": args.repeats,
        "harness_median_step_s": round(ours, 6),
        "autocircuit_median_step_s": round(theirs, 6),
        "ratio": round(ours / theirs, 3),
        "harness_n_edges": h["n_edges"],
        "autocircuit_n_edges": a["n_edges"],
        "edges_match": h["n_edges"] == a["n_edges"],
        "weights_match": h["weights_checksum"] == a["weights_checksum"],
        "harness_runs_s": [r["median_step_s"] for r in runs["harness"]],
        "autocircuit_runs_s": [r["median_step_s"] for r in runs["autocircuit"]],
        "versions": {
            "harness": {"torch": h["torch"], "transformer_lens": h["transformer_lens"]},
            "autocircuit": {
                "torch": a["torch"],
                "transformer_lens": a["transformer_lens"],
                "auto_circuit": a["auto_circuit"],
            },
        },
    }
    if args.check_sp:
        result["autocircuit_sp_call_step_s"] = statistics.median(
            r["sp_call_step_s"] for r in runs["autocircuit"]
        )
    print(json.dumps(result), flush=True)
    return 0 if result["edges_match"] else 1


if __name__ == "__main__":
    sys.exit(main())
