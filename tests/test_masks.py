import math

import pytest
import torch

from harness.engine.masks import (
    INIT_LOGIT,
    check_mask_fn,
    drop_masks,
    gate_open_probability,
    hard_concrete_deterministic,
    hard_concrete_sample,
)


def test_init_logit_gives_the_papers_initial_mask():
    value = hard_concrete_deterministic(torch.tensor(INIT_LOGIT, dtype=torch.float64))
    assert math.isclose(float(value), 0.9, rel_tol=1e-12)


def test_hard_concrete_samples_are_clamped_and_reach_both_ends():
    g = torch.Generator().manual_seed(0)
    samples = hard_concrete_sample(torch.zeros(10000), 1, g)
    assert samples.min() == 0 and samples.max() == 1
    assert 0.05 < (samples == 0).float().mean() < 0.5
    assert abs(samples.mean().item() - 0.5) < 0.02  # symmetric at logit 0


def test_samples_carry_gradients_inside_the_interval():
    logits = torch.zeros(100, requires_grad=True)
    hard_concrete_sample(logits, 4, torch.Generator().manual_seed(1)).sum().backward()
    assert (logits.grad > 0).any()


def test_open_probability_matches_sampling():
    logits = torch.tensor([-2.0, 0.0, 1.5])
    samples = hard_concrete_sample(logits, 200000, torch.Generator().manual_seed(2))
    empirical = (samples > 0).double().mean(0)
    assert torch.allclose(empirical, gate_open_probability(logits).double(), atol=5e-3)


def test_dropout_zeroes_and_rescales_like_torch_dropout():
    """The reference drops masks with ``torch.nn.Dropout`` in training mode: kept masks
    are divided by 1 − p, so the expected mask is unchanged."""
    masks = torch.full((1, 10000), 0.7, dtype=torch.float64)
    dropped = drop_masks(masks, 0.3, torch.Generator().manual_seed(0))
    assert sorted(dropped.unique().tolist()) == pytest.approx([0.0, 0.7 / 0.7])
    assert abs((dropped == 0).double().mean().item() - 0.3) < 0.02
    assert abs(dropped.mean().item() - 0.7) < 0.02


def test_none_is_a_mask_function():
    assert check_mask_fn(None) == "none"
