"""Suite-level report tables and figures, from comparison records over several tasks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness.reporting.figures import MethodRuns
from harness.reporting.report import build_report, load_source, method_runs
from harness.reporting.suite import (
    HEADROOM_AUC,
    matched_ground_truth,
    separating_tasks,
    suite_frame,
    suite_interval,
    task_frame,
)

TASKS = ["tracr-a", "tracr-b", "tracr-c", "tracr-d", "tracr-e"]
METHODS = {"sp": 0.9, "acdc": 0.7, "random": 0.5}


def auc_of(method: str, task: str, ablation: str, seed: int) -> float:
    """A distinct, known AUC per run (what the tables must reproduce)."""
    base = METHODS[method] - 0.05 * TASKS.index(task) + (0.02 if ablation == "zero" else 0.0)
    return round(base + 0.01 * seed, 6)


def suite_records() -> list[dict]:
    records = []
    for task in TASKS:
        zero_name = "acdc-zero" if task == "tracr-a" else "zero"  # an official alias
        for ablation in ("resample", "zero"):
            for method in METHODS:
                for seed in (0, 1, 2):
                    value = auc_of(method, task, ablation, seed)
                    other = 0.123  # the AUC against the ground truth of the other ablation
                    auc = {
                        "resample": {"score-trapezoid": value if ablation == "resample" else other},
                        zero_name: {"score-trapezoid": value if ablation == "zero" else other},
                    }
                    records.append(
                        {
                            "study": "cmp",
                            "trial": len(records),
                            "state": "COMPLETE",
                            "algorithm": method,
                            "task": task,
                            "ground_truth": None,
                            "params": {"ablation": ablation},
                            "seed": seed,
                            "auc": auc,
                            "seconds": 1.0,
                        }
                    )
    return records


@pytest.fixture
def runs(tmp_path) -> list[MethodRuns]:
    path = tmp_path / "runs" / "cmp" / "trials.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in suite_records()))
    return method_runs([load_source("cmp", tmp_path / "runs")])


def test_each_ablation_reads_its_own_ground_truth():
    assert matched_ground_truth({"auc": {"zero": {}, "resample": {}}}, "zero") == "zero"
    assert matched_ground_truth({"auc": {"acdc-zero": {}}}, "zero") == "acdc-zero"
    assert matched_ground_truth({"auc": {"resample": {}}}, "resample") == "resample"
    assert matched_ground_truth({"auc": {"resample": {}}}, "mean") is None


def test_suite_mean_is_the_mean_of_task_means():
    by_task = [[1.0, 1.0, 1.0, 1.0], [0.0]]  # pooled seeds would give 0.8
    mean, low, high = suite_interval(by_task, samples=4000)
    assert mean == 0.5
    assert low == 0.0 and high == 1.0  # with two tasks a resample can draw one twice
    spread = [[0.4, 0.6], [0.5, 0.7], [0.45, 0.65]]
    mean, low, high = suite_interval(spread, samples=4000)
    assert mean == pytest.approx(np.mean([0.5, 0.6, 0.55]))
    assert low < mean < high and low >= 0.4 and high <= 0.7


def test_suite_interval_covers_seed_noise_too():
    """One task per row: the interval is the seed bootstrap; a single seed everywhere: the
    task bootstrap; both noises together give a wider interval than tasks alone."""
    tasks_only = [[0.2], [0.4], [0.6], [0.8]]
    both = [[0.1, 0.3], [0.3, 0.5], [0.5, 0.7], [0.7, 0.9]]
    _, low_t, high_t = suite_interval(tasks_only, samples=8000)
    _, low_b, high_b = suite_interval(both, samples=8000)
    assert high_b - low_b > high_t - low_t


def test_tables_equal_the_records(runs):
    summary = suite_frame(runs, samples=500)
    score = summary[summary["convention"] == "score-trapezoid"].set_index(["method", "ablation"])
    for method in METHODS:
        for ablation in ("resample", "zero"):
            expected = np.mean(
                [np.mean([auc_of(method, t, ablation, s) for s in (0, 1, 2)]) for t in TASKS]
            )
            row = score.loc[(method, ablation)]
            assert row["mean"] == pytest.approx(expected, abs=1e-9)
            assert row["tasks"] == len(TASKS) and row["seeds"] == 3 * len(TASKS)
            below = [
                t
                for t in TASKS
                if np.mean([auc_of(method, t, ablation, s) for s in (0, 1, 2)]) < HEADROOM_AUC
            ]
            assert row[f"tasks below {HEADROOM_AUC}"] == len(below)
    assert set(summary["convention"]) == {"score-trapezoid"}  # no sweep values recorded
    tasks = task_frame(runs, samples=500)
    row = tasks[(tasks["task"] == "tracr-a") & (tasks["method"] == "acdc")]
    zero = row[row["ablation"] == "zero"].iloc[0]
    assert zero["mean"] == pytest.approx(auc_of("acdc", "tracr-a", "zero", 1))  # via acdc-zero
    assert 0.123 not in set(tasks["mean"].round(6))  # never the other ablation's ground truth


def test_separating_tasks_rank_the_gap_between_non_random_methods(runs):
    tasks = task_frame(runs, samples=500)
    separating = separating_tasks(tasks, gap=0.15)
    assert len(separating) == 2 * len(TASKS)  # sp − acdc = 0.2 on every task and ablation
    assert (separating["gap"].round(6) == 0.2).all()
    assert separating["best"].str.startswith("sp ").all()
    assert separating["worst"].str.startswith("acdc ").all()  # random left out
    assert separating_tasks(tasks, gap=0.25).empty


def test_a_suite_report_has_suite_tables_and_figures_not_per_task_rocs(runs, tmp_path):
    source = load_source("cmp", tmp_path / "runs")
    out = tmp_path / "out"
    result = build_report([source], out, static=False)
    names = set(result.files)
    for stem in (
        "suite-summary",
        "suite-resample-score-trapezoid",
        "suite-zero-score-trapezoid",
        "suite-separating",
    ):
        assert {f"tables/{stem}.md", f"tables/{stem}.tex", f"tables/{stem}.csv"} <= names
    assert {"figures/suite-auc.html", "figures/suite-auc.caption.md"} <= names
    assert not any(name.startswith("figures/roc") for name in names)  # 5 tasks: too many
    per_task = pd.read_csv(out / "tables" / "suite-resample-score-trapezoid.csv")
    assert set(per_task["task"]) == set(TASKS)
    markdown = (out / "tables" / "suite-resample-score-trapezoid.md").read_text()
    assert "| suite mean |" in markdown
    figure = json.loads(Path(out / "figures" / "suite-auc.json").read_text())
    assert {trace["name"] for trace in figure["data"]} == set(METHODS)
    listed = [trace["name"] for trace in figure["data"] if trace.get("showlegend")]
    assert sorted(listed) == sorted(METHODS)  # one legend entry per method
