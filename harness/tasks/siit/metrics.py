"""How well a trained model implements the circuit, on prompts it was not trained on.

- ``accuracy``: its answers against the program's;
- ``iia`` (interchange intervention accuracy): with one circuit node taken from a source
  prompt in both models, its answers against the tracr model's; per node and the minimum;
- ``strict``: with one node outside the circuit taken from a source prompt, its answers
  against the program's on the base prompt; per node and the minimum;
- ``joint``: the same with every node outside the circuit taken from the source at once
  (what scoring a circuit by ablation needs).

An answer is one output position of one prompt: a class (argmax) equal to the target, or
a number within 5 % of ``max(1, |target|)``. Sources are the test prompts in a fixed
shuffled order.

Example:
    >>> import torch
    >>> correct_share(torch.tensor([[[0.1, 0.9], [0.8, 0.2]]]), torch.tensor([[1, 1]]), False)
    0.5
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from harness.tasks.siit.alignment import Alignment
from harness.tasks.siit.data import SiitData
from harness.tasks.siit.interchange import node_activations, run_patched

NUMERICAL_TOLERANCE = 0.05
SOURCE_SEED = 12345


def correct_share(out: Tensor, target: Tensor, numerical: bool) -> float:
    """The share of answers right: ``out`` ``[batch, n_out, d_vocab_out]`` at the output
    positions, ``target`` ``[batch, n_out]``."""
    if numerical:
        right = (out[..., 0] - target).abs() <= NUMERICAL_TOLERANCE * target.abs().clamp(min=1)
    else:
        right = out.argmax(-1) == target
    return float(right.float().mean())


def source_order(n: int) -> Tensor:
    """The fixed shuffle ``[n]`` that pairs each test prompt with its source prompt.

    Example:
        >>> torch.equal(source_order(5), source_order(5)), sorted(source_order(5).tolist())
        (True, [0, 1, 2, 3, 4])
    """
    return torch.randperm(n, generator=torch.Generator().manual_seed(SOURCE_SEED))


def siit_metrics(model: Any, data: SiitData, alignment: Alignment) -> dict[str, Any]:
    """Accuracy, IIA, strict and joint accuracy of ``model`` on ``data``'s test prompts."""
    base, labels = data.test_tokens, data.test_labels  # [n, pos], [n, n_out]
    source = base[source_order(base.shape[0])]  # [n, pos]
    pos = list(data.positions)
    with torch.no_grad():
        accuracy = correct_share(model(base)[:, pos], labels, data.numerical)
        taken = node_activations(model, source, (*alignment.circuit, *alignment.outside))
        high_taken = node_activations(data.tracr, source, alignment.circuit)
        iia = {}
        for node in alignment.circuit:
            high = run_patched(data.tracr, base, {node: high_taken[node]})[:, pos]
            target = high[..., 0] if data.numerical else high.argmax(-1)
            low = run_patched(model, base, {node: taken[node]})[:, pos]
            iia[node] = correct_share(low, target, data.numerical)
        strict = {
            node: correct_share(
                run_patched(model, base, {node: taken[node]})[:, pos], labels, data.numerical
            )
            for node in alignment.outside
        }
        everything = {node: taken[node] for node in alignment.outside}
        joint = correct_share(run_patched(model, base, everything)[:, pos], labels, data.numerical)
    return {
        "accuracy": round(accuracy, 6),
        "iia": round(min(iia.values()), 6),
        "strict": round(min(strict.values()), 6) if strict else 1.0,
        "joint": round(joint, 6),
        "iia_nodes": {k: round(v, 6) for k, v in iia.items()},
        "strict_nodes": {k: round(v, 6) for k, v in strict.items()},
    }
