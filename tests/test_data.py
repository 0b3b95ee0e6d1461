"""PromptBatch: the logits a task reads."""

import torch

from harness.engine.batches import PromptBatch


def batch(positions):
    tokens = torch.zeros(2, 5, dtype=torch.long)
    return PromptBatch.create("b", tokens, tokens, torch.tensor([1, 2]), None, positions)


def test_output_positions_consecutive_or_not_read_the_same_logits():
    logits = torch.randn(2, 5, 7)
    for positions in [(-1,), (1, 2, 3), (-3, -2, -1), (0, 2), (3, 1), (4, -1)]:
        expected = torch.stack([logits[:, p] for p in positions], 1)
        assert torch.equal(batch(positions).output_logits(logits), expected), positions
