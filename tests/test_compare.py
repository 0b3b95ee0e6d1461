"""Comparisons: resumable runs, both AUC conventions, bootstrap intervals, bad input."""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest
import yaml

from harness.benchmark.compare import (
    comparison_table,
    preflight_compare,
    run_compare,
)
from harness.configs.compare import load_compare_config
from harness.evaluation.stats import bootstrap_interval
from tests.test_study import harness

TINY = {
    "version": 1,
    "kind": "compare",
    "name": "tiny-compare",
    "tasks": ["tracr-reverse"],
    "task_options": {"device": "cpu"},
    "ablations": ["resample", "zero"],
    "seeds": [0, 1],
    "methods": {
        "sp": {
            "params": {"tree_optimisation": True, "epochs": 5},
            "sweep": {"regularize_lambda": [0.01, 100.0]},
        },
        "random": {},
    },
    "bootstrap_samples": 500,
}


def write(tmp_path: Path, **changes) -> Path:
    data = {**TINY, **changes}
    path = tmp_path / "compare.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_compare_runs_resumes_and_tabulates(tmp_path):
    config = load_compare_config(write(tmp_path))
    records = run_compare(config, tmp_path / "runs", progress=False)
    assert len(records) == 2 * 2 * 2  # methods × ablations × seeds
    sp = [r for r in records if r["algorithm"] == "sp"]
    assert all("sweep-pessimistic" in r["auc"]["resample"] for r in sp)
    assert all(len(r["sweep"]) == 2 and r["faithfulness_curve"][-1]["n_edges"] == 77 for r in sp)
    assert all(
        "sweep-pessimistic" not in r["auc"]["resample"]
        for r in records
        if r["algorithm"] == "random"
    )

    again = run_compare(config, tmp_path / "runs", progress=False)
    assert again == records  # nothing repeated

    table = comparison_table(records, 500)
    row = table[
        (table["method"] == "sp (tree)")
        & (table["ground truth"] == "resample")
        & (table["ablation"] == "zero")
    ].iloc[0]
    expected = statistics.mean(
        r["auc"]["resample"]["score-trapezoid"] for r in sp if r["params"]["ablation"] == "zero"
    )
    assert row["AUC score-trapezoid"] == pytest.approx(expected)
    low, high = row["CI score-trapezoid"]
    assert low <= expected <= high
    zero_sp = [r for r in sp if r["params"]["ablation"] == "zero"]
    assert all(r["mib"]["ablation"] == r["params"]["ablation"] for r in records)
    assert all(r["mib"]["cpr_ranking"] == "signed" for r in records)
    assert row["CPR"] == pytest.approx(statistics.mean(r["mib"]["cpr"] for r in zero_sp))
    assert row["CMD"] == pytest.approx(statistics.mean(r["mib"]["cmd"] for r in zero_sp))


