"""Prompt batches: what every task yields and every algorithm consumes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import torch
from torch import Tensor


@dataclass(frozen=True)
class PromptBatch:
    """Clean and corrupt prompts with the answers read at the output positions.

    Attributes:
        key: A stable name of the batch (caches are keyed by it).
        clean: ``[batch, seq]`` token ids of the prompts the model should solve.
        corrupt: ``[batch, seq]`` token ids of the paired counterfactual prompts.
        answers: ``[batch, n_out, n_answers]`` correct token ids at each output position,
            ``-1`` where an example has fewer answers; for regression tasks a float
            ``[batch, n_out]`` of target values of the model's single output logit.
        wrong_answers: ``[batch, n_out, n_wrong]`` token ids (``-1`` pads; may be empty).
        output_positions: The sequence positions the task reads (negative counts from
            the end); the default is the last position.

    Example:
        >>> import torch
        >>> batch = PromptBatch.create("b0", torch.zeros(2, 4, dtype=torch.long),
        ...                            torch.ones(2, 4, dtype=torch.long),
        ...     answers=torch.tensor([3, 4]), wrong_answers=torch.tensor([5, 6]))
        >>> tuple(batch.answers.shape), batch.size
        ((2, 1, 1), 2)
    """

    key: str
    clean: Tensor
    corrupt: Tensor
    answers: Tensor
    wrong_answers: Tensor
    output_positions: tuple[int, ...] = (-1,)

    @classmethod
    def create(
        cls,
        key: str,
        clean: Tensor,
        corrupt: Tensor,
        answers: Tensor,
        wrong_answers: Tensor | None = None,
        output_positions: Sequence[int] = (-1,),
    ) -> PromptBatch:
        """A batch with answer tensors brought to their canonical shapes.

        Integer answers of shape ``[batch]`` become ``[batch, 1, 1]``; ``[batch, n]``
        becomes ``[batch, 1, n]`` for one output position and ``[batch, n_out, 1]`` for
        several. Float answers ``[batch]`` become ``[batch, 1]``.
        """
        positions = tuple(int(p) for p in output_positions)
        if clean.shape != corrupt.shape or clean.ndim != 2:
            raise ValueError(
                f"clean and corrupt must both be [batch, seq], got {tuple(clean.shape)} "
                f"and {tuple(corrupt.shape)}"
            )
        answers = _canonical(answers, len(positions))
        if wrong_answers is None:
            wrong_answers = torch.empty(clean.shape[0], len(positions), 0, dtype=torch.long)
        elif not answers.is_floating_point():
            wrong_answers = _canonical(wrong_answers, len(positions))
        return cls(key, clean, corrupt, answers, wrong_answers, positions)

    @property
    def size(self) -> int:
        return int(self.clean.shape[0])

    @property
    def is_regression(self) -> bool:
        return self.answers.is_floating_point()

    def to(self, device: torch.device | str) -> PromptBatch:
        return replace(
            self,
            clean=self.clean.to(device),
            corrupt=self.corrupt.to(device),
            answers=self.answers.to(device),
            wrong_answers=self.wrong_answers.to(device),
        )

    def output_logits(self, logits: Tensor) -> Tensor:
        """``[batch, seq, vocab] -> [batch, n_out, vocab]``: the logits the task reads.

        Consecutive positions (every task here) are read as a slice, not a gather: a list
        index would be copied to the device, and wait for it, at every training step.

        Example:
            >>> import torch
            >>> batch = PromptBatch.create("b", torch.zeros(1, 4, dtype=torch.long),
            ...     torch.zeros(1, 4, dtype=torch.long), answers=torch.tensor([1]),
            ...     output_positions=(-2, -1))
            >>> batch.output_logits(torch.arange(8.0).view(1, 4, 2)).tolist()
            [[[4.0, 5.0], [6.0, 7.0]]]
        """
        seq = logits.shape[1]
        positions = [p % seq for p in self.output_positions]
        first = positions[0]
        if positions == list(range(first, first + len(positions))):
            # a copy, as a gather gives: a stored result must not pin the whole logits
            return logits[:, first : first + len(positions)].contiguous()
        return logits[:, positions]


def _canonical(answers: Tensor, n_out: int) -> Tensor:
    if answers.is_floating_point():
        return answers[:, None] if answers.ndim == 1 else answers
    answers = answers.long()
    if answers.ndim == 1:
        return answers[:, None, None]
    if answers.ndim == 2:
        return answers[:, None, :] if n_out == 1 else answers[:, :, None]
    return answers
