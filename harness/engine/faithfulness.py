"""How closely a circuit's output matches the model's: per-example measures.

Every function takes the logits the task reads, ``[batch, n_out, vocab]`` (see
:meth:`harness.engine.batches.PromptBatch.output_logits`), and returns one value per example,
``[batch]``, averaged over output positions.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from harness.engine.batches import PromptBatch

FAITHFULNESS_TARGETS = (
    "kl_div",
    "mse",
    "correct_percent",
    "logit_diff_percent",
    "answer",
    "wrong_answer",
    "answer_logprob",
)


def check_faithfulness_target(target: str) -> str:
    if target not in FAITHFULNESS_TARGETS:
        raise ValueError(
            f"faithfulness_target {target!r} is not one of {', '.join(FAITHFULNESS_TARGETS)}"
        )
    return target


def kl_divergence(logits: Tensor, reference_logits: Tensor) -> Tensor:
    """KL(reference ‖ circuit) over the vocabulary, per example.

    Example:
        >>> import torch
        >>> x = torch.randn(2, 1, 5)
        >>> kl_divergence(x, x).abs().max().item() < 1e-6
        True
    """
    log_p = F.log_softmax(reference_logits, dim=-1)
    log_q = F.log_softmax(logits, dim=-1)
    return (log_p.exp() * (log_p - log_q)).sum(-1).mean(-1)


def mean_squared_error(logits: Tensor, reference_logits: Tensor, batch: PromptBatch) -> Tensor:
    """Regression tasks: squared error of the single output logit to the answers;
    other tasks: squared error to the reference logits (ACDC's ``l2`` metric)."""
    if batch.is_regression:
        return ((logits[..., 0] - batch.answers) ** 2).mean(-1)
    return ((logits - reference_logits) ** 2).mean(dim=(-1, -2))


def answer_logit(logits: Tensor, batch: PromptBatch, wrong: bool = False) -> Tensor:
    """Mean logit of the (wrong) answers per example (``-1`` pads ignored)."""
    ids = batch.wrong_answers if wrong else batch.answers
    if ids.shape[-1] == 0:
        raise ValueError(f"batch {batch.key!r} has no {'wrong ' if wrong else ''}answers")
    valid = (ids >= 0).to(logits.dtype)
    values = logits.gather(-1, ids.clamp(min=0)) * valid  # [batch, n_out, n_ids]
    return (values.sum(-1) / valid.sum(-1).clamp(min=1)).mean(-1)


def logit_difference(logits: Tensor, batch: PromptBatch) -> Tensor:
    """Mean answer logit minus mean wrong-answer logit, per example."""
    return answer_logit(logits, batch) - answer_logit(logits, batch, wrong=True)


def logit_difference_percent(
    logits: Tensor, reference_logits: Tensor, batch: PromptBatch
) -> Tensor:
    """Logit difference recovered, in % of the reference's, per example."""
    return 100 * logit_difference(logits, batch) / logit_difference(reference_logits, batch)


def answer_log_probability(logits: Tensor, batch: PromptBatch) -> Tensor:
    """log Σ_{a ∈ answers} softmax(logits)_a, per example (the smooth accuracy)."""
    log_probs = F.log_softmax(logits, dim=-1)
    valid = batch.answers >= 0
    picked = log_probs.gather(-1, batch.answers.clamp(min=0))
    picked = picked.masked_fill(~valid, float("-inf"))
    return torch.logsumexp(picked, dim=-1).mean(-1)


def correct_percent(logits: Tensor, batch: PromptBatch) -> Tensor:
    """100 if the top logit is one of the answers (at every output position), per example."""
    top = logits.argmax(-1, keepdim=True)  # [batch, n_out, 1]
    hit = (batch.answers == top).any(-1).to(logits.dtype)  # [batch, n_out]
    return 100 * hit.mean(-1)


def faithfulness_loss(
    target: str, logits: Tensor, reference_logits: Tensor, batch: PromptBatch
) -> Tensor:
    """The per-example term SP minimises for a faithfulness target.

    The reference's (auto-circuit 1.0.1) definitions, term for term; its batch mean is the
    mean of these values:

    - ``kl_div``: KL(full model ‖ circuit) over the vocabulary.
    - ``mse``: see :func:`mean_squared_error` (on a task whose output is not numerical the
      reference would compare logits with token ids; ACDC's ``l2`` is used there instead).
    - ``correct_percent``: the fraction of outputs whose top logit is the answer, as the
      reference minimises it. It has no gradient, so only the size term trains: use
      ``answer_logprob`` for a trainable accuracy target.
    - ``logit_diff_percent``: |100 − logit difference recovered in %|.
    - ``answer``: −(mean answer logit): maximise the answers.
    - ``wrong_answer``: −(mean wrong-answer logit), as the reference computes it (it
      maximises the wrong answers' logits).
    - ``answer_logprob`` (ours): −log P(answer set), the smooth stand-in for accuracy.

    Example:
        >>> import torch
        >>> from harness.engine.batches import PromptBatch
        >>> batch = PromptBatch("k", torch.zeros(1, 2, dtype=torch.long),
        ...     torch.zeros(1, 2, dtype=torch.long), torch.tensor([[[1]]]),
        ...     torch.tensor([[[0]]]))
        >>> logits = torch.tensor([[[0.0, 2.0, 1.0]]])  # [batch, n_out, vocab]
        >>> faithfulness_loss("answer", logits, logits, batch).tolist()
        [-2.0]
        >>> faithfulness_loss("correct_percent", logits, logits, batch).tolist()
        [1.0]
    """
    if target == "kl_div":
        return kl_divergence(logits, reference_logits)
    if target == "mse":
        return mean_squared_error(logits, reference_logits, batch)
    if target == "correct_percent":
        return correct_percent(logits, batch) / 100
    if target == "logit_diff_percent":
        return (100 - logit_difference_percent(logits, reference_logits, batch)).abs()
    if target == "answer":
        return -answer_logit(logits, batch)
    if target == "wrong_answer":
        return -answer_logit(logits, batch, wrong=True)
    if target == "answer_logprob":
        return -answer_log_probability(logits, batch)
    check_faithfulness_target(target)
    raise AssertionError("unreachable")