def test_compare_command_writes_the_table(tmp_path):
    path = write(tmp_path, seeds=[0], ablations=["resample"])
    result = harness(
        "compare",
        str(path),
        "--runs-dir",
        str(tmp_path / "runs"),
        "--report-dir",
        str(tmp_path / "reports"),
        "--no-progress",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    text = (tmp_path / "reports" / "tiny-compare" / "comparison.md").read_text()
    assert "score-trapezoid" in text and "sweep-pessimistic" in text and "| sp (tree) |" in text


def test_an_entry_may_run_a_method_under_a_label_of_its_own(tmp_path):
    """``sp-tuned: {algorithm: sp, params: ...}`` beside ``sp``: both run SP, each under its
    own name in the records and the table; the same settings give the same numbers."""
    methods = {
        "sp": {"params": {"tree_optimisation": True, "epochs": 3}},
        "sp-tuned": {"algorithm": "sp", "params": {"tree_optimisation": True, "epochs": 3}},
        "sp-other": {"algorithm": "sp", "params": {"tree_optimisation": True, "epochs": 4}},
    }
    config = load_compare_config(write(tmp_path, methods=methods, ablations=["resample"]))
    records = run_compare(config, tmp_path / "runs", progress=False)
    assert {r["algorithm"] for r in records} == {"sp"}
    assert sorted({r["method"] or r["algorithm"] for r in records}) == [
        "sp", "sp-other", "sp-tuned"
    ]  # fmt: skip
    table = comparison_table(records, 500)
    rows = table[(table["ground truth"] == "resample")].set_index("method")
    assert sorted(rows.index) == ["sp (tree)", "sp-other (tree)", "sp-tuned (tree)"]
    assert (
        rows.loc["sp (tree)", "AUC score-trapezoid"]
        == rows.loc["sp-tuned (tree)", "AUC score-trapezoid"]
    )  # same settings, same seeds: the same runs
    assert run_compare(config, tmp_path / "runs", progress=False) == records  # resumes


def test_bootstrap_interval_contains_the_mean_and_shrinks_with_agreement():
    low, high = bootstrap_interval([0.2, 0.4, 0.6, 0.8], 2000)
    assert low < 0.5 < high
    assert bootstrap_interval([0.5, 0.5, 0.5], 2000) == (0.5, 0.5)


@pytest.mark.parametrize(
    ("methods", "message"),
    [
        (
            {"sp": {"sweep": {"regularize_lambda": []}}},
            "the sweep over 'regularize_lambda' is empty",
        ),
        ({"sp": {"params": {"lr": 1}}}, "takes no parameter 'lr'"),
        (
            {"sp": {"params": {"faithfulness_target": "kl_div"}}},
            "faithfulness_target 'kl_div' is not supported by task 'tracr-proportion'",
        ),
        ({"sp-tuned": {"algorithm": "sq"}}, "unknown algorithm 'sq'"),
        ({"sp-tuned": {"algorithm": "sp", "params": {"lr": 1}}}, "takes no parameter 'lr'"),
    ],
)
def test_bad_comparisons(tmp_path, methods, message):
    path = write(tmp_path, tasks=["tracr-proportion"], methods=methods)
    result = harness("compare", str(path), "--runs-dir", str(tmp_path / "runs"), cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], lines
    assert not (tmp_path / "runs").exists()


def test_preflight_rejects_bad_thresholds(tmp_path):
    for thresholds, message in (([], "threshold sweep is empty"), ([0.1, -1], "must be positive")):
        config = load_compare_config(
            write(tmp_path, methods={"acdc": {"params": {"thresholds": thresholds}}})
        )
        with pytest.raises(ValueError, match=message):
            preflight_compare(config)


def test_a_named_suite_expands_to_its_tasks(tmp_path):
    from harness.tasks import suite_tasks, task_specs

    suite = suite_tasks("tracr-suite")
    assert suite == [slug for slug in task_specs() if slug.startswith("tracr-")]
    assert {"tracr-reverse", "tracr-proportion"} <= set(suite)
    config = load_compare_config(write(tmp_path, tasks="tracr-suite"))  # one name, no list
    assert config.tasks == suite
    mixed = load_compare_config(write(tmp_path, tasks=["tracr-proportion", "tracr-suite"]))
    assert mixed.tasks[0] == "tracr-proportion" and sorted(mixed.tasks) == sorted(suite)


def test_an_unknown_task_in_a_list_is_one_line(tmp_path):
    path = write(tmp_path, tasks=["tracr-reverse", "tracr-suit"])
    result = harness("compare", str(path), "--runs-dir", str(tmp_path / "runs"), cwd=tmp_path)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert "unknown task 'tracr-suit'" in line and "did you mean 'tracr-suite'" in line, line


def _study_records(runs: Path, objectives, direction=None):
    from harness.records.schema import TrialRecord
    from harness.records.store import append_record

    for i, value in enumerate(objectives):
        record = TrialRecord(
            "tuned", i, "COMPLETE", "sp", "tracr-reverse", "resample", {"epochs": i + 1}, 0,
            objective=value, direction=direction,
        )  # fmt: skip
        append_record(runs / "tuned" / "trials.jsonl", record)


def test_from_study_takes_the_best_trial_the_right_way_round(tmp_path):
    """A study that minimises (CMD, faithfulness, min_size) gives its smallest objective's
    parameters: from the records' direction, else from its SQLite storage; without either
    the largest, with a warning. (Before: always the largest, i.e. a minimising study's
    worst trial.)"""
    import optuna

    from harness.benchmark.compare import best_params

    _study_records(tmp_path / "a", [0.4, 0.1, 0.7], "minimize")
    assert best_params("tuned", tmp_path / "a") == {"epochs": 2}
    _study_records(tmp_path / "b", [0.4, 0.1, 0.7], "maximize")
    assert best_params("tuned", tmp_path / "b") == {"epochs": 3}
    _study_records(tmp_path / "c", [0.4, 0.1, 0.7])  # records older than the field
    database = tmp_path / "c" / "tuned" / "study.db"
    optuna.create_study(study_name="tuned", storage=f"sqlite:///{database}", direction="minimize")
    assert best_params("tuned", tmp_path / "c") == {"epochs": 2}
    _study_records(tmp_path / "d", [0.4, 0.1, 0.7])
    with pytest.warns(UserWarning, match="largest objective"):
        assert best_params("tuned", tmp_path / "d") == {"epochs": 3}
    with pytest.raises(ValueError, match="no complete trials"):
        best_params("missing", tmp_path / "d")
