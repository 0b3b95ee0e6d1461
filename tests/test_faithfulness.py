import pytest
import torch

from harness.engine.batches import PromptBatch
from harness.engine.faithfulness import (
    correct_percent,
    faithfulness_loss,
    kl_divergence,
    logit_difference,
    logit_difference_percent,
    mean_squared_error,
)


@pytest.fixture
def batch():
    tokens = torch.zeros(2, 3, dtype=torch.long)
    answers = torch.tensor([[1, 2], [3, -1]])  # the second example has one answer
    return PromptBatch.create("b", tokens, tokens, answers, torch.tensor([0, 0]))


def test_kl_by_hand():
    p = torch.tensor([[[0.0, 1.0]]])
    q = torch.tensor([[[1.0, 0.0]]])
    pp, qq = p.softmax(-1), q.softmax(-1)
    expected = (pp * (pp.log() - qq.log())).sum()
    assert torch.isclose(kl_divergence(q, p)[0], expected)


def test_padded_answers_and_logit_difference(batch):
    logits = torch.arange(2 * 1 * 5, dtype=torch.float).reshape(2, 1, 5)
    # example 0: mean(1, 2) − 0 = 1.5; example 1: 8 − 5 = 3
    assert logit_difference(logits, batch).tolist() == [1.5, 3.0]
    assert logit_difference_percent(logits, logits, batch).tolist() == [100.0, 100.0]
    assert correct_percent(logits, batch).tolist() == [0.0, 0.0]
    logits[0, 0, 2] = 100
    assert correct_percent(logits, batch).tolist() == [100.0, 0.0]


def test_regression_mse():
    tokens = torch.zeros(2, 3, dtype=torch.long)
    batch = PromptBatch.create("r", tokens, tokens, torch.tensor([1.0, -1.0]))
    logits = torch.zeros(2, 1, 1)
    assert mean_squared_error(logits, logits, batch).tolist() == [1.0, 1.0]


def test_every_target_but_accuracy_is_differentiable(batch):
    """``correct_percent`` is the reference's: the fraction of top-1 answers, which has no
    gradient (``answer_logprob`` is its smooth stand-in)."""
    logits = torch.randn(2, 1, 5, requires_grad=True)
    reference = torch.randn(2, 1, 5)
    assert not faithfulness_loss("correct_percent", logits, reference, batch).requires_grad
    for target in (
        "kl_div",
        "mse",
        "answer_logprob",
        "logit_diff_percent",
        "answer",
        "wrong_answer",
    ):
        (grad,) = torch.autograd.grad(
            faithfulness_loss(target, logits, reference, batch).sum(), logits
        )
        assert grad.abs().sum() > 0, target


def test_unknown_target(batch):
    with pytest.raises(ValueError, match="faithfulness_target 'nope'"):
        faithfulness_loss("nope", torch.zeros(2, 1, 5), torch.zeros(2, 1, 5), batch)
