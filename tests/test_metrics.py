import random

import pytest
import torch

from harness.engine.prune_scores import PruneScores
from harness.evaluation.faithfulness_curve import circuit_faithfulness, faithfulness_curve
from harness.evaluation.roc import SCORE_TRAPEZOID, SWEEP_PESSIMISTIC, score_roc, sweep_roc


def brute_force_auc(scores, positives):
    """AUC as the probability a random positive outscores a random negative (ties ½)."""
    pos = [abs(v) for e, v in scores.items() if e in positives]
    neg = [abs(v) for e, v in scores.items() if e not in positives]
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


@pytest.mark.parametrize("seed", range(5))
def test_trapezoid_auc_equals_the_mann_whitney_statistic(seed):
    rng = random.Random(seed)
    edges = [f"e{i}" for i in range(40)]
    scores = {e: rng.choice([-1, 1]) * rng.randint(0, 6) for e in edges}  # many ties
    positives = set(rng.sample(edges, 7))
    curve = score_roc(scores, positives)
    assert curve.convention == SCORE_TRAPEZOID
    assert curve.auc == pytest.approx(brute_force_auc(scores, positives), abs=1e-12)
    assert curve.fpr[0] == curve.tpr[0] == 0 and curve.fpr[-1] == curve.tpr[-1] == 1


def test_ties_enter_together():
    curve = score_roc({"a": 1.0, "b": 1.0, "c": 0.0}, {"a"})
    assert curve.fpr == (0.0, 0.5, 1.0) and curve.tpr == (0.0, 1.0, 1.0)
    assert curve.n_selected == (0, 2, 3)


def test_perfect_and_inverted_rankings():
    scores = PruneScores(("a", "b", "c"), torch.tensor([3.0, 2.0, 1.0]))
    assert score_roc(scores, {"a"}).auc == 1.0
    assert score_roc(scores, {"c"}).auc == 0.0


def test_sweep_staircase_by_hand():
    edges = [f"e{i}" for i in range(10)]
    positives = {"e0", "e1"}
    circuits = [{"e0"}, {"e0", "e1", "e2", "e3"}, {"e0", "e2", "e3", "e4"}]  # last dominated
    curve = sweep_roc(circuits, positives, edges)
    assert curve.convention == SWEEP_PESSIMISTIC
    assert curve.fpr == (0.0, 0.0, 0.25, 1.0) and curve.tpr == (0.0, 0.5, 1.0, 1.0)
    # (1 − 0)(0.5 − 0) + (1 − 0.25)(1 − 0.5) + (1 − 1)(0)
    assert curve.auc == pytest.approx(0.875)


def test_the_two_conventions_differ_on_one_point():
    """One circuit of half the positives and half the negatives: 0.25 vs 0.5."""
    edges = ["a", "b", "c", "d"]
    assert sweep_roc([{"a", "b"}], {"a", "c"}, edges).auc == 0.25
    assert score_roc({"a": 1, "b": 1, "c": 0, "d": 0}, {"a", "c"}).auc == 0.5


def test_bad_inputs():
    with pytest.raises(ValueError, match="empty sweep"):
        sweep_roc([], {"a"}, ["a", "b"])
    with pytest.raises(ValueError, match="official edge 'z'"):
        score_roc({"a": 1.0, "b": 0.0}, {"z"})
    with pytest.raises(ValueError, match="both official and non-official"):
        score_roc({"a": 1.0}, {"a"})


def test_planted_circuit_faithfulness(planted):
    full = circuit_faithfulness(planted.patchable, planted.batches, planted.edges)
    assert full["kl_div"] == 0 and full["correct_percent"] == 100
    assert full["logit_diff_percent"] == pytest.approx(100)
    missing_one = circuit_faithfulness(planted.patchable, planted.batches, planted.edges[1:])
    assert missing_one["kl_div"] > 0.01
    assert abs(missing_one["logit_diff_percent"] - 100) > 5


def test_faithfulness_curve_improves_with_more_planted_edges(planted):
    n = planted.patchable.n_edges
    values = torch.zeros(n, dtype=torch.float64)
    names = planted.patchable.graph.edge_names
    for e in planted.edges:
        values[names.index(e)] = 1.0
    scores = PruneScores(names, values)
    curve = faithfulness_curve(planted.patchable, planted.batches, scores, [0, 8, n])
    assert [row["n_edges"] for row in curve] == [0, 8, n]
    assert curve[0]["kl_div"] > 0.1 and curve[1]["kl_div"] == 0 and curve[2]["kl_div"] == 0


def test_all_scores_tied_give_one_half():
    scores = {f"e{i}": 0.3 for i in range(10)}
    curve = score_roc(scores, {"e1", "e4", "e7"})
    assert curve.auc == 0.5 and curve.fpr == (0.0, 1.0) and curve.tpr == (0.0, 1.0)


def test_ties_straddling_the_official_set():
    # e0 alone on top (official); e1..e4 tied (two official, two not); e5 last (not)
    scores = {"e0": 5, "e1": 2, "e2": 2, "e3": 2, "e4": 2, "e5": 1}
    curve = score_roc(scores, {"e0", "e1", "e2"})
    assert curve.tpr == (0.0, 1 / 3, 1.0, 1.0)
    assert curve.fpr == (0.0, 0.0, 2 / 3, 1.0)
    assert curve.auc == pytest.approx(brute_force_auc(scores, {"e0", "e1", "e2"}))


def test_empty_official_set_is_an_error():
    with pytest.raises(ValueError, match="0 of 2 edges are official"):
        score_roc({"a": 1.0, "b": 0.0}, set())


@pytest.mark.parametrize("ablation", ["resample", "zero", "mean"])
def test_a_faithfulness_curve_several_circuits_to_a_pass_equals_one_per_pass(monkeypatch, ablation):
    """Every point of the curve from tiled copies of the batch (one circuit each) equals
    the point from its own forward pass (float64, tracr-reverse, EAP's ranking)."""
    import harness.engine.patching
    from harness.algorithms import eap_prune_scores
    from harness.tasks import load

    task = load("tracr-reverse", device="cpu")
    task.patchable.model.to(torch.float64)
    scores = eap_prune_scores(task.patchable, task.train)
    counts = [0, 1, 2, 3, 5, 10, 40, task.patchable.n_edges]
    assert task.patchable.circuits_per_pass(task.test[0].clean, len(counts)) == len(counts)
    together = faithfulness_curve(task.patchable, task.test, scores, counts, ablation)
    monkeypatch.setattr(harness.engine.patching, "PASS_BYTES", 1)  # one circuit per pass
    alone = faithfulness_curve(task.patchable, task.test, scores, counts, ablation)
    for a, b in zip(together, alone, strict=True):
        assert a == pytest.approx(b, abs=1e-12, rel=0)
    assert len({round(row["kl_div"], 9) for row in together}) >= 2  # circuits that differ


def test_circuit_logits_leave_the_callers_grad_mode_alone(planted):
    """The forward passes run without grad; between the yielded circuits the caller's own
    grad mode holds."""
    patchable, batch = planted.patchable, planted.batches[0]
    patch = patchable.source_activations(batch.corrupt)
    weights = torch.eye(patchable.n_edges, dtype=patchable.dtype)[:3]  # [3, n_edges]
    for logits in patchable.circuit_logits(batch.clean, patch, weights):
        assert torch.is_grad_enabled() and not logits.requires_grad
