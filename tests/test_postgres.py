"""Several workers against one PostgreSQL study (CI starts a real server: .ci/run)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from harness.configs.study import load_config
from harness.records.store import read_records
from harness.study.driver import load_or_create_study
from tests.test_study import ROOT, write_study

POSTGRES_URL = os.environ.get("HARNESS_TEST_POSTGRES_URL")

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        not POSTGRES_URL, reason="HARNESS_TEST_POSTGRES_URL is not set (.ci/run sets it)"
    ),
]


def test_three_workers_share_one_study_without_loss_or_duplication(tmp_path: Path):
    n_trials = 9
    name = f"pg-{uuid.uuid4().hex[:8]}"
    path = write_study(
        tmp_path,
        name=name,
        n_trials=n_trials,
        enqueue=[],
        sampler={"type": "tpe", "constant_liar": True, "n_startup_trials": 3},
    )
    runs = tmp_path / "runs"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable,
        "-m",
        "harness.cli",
        "worker",
        str(path),
        "--storage",
        POSTGRES_URL,
        "--runs-dir",
        str(runs),
        "--no-progress",
    ]
    workers = [
        subprocess.Popen(
            command,
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outputs = [w.communicate(timeout=600) for w in workers]
    for worker, (_, err) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, err

    records = read_records(runs / name / "trials.jsonl")
    numbers = [r["trial"] for r in records]
    assert len(numbers) == len(set(numbers)) == n_trials, numbers
    study = load_or_create_study(load_config(path), POSTGRES_URL)
    counted = [t for t in study.trials if t.state.is_finished() and not t.user_attrs.get("surplus")]
    assert sorted(t.number for t in counted) == sorted(numbers)
    assert {t.state.name for t in counted} <= {"COMPLETE", "PRUNED"}
