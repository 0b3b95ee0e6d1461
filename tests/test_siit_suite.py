"""The shipped trained (SIIT) models: each answers as its file says when loaded, the
suite holds exactly the ones that meet the targets, and a small model trains to them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.tasks import load, suite_tasks
from harness.tasks.siit.build import trained_model
from harness.tasks.siit.data import siit_data
from harness.tasks.siit.ground_truth import ablation_accuracy
from harness.tasks.siit.metrics import siit_metrics
from harness.tasks.siit.targets import missed_targets
from harness.tasks.siit.weight_files import read_siit, shipped_programs, siit_path
from harness.tasks.tracr.compile import load_compiled
from harness.tasks.tracr.programs import SUITE

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}


@pytest.mark.parametrize("program", shipped_programs())
def test_a_shipped_model_answers_as_its_file_says(program):
    """Its metrics and its ground truths' ablation accuracies, measured again on the
    loaded weights, equal the file's to the last digit."""
    stored = read_siit(siit_path(program))
    settings = stored["settings"]
    data = siit_data(load_compiled(program), settings["seed"], settings["train_fraction"])
    model = trained_model(stored["config"], stored["state_dict"])
    metrics = siit_metrics(model, data, stored["alignment"])
    assert metrics == stored["metrics"]
    for name, edges in stored["ground_truths"].items():
        assert round(ablation_accuracy(model, data, edges), 6) == stored["ablation_accuracy"][name]
    task = load(f"siit-{program}", device="cpu")
    assert task.circuits["siit"] == frozenset(stored["ground_truths"]["siit"])


def test_the_trained_suite_is_the_shipped_models_that_meet_the_targets():
    members = suite_tasks("siit-suite")
    assert members, "no trained model ships"
    expected = [
        f"siit-{p}"
        for p in SUITE
        if p in shipped_programs() and not missed_targets(read_siit(siit_path(p)))
    ]
    assert members == expected
    for slug in members:
        assert missed_targets(read_siit(siit_path(slug.removeprefix("siit-")))) == []


def test_a_small_model_trains_to_the_targets_and_loads_as_a_task(tmp_path):
    """What CI trains: count-a, 250 steps (about 20 s on one core)."""
    done = subprocess.run(
        [sys.executable, "-m", "harness.cli", "--threads", "1", "tasks", "train", "count-a",
         "--steps", "250", "--dir", str(tmp_path), "--no-progress"],
        env=ENV, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    stored = read_siit(siit_path("count-a", tmp_path))
    assert missed_targets(stored) == [], stored["metrics"]
    assert stored["ablation_accuracy"]["siit"] >= 0.95
    task = load("siit-count-a", device="cpu", weights_dir=tmp_path)
    assert task.info["metrics"]["joint"] == stored["metrics"]["joint"]


@pytest.mark.skipif("count-a" not in shipped_programs(), reason="siit-count-a not shipped")
def test_retraining_a_shipped_model_gives_its_weights_bit_for_bit():
    done = subprocess.run(
        [sys.executable, "-m", "harness.cli", "--threads", "1", "tasks", "train", "count-a",
         "--check", "--no-progress"],
        env=ENV, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "siit-count-a: reproduced by a retraining (parameters " in done.stdout


def test_a_transfer_scores_trained_models_against_the_circuit_their_training_enforces(tmp_path):
    from harness.benchmark.transfer import search_config
    from harness.configs.transfer import TransferConfig

    config = TransferConfig(
        kind="transfer", name="x", train_tasks=["tracr-hist"], test_tasks=["siit-hist"],
        search_space={"epochs": {"type": "int", "low": 2, "high": 3}},
    )  # fmt: skip
    assert search_config(config, "s", ["tracr-hist", "tracr-count-a"]).ground_truth == "resample"
    assert search_config(config, "s", ["siit-hist"]).ground_truth == "siit"
    with pytest.raises(ValueError, match="one ground truth made for resample ablation"):
        search_config(config, "s", ["tracr-hist", "siit-hist"])
    # a real transfer from a compiled task to a trained one: its records carry `siit` AUCs
    path = tmp_path / "x.yaml"
    path.write_text(
        "version: 1\nkind: transfer\nname: x\ntrain_tasks: [tracr-hist]\n"
        "test_tasks: [siit-hist]\ntask_options: {device: cpu, n_examples: 16}\n"
        "params: {tree_optimisation: true}\n"
        "search_space: {epochs: {type: int, low: 2, high: 3}}\n"
        "n_trials: 2\nsampler: {type: random}\nseeds: [0]\nbaselines: {random: {}}\n"
        "bootstrap_samples: 200\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "harness.cli", "--threads", "1", "transfer", str(path),
         "--runs-dir", str(tmp_path / "runs")],
        env=ENV, capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    from harness.records.store import read_records

    records = read_records(tmp_path / "runs" / "x" / "transfer.jsonl")
    assert {r["method"] for r in records} == {"sp-default", "sp-transfer", "random"}
    for record in records:
        assert record["state"] == "COMPLETE" and record["task"] == "siit-hist"
        assert set(record["auc"]) == {"siit", "tracr-resample"}


@pytest.mark.skipif("count-a" not in shipped_programs(), reason="siit-count-a not shipped")
def test_check_accepts_float_rounding_and_refuses_a_real_difference(tmp_path):
    """A file whose parameters are off by 1e-6 (another CPU's rounding) is reproduced,
    and said not to be bitwise; off by 1e-2, it differs: exit 1, one line."""
    from harness.tasks.tracr.weight_files import read_payload, write_payload

    stored = read_payload(siit_path("count-a"))  # the file's plain data, as written
    for shift, code in ((1e-6, 0), (1e-2, 1)):
        payload = {**stored, "state_dict": dict(stored["state_dict"])}
        payload["state_dict"]["unembed.b_U"] = stored["state_dict"]["unembed.b_U"] + shift
        write_payload(payload, siit_path("count-a", tmp_path))
        done = subprocess.run(
            [sys.executable, "-m", "harness.cli", "--threads", "1", "tasks", "train",
             "count-a", "--check", "--dir", str(tmp_path), "--no-progress"],
            env=ENV, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert done.returncode == code, done.stderr
        if code == 0:
            assert "(not bitwise), metrics and ground truths equal" in done.stdout
        else:
            lines = done.stderr.strip().splitlines()
            assert len(lines) == 1 and "unembed.b_U differs by up to 0.01" in lines[0], lines
