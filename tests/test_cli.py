import json
import subprocess
import sys
from pathlib import Path

from harness.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_demo_finds_the_planted_circuit(capsys):
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "every planted edge ranks above every other edge" in out


def test_bad_input_is_one_line_and_exit_code_2():
    result = subprocess.run(
        [sys.executable, "-m", "harness.cli", "demo", "--epochs", "0"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "harness: error: epochs must be an integer >= 1, got 0"
    ]


def test_sp_speed_bench_prints_one_json_line():
    result = subprocess.run(
        [
            sys.executable,
            "bench/sp_speed.py",
            "--n-layers",
            "2",
            "--n-heads",
            "2",
            "--d-model",
            "32",
            "--d-mlp",
            "64",
            "--vocab",
            "50",
            "--batch",
            "4",
            "--seq",
            "5",
            "--steps",
            "3",
            "--warmup",
            "1",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["n_edges"] == 46 and record["median_step_s"] > 0
    assert record["peak_memory_mb"] > 0
