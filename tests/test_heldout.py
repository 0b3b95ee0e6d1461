"""Held-out evaluation: the best trial's settings on seeds the search never used."""

from __future__ import annotations

import pytest

from harness.configs.study import load_config
from harness.evaluation.run_one import run_algorithm
from harness.records.store import read_records
from harness.study.heldout import HELDOUT_OFFSET, heldout_seeds, selected_trial
from harness.tasks import load
from tests.test_study import harness, run_args, write_study


def heldout_study(tmp_path, seeds: int = 2, **changes):
    settings = {
        "name": "held",
        "n_trials": 3,
        "heldout": {"seeds": seeds},
        "task_options": {"device": "cpu", "n_examples": 16},
        **changes,
    }
    return write_study(tmp_path, **settings)


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("heldout")
    path = heldout_study(tmp_path)
    result = harness(*run_args(path, tmp_path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    runs = tmp_path / "runs" / "held"
    return {
        "tmp": tmp_path,
        "path": path,
        "stdout": result.stdout,
        "trials": read_records(runs / "trials.jsonl"),
        "heldout": read_records(runs / "heldout.jsonl"),
        "summary": (tmp_path / "reports" / "held" / "summary.md").read_text(),
    }


def test_the_best_trial_runs_again_on_unused_seeds(ran):
    config = load_config(ran["path"])
    best = selected_trial(config, ran["trials"])
    assert best["objective"] == max(r["objective"] for r in ran["trials"])
    lines = ran["heldout"]
    assert (
        [r["seed"] for r in lines] == heldout_seeds(config) == [HELDOUT_OFFSET, HELDOUT_OFFSET + 1]
    )
    assert not {r["seed"] for r in lines} & {r["seed"] for r in ran["trials"]}
    for line in lines:
        assert line["state"] == "COMPLETE" and line["split"] == "test"
        assert line["trial"] == best["trial"] and line["params"] == best["params"]
        assert line["selection_value"] == best["objective"]
        assert set(line["auc"]) == {"resample", "acdc-zero"}
        assert line["objective"] == line["auc"]["resample"]["score-trapezoid"]
        assert line["faithfulness"]["split"] == "test"  # the search measured on validation
    assert {r["faithfulness"]["split"] for r in ran["trials"]} == {"validation"}


def test_a_heldout_line_equals_a_fresh_run_of_its_seed(ran):
    """Recomputed independently of the study: the same parameters and seed, run directly."""
    config = load_config(ran["path"])
    task = load(config.task, **config.task_options)
    line = ran["heldout"][1]
    run = run_algorithm(task, config.algorithm, line["params"], line["seed"])
    for gt, roc in run.rocs.items():
        assert line["auc"][gt]["score-trapezoid"] == pytest.approx(roc.auc, abs=1e-12)


def test_terminal_and_summary_show_heldout_beside_selection(ran):
    values = [r["objective"] for r in ran["heldout"]]
    mean = sum(values) / len(values)
    assert f"held-out objective (2 seeds, test split): {mean:.3f} [" in ran["stdout"]
    best = max(r["objective"] for r in ran["trials"])
    assert f"selection value {best:.3f}" in ran["stdout"]
    summary = ran["summary"]
    assert "## Held-out evaluation" in summary
    assert f"| objective | {best:.4f} | {mean:.3f} [" in summary


def test_a_resumed_study_adds_no_heldout_runs_and_no_heldout_skips_them(ran, tmp_path):
    again = harness(*run_args(ran["path"], ran["tmp"]), cwd=ran["tmp"])
    assert again.returncode == 0, again.stderr
    status = harness(
        "status", str(ran["path"]), "--runs-dir", str(ran["tmp"] / "runs"), cwd=ran["tmp"]
    )
    assert status.returncode == 0, status.stderr
    assert "held-out objective (2 seeds, test split)" in status.stdout
    assert len(read_records(ran["tmp"] / "runs" / "held" / "heldout.jsonl")) == 2
    path = heldout_study(tmp_path, name="quiet")
    off = harness(*run_args(path, tmp_path), "--no-heldout", cwd=tmp_path)
    assert off.returncode == 0, off.stderr
    assert "held-out" not in off.stdout
    assert not (tmp_path / "runs" / "quiet" / "heldout.jsonl").exists()


def test_heldout_settings_do_not_change_the_config_hash(tmp_path):
    one = load_config(heldout_study(tmp_path, seeds=5))
    other = load_config(heldout_study(tmp_path, seeds=0))
    assert one.config_hash() == other.config_hash()
    with pytest.raises(ValueError, match="heldout.seeds"):
        load_config(heldout_study(tmp_path, seeds=-1))
