"""K SP trainings in one pass equal the same K trainings one by one."""

import pytest
import torch

from harness.algorithms import subnetwork_probing_prune_scores as sp
from harness.algorithms.sp_batched import subnetwork_probing_batched
from harness.testing.planted import planted_circuit

TRIALS = [
    {"learning_rate": 0.1, "regularize_lambda": 10.0, "init_val": 1.6, "epochs": 4, "seed": 0},
    {"learning_rate": 0.03, "regularize_lambda": 0.5, "init_val": 2.5, "epochs": 6, "seed": 1},
    {"learning_rate": 0.3, "regularize_lambda": 1.0, "init_val": 0.7, "epochs": 2, "seed": 2},
]


@pytest.fixture(scope="module")
def planted64():
    return planted_circuit(dtype=torch.float64)


@pytest.mark.parametrize(
    "shared",
    [
        {"tree_optimisation": True},
        {"tree_optimisation": False, "ablation": "zero"},
        {"mask_fn": "sigmoid", "dropout_p": 0.2, "tree_optimisation": True},
        {"faithfulness_target": "correct_percent", "circuit_size": 12},
        {"faithfulness_target": "mse", "dropout_p": 0.1, "ablation": "mean"},
    ],
)
def test_batched_equals_sequential(planted64, shared):
    together = subnetwork_probing_batched(planted64.patchable, planted64.batches, TRIALS, **shared)
    for trial, result in zip(TRIALS, together, strict=True):
        alone = sp(planted64.patchable, planted64.batches, progress=False, **trial, **shared)
        assert torch.allclose(result.scores, alone.scores, atol=1e-8, rtol=0), trial
        assert result.circuit == alone.circuit
        assert result.history["loss"] == pytest.approx(alone.history["loss"], abs=1e-9)


def test_a_pruned_trial_stops_alone(planted64):
    class Pruned(Exception):
        pass

    def prune_at_1(epoch, loss, faith):
        if epoch == 1:
            raise Pruned

    results = subnetwork_probing_batched(
        planted64.patchable, planted64.batches, TRIALS[:2], callbacks=[prune_at_1, None]
    )
    assert isinstance(results[0], Pruned)
    alone = sp(planted64.patchable, planted64.batches, progress=False, **TRIALS[1])
    assert torch.allclose(results[1].scores, alone.scores, atol=1e-8, rtol=0)


def test_only_per_trial_settings_may_vary(planted64):
    with pytest.raises(ValueError, match="'mask_fn' cannot vary per trial"):
        subnetwork_probing_batched(planted64.patchable, planted64.batches, [{"mask_fn": "sigmoid"}])


def test_trials_split_over_passes_train_as_in_one(planted64):
    """A memory cap that allows one trial per pass changes the passes, not the results."""
    shared = {"tree_optimisation": True, "dropout_p": 0.1}
    one_pass = subnetwork_probing_batched(planted64.patchable, planted64.batches, TRIALS, **shared)
    split = subnetwork_probing_batched(
        planted64.patchable, planted64.batches, TRIALS, max_pass_bytes=1, **shared
    )
    for together, apart in zip(one_pass, split, strict=True):
        assert torch.allclose(together.scores, apart.scores, atol=1e-10, rtol=0)
        assert together.history["loss"] == pytest.approx(apart.history["loss"], abs=1e-10)


def test_a_diverging_trial_fails_alone(planted64):
    """A trial whose loss stops being finite gets SP's FloatingPointError; the others
    train as they would alone."""
    shared = {"mask_fn": None, "tree_optimisation": True}
    trials = [{"init_val": 1e300, "epochs": 2}, {"init_val": 1.0, "epochs": 3, "seed": 1}]
    with pytest.raises(FloatingPointError, match="SP loss is nan at epoch 0"):
        sp(planted64.patchable, planted64.batches, progress=False, **trials[0], **shared)
    diverged, fine = subnetwork_probing_batched(
        planted64.patchable, planted64.batches, trials, **shared
    )
    assert isinstance(diverged, FloatingPointError) and "at epoch 0" in str(diverged)
    alone = sp(planted64.patchable, planted64.batches, progress=False, **trials[1], **shared)
    assert torch.allclose(fine.scores, alone.scores, atol=1e-8, rtol=0)
