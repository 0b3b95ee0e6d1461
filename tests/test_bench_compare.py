"""bench/compare_autocircuit.py: the harness side's JSON line and the driver's exit 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TINY = [
    "--n-layers", "2", "--n-heads", "2", "--d-model", "16", "--d-mlp", "32",
    "--vocab", "20", "--batch", "4", "--seq", "6", "--steps", "2", "--warmup", "1",
    "--threads", "1",
]  # fmt: skip


def factorized_edges(n_layers: int, n_heads: int) -> int:
    """Edges of the factorized graph with separate Q/K/V and MLPs: a destination in layer
    l (0-based) reads the embedding and every head and MLP of the layers before it; an
    MLP also reads its own layer's heads; the final residual reads all."""
    into_layer = [1 + layer * (n_heads + 1) for layer in range(n_layers)]
    qkv = 3 * n_heads * sum(into_layer)
    mlp = sum(n + n_heads for n in into_layer)
    return qkv + mlp + 1 + n_layers * (n_heads + 1)


def test_closed_form():
    assert factorized_edges(2, 2) == 46
    assert factorized_edges(4, 8) == 1519  # the bench's default config
    assert factorized_edges(12, 12) == 32491  # GPT-2 small


def test_harness_side_prints_one_json_line():
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "_sp_step_harness.py"), *TINY],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1
    result = json.loads(lines[0])
    assert result["side"] == "harness"
    assert result["n_edges"] == factorized_edges(2, 2)
    assert result["steps"] == 2
    assert result["median_step_s"] > 0
    assert result["device"] == "cpu"


def test_driver_exits_2_without_the_autocircuit_env(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "compare_autocircuit.py"),
            "--autocircuit-python",
            str(tmp_path / "missing" / "python"),
            *TINY,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    assert len(lines) == 1
    assert "make bench-env" in lines[0]
