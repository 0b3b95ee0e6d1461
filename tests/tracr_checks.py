"""Checks the tracr tests share: a task's outputs with some edges ablated."""

from __future__ import annotations

import torch

from harness.engine.ablation import ablation_activations


def clean_and_ablated_outputs(task, ablation: str, ablated_edges):
    """Clean and ablated output logits on the test split, ``[n, n_out, d_vocab_out]`` each:
    ``ablated_edges`` take their ``ablation`` values (an independent forward per batch)."""
    patchable = task.patchable
    clean, ablated = [], []
    for batch in task.test:
        with torch.no_grad():
            clean.append(batch.output_logits(task.model(batch.clean)))
            patch = ablation_activations(patchable, [batch], ablation)[batch.key]
            weights = patchable.edge_weights(list(ablated_edges))
            logits = patchable.forward_patched(batch.clean, patch, weights)
            ablated.append(batch.output_logits(logits))
    return torch.cat(clean), torch.cat(ablated)
