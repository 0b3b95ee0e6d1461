"""Edge Pruning: the Lagrangian holds the target sparsity; scores rank the planted edges."""

from __future__ import annotations

import itertools

import pytest
import torch

from harness.algorithms import edge_pruning_prune_scores, get_algorithm
from harness.evaluation.roc import score_roc
from harness.testing.planted import planted_circuit


@pytest.fixture(scope="module")
def planted():
    return planted_circuit(n_batches=1, batch_size=16)


def test_finds_the_planted_circuit_at_the_target_sparsity(planted):
    n = planted.patchable.n_edges
    target = 1 - 12 / n  # keep about 12 of 262 edges
    scores = edge_pruning_prune_scores(
        planted.patchable, planted.batches, target_sparsity=target, epochs=150,
        learning_rate=0.1, progress=False,
    )  # fmt: skip
    history = scores.history
    assert score_roc(scores, planted.edges).auc > 0.95
    assert abs(history["sparsity"][-1] - target) < 0.03, history["sparsity"][-1]
    assert history["target"][-1] == pytest.approx(target)
    assert history["target"][0] == 0.0  # the target ramps up from 0
    assert min(scores.scores) == 0.0  # shifted log-alphas
    assert len(scores.circuit) < 40 and len(set(planted.edges) & scores.circuit) >= 6


def test_multipliers_are_learned_by_ascent(planted):
    """Pushed toward sparsity it has not reached, λ1 turns negative (so that minimising
    λ1 · (s − t) raises s) and λ2 grows (the squared gap only rises under ascent)."""
    scores = edge_pruning_prune_scores(
        planted.patchable, planted.batches, target_sparsity=0.9, epochs=20,
        warmup_fraction=0.0, init_log_alpha=5.0, progress=False,
    )  # fmt: skip
    assert scores.history["lambda1"][-1] < 0
    assert scores.history["lambda2"][-1] > 0
    lambda2 = scores.history["lambda2"]
    assert all(b >= a for a, b in itertools.pairwise(lambda2))


def test_same_seed_same_scores_other_seed_other_noise(planted):
    run = lambda seed: edge_pruning_prune_scores(  # noqa: E731
        planted.patchable, planted.batches, epochs=3, seed=seed, progress=False
    )
    assert torch.equal(run(1).scores, run(1).scores)
    assert not torch.equal(run(1).scores, run(2).scores)


def test_bad_parameters_are_refused_in_one_line():
    spec = get_algorithm("edge-pruning")
    with pytest.raises(ValueError, match="target_sparsity must be a finite number in \\[0, 1\\)"):
        spec.check({"target_sparsity": 1.0})
    with pytest.raises(ValueError, match="lagrangian_lr must be a finite number > 0"):
        spec.check({"lagrangian_lr": 0})
