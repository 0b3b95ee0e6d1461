"""A small model with a planted circuit: the test fake every algorithm must solve.

The residual stream is split into subspaces. Token embeddings write only to ``T``;
three heads and two MLPs pass the task's signal along ``T → C1, C2 → C3 → U``; the
unembedding reads only ``U``. Every other head and MLP reads anything but writes only to
a junk subspace ``J`` that no planted component reads, and the planted heads attend
uniformly (zero query and key weights). So exactly the planted edges carry the task:
patching any other edge leaves the output unchanged, to the last bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from harness.engine.batches import PromptBatch
from harness.engine.patching import PatchableModel

# residual subspaces of the 64-dimensional stream
_T, _C1, _C2, _C3, _U, _J = (
    slice(0, 8),
    slice(8, 16),
    slice(16, 24),
    slice(24, 32),
    slice(32, 40),
    slice(40, 64),
)
_ALL = slice(0, 64)
# planted heads: (layer, head) -> (subspaces read by V, subspace written by O)
_PLANTED_HEADS = {(0, 1): ((_T,), _C1), (1, 2): ((_C1, _C2), _C3), (2, 0): ((_C3,), _U)}
# planted MLPs: layer -> (subspace read, subspace written)
_PLANTED_MLPS = {0: (_T, _C2), 2: (_C3, _U)}

PLANTED_EDGES = (
    "Resid Start->A0.1.V",
    "Resid Start->MLP 0",
    "A0.1->A1.2.V",
    "MLP 0->A1.2.V",
    "A1.2->A2.0.V",
    "A1.2->MLP 2",
    "A2.0->Resid End",
    "MLP 2->Resid End",
)


@dataclass(frozen=True)
class PlantedCircuit:
    """A model, its patchable wrapper, the planted edges and a dataset.

    Attributes:
        model: The HookedTransformer (3 layers, 4 heads, d_model 64, MLPs, no LayerNorm).
        patchable: ``PatchableModel.wrap(model)`` with separate Q/K/V.
        edges: The edges that carry the task.
        batches: Clean/corrupt prompt pairs (independent random tokens); the answer is
            the model's top token on the clean prompt, the wrong answer its second.
    """

    model: object
    patchable: PatchableModel
    edges: tuple[str, ...]
    batches: tuple[PromptBatch, ...]


def planted_circuit(
    seed: int = 0,
    n_batches: int = 2,
    batch_size: int = 32,
    seq_len: int = 6,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
) -> PlantedCircuit:
    """Build the planted-circuit model and its data, deterministically from ``seed``.

    Example:
        >>> planted = planted_circuit()
        >>> planted.patchable.n_edges, len(planted.edges)
        (262, 8)
    """
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    cfg = HookedTransformerConfig(
        n_layers=3,
        n_heads=4,
        d_model=64,
        d_head=8,
        d_mlp=32,
        d_vocab=16,
        n_ctx=seq_len,
        act_fn="relu",
        normalization_type=None,
        dtype=dtype,
        device=str(device),
        seed=seed,
    )
    model = HookedTransformer(cfg)
    generator = torch.Generator().manual_seed(seed)
    _plant_weights(model, generator)
    patchable = PatchableModel.wrap(model)

    batches = []
    for i in range(n_batches):
        clean = torch.randint(0, cfg.d_vocab, (batch_size, seq_len), generator=generator)
        corrupt = torch.randint(0, cfg.d_vocab, (batch_size, seq_len), generator=generator)
        with torch.no_grad():
            top2 = model(clean.to(device))[:, -1].topk(2, dim=-1).indices.cpu()
        batches.append(PromptBatch.create(f"planted-{i}", clean, corrupt, top2[:, 0], top2[:, 1]))
    return PlantedCircuit(model, patchable, PLANTED_EDGES, tuple(batches))


@torch.no_grad()
def _plant_weights(model, generator: torch.Generator) -> None:
    def randn(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=generator) / shape[0] ** 0.5

    for param in model.parameters():
        param.zero_()
    model.embed.W_E.copy_(_cols(randn, model.cfg.d_vocab, _T))
    model.pos_embed.W_pos.copy_(_cols(randn, model.cfg.n_ctx, _J))
    # large enough logits that dropping any planted edge costs a KL of at least ~0.1
    model.unembed.W_U.copy_(5 * _rows(randn, _U, model.cfg.d_vocab))
    for layer, block in enumerate(model.blocks):
        attn = block.attn
        for head in range(model.cfg.n_heads):
            if (layer, head) in _PLANTED_HEADS:
                reads, writes = _PLANTED_HEADS[(layer, head)]
                attn.W_V[head].copy_(_rows(randn, reads, model.cfg.d_head))
                attn.W_O[head].copy_(_cols(randn, model.cfg.d_head, writes))
            else:
                attn.W_Q[head].copy_(randn(64, model.cfg.d_head))
                attn.W_K[head].copy_(randn(64, model.cfg.d_head))
                attn.W_V[head].copy_(randn(64, model.cfg.d_head))
                attn.W_O[head].copy_(_cols(randn, model.cfg.d_head, _J))
        reads, writes = _PLANTED_MLPS.get(layer, (_ALL, _J))
        block.mlp.W_in.copy_(_rows(randn, reads, model.cfg.d_mlp))
        block.mlp.b_in.copy_(0.1 * torch.randn(model.cfg.d_mlp, generator=generator))
        block.mlp.W_out.copy_(2 * _cols(randn, model.cfg.d_mlp, writes))


def _rows(randn, rows: slice | tuple[slice, ...], width: int) -> torch.Tensor:
    """``[64, width]``: random on the given residual rows, zero elsewhere."""
    value = torch.zeros(64, width)
    for r in rows if isinstance(rows, tuple) else (rows,):
        value[r] = randn(r.stop - r.start, width)
    return value


def _cols(randn, height: int, cols: slice) -> torch.Tensor:
    """``[height, 64]``: random on the given residual columns, zero elsewhere."""
    value = torch.zeros(height, 64)
    value[:, cols] = randn(height, cols.stop - cols.start)
    return value
