"""MIB's CPR and CMD against values computed by hand on the planted-circuit model."""

from __future__ import annotations

import pytest
import torch

from harness.engine.prune_scores import PruneScores
from harness.evaluation.mib import MIB_FRACTIONS, mib_metrics, mib_sizes, trapezoid_area
from harness.testing.planted import planted_circuit


@pytest.fixture(scope="module")
def planted():
    return planted_circuit(dtype=torch.float64)


def _scores(planted, values: dict[str, float]) -> PruneScores:
    names = planted.patchable.graph.edge_names
    return PruneScores(names, torch.tensor([values.get(n, 0.0) for n in names]))


def test_sizes_are_mibs_truncated_fractions(planted):
    # 262 edges: int(p * 262) for p in MIB's fractions
    assert mib_sizes(planted.patchable.n_edges) == [0, 0, 1, 2, 5, 13, 26, 52, 131, 262]
    assert mib_sizes(32491) == [32, 64, 162, 324, 649, 1624, 3249, 6498, 16245, 32491]


def test_cpr_and_cmd_equal_hand_values(planted):
    """The planted model's output depends on the 8 planted edges only, so a circuit that
    holds all of them has f = 1 exactly and one that holds none has f = 0 exactly. The
    scores below make every MIB size hold all or none of them, in a different order for
    the signed ranking (CPR) and the absolute one (CMD)."""
    names = planted.patchable.graph.edge_names
    junk = [n for n in names if n not in planted.edges]
    values = {e: 10.0 for e in planted.edges}
    values.update({e: 50.0 for e in junk[:5]})  # signed: first 5, then the planted 8
    values.update({e: -100.0 for e in junk[5:18]})  # absolute: these 13 first
    result = mib_metrics(planted.patchable, planted.batches, _scores(planted, values))

    # signed order: 5 junk (50), 8 planted (10), 236 zeros, 13 junk (-100)
    # sizes 0, 0, 1, 2, 5 hold no planted edge; 13 and more hold all 8
    assert result.cpr_curve.faithfulness == (0.0,) * 5 + (1.0,) * 5
    # area: 0.02 -> 0.05 rises from 0 to 1 (0.03 / 2), then 1 from 0.05 to 1
    assert result.cpr == pytest.approx(0.03 / 2 + 0.95, abs=1e-12)
    # absolute order: 13 junk (100), 5 junk (50), 8 planted (10): size 13 none, 26 all
    assert result.cmd_curve.faithfulness == (0.0,) * 6 + (1.0,) * 4
    # area of |1 - f|: 1 from 0.001 to 0.05, then 1 -> 0 over 0.05 -> 0.1
    assert result.cmd == pytest.approx(0.049 + 0.05 / 2, abs=1e-12)
    assert result.measure == "logit_diff"
    assert result.full > result.empty


def test_random_scores_give_about_the_area_of_the_last_point(planted):
    """With a random ranking a circuit rarely holds all 8 planted edges before 100 %, so f
    stays near 0 until the last point and CPR near the area the 100 % point alone gives
    (the trapezoid from 0.5 to 1 rising from 0 to 1: 0.25)."""
    last_point = trapezoid_area([0.0] * 9 + [1.0])
    assert last_point == pytest.approx(0.25)
    names = planted.patchable.graph.edge_names
    cprs = []
    for seed in range(4):
        g = torch.Generator().manual_seed(seed)
        scores = PruneScores(names, torch.rand(len(names), generator=g, dtype=torch.float64))
        cprs.append(mib_metrics(planted.patchable, planted.batches, scores).cpr)
    assert abs(sum(cprs) / len(cprs) - last_point) < 0.05, cprs


def test_perfect_ranking_recovers_everything_and_fractions_are_mibs(planted):
    scores = _scores(planted, {e: 1.0 for e in planted.edges})
    result = mib_metrics(planted.patchable, planted.batches, scores, ablation="zero")
    assert MIB_FRACTIONS[0] == 0.001 and MIB_FRACTIONS[-1] == 1.0
    assert result.cpr_curve.faithfulness[-5:] == (1.0,) * 5
    assert result.ablation == "zero"
    assert result.as_record()["cmd_ranking"] == "absolute"


@pytest.mark.parametrize(("metric", "direction"), [("cpr", "MAXIMIZE"), ("cmd", "MINIMIZE")])
def test_cpr_and_cmd_are_study_objectives_and_records_carry_them(tmp_path, metric, direction):
    from harness.configs.study import load_config
    from harness.records.store import read_records
    from harness.study.driver import load_or_create_study, run_study
    from tests.test_study import write_study

    config = load_config(
        write_study(
            tmp_path,
            name=f"mib-{metric}",
            n_trials=1,
            ground_truth=None,
            objective={"metric": metric},
            pruner={"type": "none"},
        )
    )
    outcome = run_study(config, runs_dir=tmp_path / "runs", progress=False)
    records = read_records(outcome.records_path)
    assert len(records) == 1 and all(r["state"] == "COMPLETE" for r in records)
    for r in records:
        mib = r["mib"]
        assert mib["cpr_ranking"] == "signed" and mib["cmd_ranking"] == "absolute"
        assert r["objective"] == mib[metric]
        assert len(mib["cpr_faithfulness"]) == 10
        assert r["peak_memory_mb"] > 0 and r["peak_memory_kind"] == "process_max_rss"
    study = load_or_create_study(config, config.storage_url(tmp_path / "runs"))
    assert [d.name for d in study.directions] == [direction]


@pytest.mark.parametrize("ablation", ["resample", "zero"])
def test_circuits_evaluated_several_to_a_pass_equal_one_per_pass(monkeypatch, ablation):
    """Tiled copies of a batch, one circuit each, give the values of one forward pass per
    circuit (float64, tracr-reverse, EAP's ranking; 22 circuits in one pass)."""
    import harness.engine.patching
    from harness.algorithms import eap_prune_scores
    from harness.tasks import load

    task = load("tracr-reverse", device="cpu")
    task.patchable.model.to(torch.float64)
    scores = eap_prune_scores(task.patchable, task.train)
    assert task.patchable.circuits_per_pass(task.test[0].clean, 22) == 22
    together = mib_metrics(task.patchable, task.test, scores, ablation)
    monkeypatch.setattr(harness.engine.patching, "PASS_BYTES", 1)  # one circuit per pass
    assert task.patchable.circuits_per_pass(task.test[0].clean, 22) == 1
    alone = mib_metrics(task.patchable, task.test, scores, ablation)
    for a, b in [
        (together.cpr_curve.faithfulness, alone.cpr_curve.faithfulness),
        (together.cmd_curve.faithfulness, alone.cmd_curve.faithfulness),
        ((together.full, together.empty), (alone.full, alone.empty)),
    ]:
        assert a == pytest.approx(b, abs=1e-12, rel=0)
    curves = together.cpr_curve.faithfulness + together.cmd_curve.faithfulness
    assert len(set(curves)) >= 2  # circuits that differ in value
