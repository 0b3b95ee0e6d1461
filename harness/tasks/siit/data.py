"""What SIIT trains on: the tracr model, the program's inputs split once, the answers.

Example:
    >>> from harness.tasks.tracr.compile import load_compiled
    >>> data = siit_data(load_compiled("hist"))
    >>> tuple(data.train_tokens.shape), tuple(data.test_labels.shape), data.positions
    ((194, 6), (49, 5), (1, 2, 3, 4, 5))
    >>> data.alignment(2, 4).circuit
    ('A0.0', 'MLP 0')
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from harness.tasks.siit.alignment import Alignment
from harness.tasks.tracr.compiled import CompiledTracr
from harness.tasks.tracr.data import all_inputs, expected_outputs, output_positions
from harness.tasks.tracr.programs import all_programs
from harness.tasks.tracr.tasks import derived_circuits, ground_truth_circuits

ALIGNED_GROUND_TRUTH = "resample"
"""The tracr ground truth whose nodes are aligned (interchange cannot constrain a node
that only matters when zeroed: its value is the same on every input)."""


@dataclass(frozen=True)
class SiitData:
    """A program's training data.

    Attributes:
        tracr: The compiled program's ``HookedTransformer`` (CPU, eval).
        positions: The output positions the losses and metrics read.
        numerical: Whether the output is one number (MSE) rather than a class (CE).
        train_tokens, test_tokens: ``[n, pos]`` prompts, disjoint.
        train_labels, test_labels: The program's answers ``[n, n_out]`` (class ids or values).
        tracr_circuits: The tracr model's ground truths (name -> edges).
    """

    tracr: Any
    positions: tuple[int, ...]
    numerical: bool
    train_tokens: Tensor
    train_labels: Tensor
    test_tokens: Tensor
    test_labels: Tensor
    tracr_circuits: dict[str, frozenset[str]]

    def alignment(self, n_layers: int, n_heads: int) -> Alignment:
        """The alignment of the tracr circuit's nodes in a trained model of that size."""
        edges = self.tracr_circuits[ALIGNED_GROUND_TRUTH]
        return Alignment.from_edges(edges, n_layers, n_heads)


def siit_data(compiled: CompiledTracr, seed: int = 0, train_fraction: float = 0.8) -> SiitData:
    """Every input of the program, shuffled with ``seed`` and split ``train_fraction`` to
    train (the rest to measure on); with ``train_fraction`` 1, every input is trained on and
    measured on (the trained model is the task's model, and every method runs on these
    inputs: what must hold is that it computes the program on each of them)."""
    if not 0.0 < train_fraction <= 1.0:
        raise ValueError(f"train_fraction must be in (0, 1], got {train_fraction}")
    tokens = all_inputs(compiled)  # [n_inputs, pos]
    order = torch.randperm(tokens.shape[0], generator=torch.Generator().manual_seed(seed))
    tokens = tokens[order]
    labels = expected_outputs(compiled, tokens)  # [n_inputs, n_out]
    if train_fraction == 1.0:
        train, test = slice(None), slice(None)
    else:
        n_train = max(1, min(tokens.shape[0] - 1, round(train_fraction * tokens.shape[0])))
        train, test = slice(None, n_train), slice(n_train, None)
    circuits = ground_truth_circuits(derived_circuits(compiled), compiled.program)
    return SiitData(
        tracr=compiled.to_model("cpu"),
        positions=output_positions(compiled),
        numerical=all_programs()[compiled.program].numerical,
        train_tokens=tokens[train],
        train_labels=labels[train],
        test_tokens=tokens[test],
        test_labels=labels[test],
        tracr_circuits=circuits,
    )
