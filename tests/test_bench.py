"""The bench scripts each print one JSON line with the fields gpu_check.sh reads."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
TINY = [
    "--n-layers", "2", "--n-heads", "2", "--d-model", "16", "--d-mlp", "32",
    "--vocab", "20", "--batch", "4", "--seq", "6", "--steps", "2", "--warmup", "1",
    "--threads", "1",
]  # fmt: skip


def bench(script: str, *args: str) -> dict:
    result = subprocess.run(
        [sys.executable, f"bench/{script}", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        check=True,
    )
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, result.stdout
    return json.loads(lines[0])


def test_sp_speed_counts_ops_and_can_skip_the_floor():
    counted = bench("sp_speed.py", *TINY, "--count-ops")
    assert counted["n_edges"] == 46
    # the SP step dispatches more than the floor's forward+backward, but not 3x more
    assert counted["ops_per_floor_step"] < counted["ops_per_sp_step"]
    assert counted["ops_per_sp_step"] < 3 * counted["ops_per_floor_step"]
    alone = bench("sp_speed.py", *TINY, "--no-floor")
    assert alone["floor_median_s"] is None and alone["step_over_floor"] is None
    assert alone["median_step_s"] > 0


def test_batched_trials_line():
    line = bench(
        "batched_trials.py", "--task", "tracr-reverse", "--k", "2", "--epochs", "2", "--count-ops"
    )
    assert line["k"] == 2 and line["n_edges"] == 77
    assert line["batched_s"] > 0 and line["sequential_s"] > 0
    # two trials in one pass cost fewer ops than two passes
    assert line["ops_per_batched_step"] < 2 * line["ops_per_single_trial_step"]


def test_mib_speed_line():
    line = bench("mib_speed.py", "--tasks", "tracr-sort", "--repeats", "1")
    timing = line["tracr-sort"]
    assert timing["circuits_per_pass"] == 22  # a tracr batch: every circuit in one pass
    assert timing["median_s"] > 0 and timing["median_s_one_per_pass"] > 0


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA answer")
def test_cuda_graph_probe_says_why_without_cuda():
    assert bench("cuda_graph_probe.py") == {
        "bench": "cuda_graph_probe",
        "failed": True,
        "reason": "no CUDA",
    }
