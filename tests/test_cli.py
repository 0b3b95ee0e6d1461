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


def run_cli(*args, env=None):
    import os

    return subprocess.run(
        [sys.executable, "-m", "harness.cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        timeout=300,
    )


def test_score_oracle_random_and_csv(tmp_path):
    import csv

    oracle = run_cli("score", "--task", "tracr-reverse", "--algo", "oracle", "--device", "cpu")
    assert oracle.returncode == 0, oracle.stderr
    rows = {line.split()[0]: line.split() for line in oracle.stdout.splitlines()[2:]}
    assert rows["resample"][2] == "1.0000"
    out = tmp_path / "scores.csv"
    rand = run_cli(
        "score",
        "--task",
        "tracr-proportion",
        "--algo",
        "random",
        "--seed",
        "3",
        "--out",
        str(out),
        "--device",
        "cpu",
    )
    assert rand.returncode == 0, rand.stderr
    with out.open() as handle:
        table = list(csv.reader(handle))
    assert table[0] == ["edge", "score"] and len(table) == 1 + 23


def test_score_bad_inputs_are_one_line(tmp_path):
    cases = [
        (["--task", "tracr-revers", "--algo", "sp"], "did you mean 'tracr-reverse'"),
        (["--task", "tracr-reverse", "--algo", "acd"], "unknown algorithm 'acd'"),
        (["--task", "tracr-reverse", "--algo", "sp", "--param", "lr=1"], "takes no parameter 'lr'"),
        (["--task", "tracr-reverse", "--algo", "sp", "--param", "epochs"], "expected key=value"),
        (["--task", "ioi", "--algo", "random", "--device", "cpu"], "HARNESS_MODEL_DIR"),
    ]
    for args, message in cases:
        result = run_cli("score", *args, env={"HF_HUB_OFFLINE": "1", "HARNESS_MODEL_DIR": ""})
        assert result.returncode == 2, (args, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], (args, lines)


def test_ls_tasks_and_algorithms():
    tasks = run_cli("ls", "tasks")
    assert tasks.returncode == 0
    for slug in ("tracr-reverse", "tracr-proportion", "ioi", "greaterthan", "docstring"):
        assert slug in tasks.stdout
    algorithms = run_cli("ls", "algorithms")
    assert "learning_rate" in algorithms.stdout and "oracle" in algorithms.stdout


def test_a_config_given_to_the_wrong_command_says_which_command_runs_it(tmp_path):
    study = ROOT / "studies" / "sp-tracr-reverse.yaml"
    comparison = ROOT / "studies" / "compare-tracr.yaml"
    for args, message in [
        (("run", str(comparison)), f"a comparison config: run `harness compare {comparison}`"),
        (("compare", str(study)), f"a study config, not a comparison: run `harness run {study}`"),
        (("ls", "studies", "--studies-dir", str(tmp_path / "nope")), "is not a directory"),
    ]:
        result = run_cli(*args)
        assert result.returncode == 2, (args, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], (args, lines)


def test_ls_studies_aligns_its_columns_and_lists_invalid_configs(tmp_path):
    (tmp_path / "a.yaml").write_text((ROOT / "studies" / "sp-tracr-reverse.yaml").read_text())
    (tmp_path / "b.yaml").write_text("version: 1\nname: broken\ncolour: red\n")
    result = run_cli("ls", "studies", "--studies-dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    good, bad = result.stdout.splitlines()
    assert good.split() == ["sp-tracr-reverse", "sp", "tracr-reverse", str(tmp_path / "a.yaml")]
    assert bad.startswith("b ") and "invalid" in bad and "task: Field required" in bad
    assert good.index(" sp ") == bad.index(" invalid ")
