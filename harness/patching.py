"""Exact edge-level patching of a transformer_lens model.

A patched forward pass gives every edge a *patch weight* ``w`` in ``[0, 1]`` (any real
value works; the algebra is linear). A destination's input becomes

    input + Σ_src w[dest, src] · (patch_src − current_src)

where ``current_src`` is the source's output in this very forward pass and ``patch_src``
is a fixed activation (the run on other tokens, a mean, zeros). ``w = 0`` keeps the live
value, ``w = 1`` replaces it. Because every destination sits before its LayerNorm, this is
exact, and one forward pass evaluates any circuit.

Implementation: source hooks write ``patch_src − current_src`` into one preallocated
buffer ``[batch, n_sources, pos, d_model]``; each destination hook mixes the prefix of
upstream slots with one (batched) matmul over ``pos × d_model`` columns. A small
autograd function routes gradients to the patch weights and back into the live source
activations without saving a copy of the buffer per destination, so memory is one buffer
per forward pass. Per-head source values come from ``hook_z`` and ``W_O`` with one
matmul (transformer_lens's ``hook_result`` would materialise a
``[batch, pos, head, d_head, d_model]`` product).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass, field

import torch
from torch import Tensor

from harness.graph import DestinationGroup, Edge, EdgeGraph, SourceGroup

# Architectures whose head outputs are normalised after the hook, so sources do not add up.
_POST_NORM_ARCHITECTURES = ("Olmo2ForCausalLM", "Olmo3ForCausalLM")


@dataclass
class _Recording:
    """State of a forward pass that only records source activations."""

    buffer: Tensor  # [batch, n_sources, pos, d_model]


@dataclass
class _Patching:
    """State of one patched forward pass."""

    patch: Tensor  # [batch or 1, n_sources, pos, d_model]
    weights: Tensor  # [n_masks (1 or batch), n_edges]
    delta: Tensor  # [batch, n_sources, pos, d_model], patch − current, no grad
    resid_start: Tensor | None  # [batch or 1, pos, d_model], replaces Resid Start's value
    chunks: list[tuple[int, int, Tensor]] = field(default_factory=list)  # (first, end, output)


class _UpstreamMix(torch.autograd.Function):
    """Σ_s w[n, r, s] · delta[b, s, p, :] for one destination group.

    ``delta`` is a prefix view of the pass's buffer; later sources write further slots of
    the same storage, so it is kept as a plain attribute (not ``save_for_backward``, whose
    version check would fire on those writes). Its slots ``[0, n_upstream)`` are final
    when this runs. The live source outputs are inputs only so that autograd routes
    ``−∂/∂delta`` back to them.
    """

    @staticmethod
    def forward(ctx, weights, delta, chunk_bounds, *chunks):  # type: ignore[override]
        # weights: [n_masks, rows, n_up]; delta: [batch, n_up, pos, d_model]
        ctx.delta = delta
        ctx.chunk_bounds = chunk_bounds
        ctx.chunk_shapes = [c.shape for c in chunks]
        ctx.save_for_backward(weights)
        return _mix(weights, delta)  # [batch, pos, rows, d_model]

    @staticmethod
    def backward(ctx, grad_out):  # type: ignore[override]
        (weights,) = ctx.saved_tensors
        delta = ctx.delta
        batch, n_up, pos, d_model = delta.shape
        rows = weights.shape[1]
        flat = delta.reshape(batch, n_up, pos * d_model)
        grad = grad_out.transpose(1, 2).reshape(batch, rows, pos * d_model)
        grad_weights = None
        if ctx.needs_input_grad[0]:
            if weights.shape[0] == 1:
                grad_weights = torch.einsum("brk,bsk->rs", grad, flat)[None]
            else:
                grad_weights = torch.bmm(grad, flat.transpose(1, 2))
        chunk_grads: list[Tensor | None] = [None] * len(ctx.chunk_shapes)
        if any(ctx.needs_input_grad[3:]):
            # ∂out/∂current = −weights; [batch, n_up, pos × d_model]
            if weights.shape[0] == 1:
                grad_delta = torch.matmul(weights[0].transpose(0, 1), grad)
            else:
                grad_delta = torch.bmm(weights.transpose(1, 2), grad)
            grad_delta = grad_delta.view(batch, n_up, pos, d_model)
            for i, ((first, end), shape) in enumerate(
                zip(ctx.chunk_bounds, ctx.chunk_shapes, strict=True)
            ):
                if ctx.needs_input_grad[3 + i]:
                    chunk_grads[i] = -grad_delta[:, first:end].transpose(1, 2).reshape(shape)
        return (grad_weights, None, None, *chunk_grads)


def _mix(weights: Tensor, delta: Tensor) -> Tensor:
    """``[n_masks, rows, n_up] × [batch, n_up, pos, d] -> [batch, pos, rows, d]``."""
    batch, n_up, pos, d_model = delta.shape
    flat = delta.reshape(batch, n_up, pos * d_model)
    shared = weights.shape[0] == 1
    mixed = torch.matmul(weights[0], flat) if shared else torch.bmm(weights, flat)
    # mixed: [batch, rows, pos × d_model]
    return mixed.view(batch, -1, pos, d_model).transpose(1, 2)


class PatchableModel:
    """A HookedTransformer with hooks for exact edge patching.

    Create it with :meth:`wrap`. Hooks stay registered on the model but do nothing
    outside :meth:`forward_patched` and :meth:`source_activations`.

    Example:
        >>> import torch
        >>> from transformer_lens import HookedTransformer, HookedTransformerConfig
        >>> cfg = HookedTransformerConfig(n_layers=2, n_heads=2, d_model=16, d_head=8,
        ...                               n_ctx=8, d_vocab=11, attn_only=True)
        >>> patchable = PatchableModel.wrap(HookedTransformer(cfg))
        >>> patchable.n_edges
        29
        >>> clean, corrupt = torch.randint(0, 11, (2, 3, 5))
        >>> logits = patchable.run_patched(clean, corrupt, ["A0.1->A1.0.V"])
        >>> tuple(logits.shape)
        (3, 5, 11)
    """

    def __init__(self, model, graph: EdgeGraph) -> None:
        self.model = model
        self.graph = graph
        self._state: _Recording | _Patching | None = None
        self._handles: list = []

    @classmethod
    def wrap(cls, model, separate_qkv: bool = True, device: str | None = None) -> PatchableModel:
        """Make ``model`` patchable (in place: it turns on the hooks patching needs).

        Args:
            model: A ``transformer_lens.HookedTransformer``.
            separate_qkv: One destination per Q, K and V input of each head (the field's
                default), or one per head's combined attention input.
            device: Move the model there first: ``"auto"`` (CUDA when present), ``"cpu"``,
                ``"cuda"``..., or ``None`` to leave it where it is.
        """
        from transformer_lens import HookedTransformer

        if not isinstance(model, HookedTransformer):
            raise ValueError(
                f"model must be a transformer_lens HookedTransformer, got {type(model).__name__}"
            )
        cfg = model.cfg
        if cfg.original_architecture in _POST_NORM_ARCHITECTURES or getattr(
            cfg, "use_normalization_before_and_after", False
        ):
            raise ValueError(
                f"architecture {cfg.original_architecture!r} normalises block outputs after "
                "the residual hooks, so edge patching would not be exact; use a pre-norm model"
            )
        if device is not None:
            from harness.device import resolve_device

            model.to(resolve_device(device))
        previous = getattr(model, "_harness_patchable", None)
        if previous is not None:
            previous.unwrap()
        if not cfg.attn_only:
            model.set_use_hook_mlp_in(True)
        if separate_qkv:
            model.set_use_split_qkv_input(True)
        else:
            model.set_use_attn_in(True)
        patchable = cls(model, EdgeGraph.from_config(cfg, separate_qkv=separate_qkv))
        patchable._register_hooks()
        model._harness_patchable = patchable
        return patchable

    def unwrap(self) -> None:
        """Remove this wrapper's hooks from the model."""
        for handle in self._handles:
            handle.remove()
        self._handles = []
        if getattr(self.model, "_harness_patchable", None) is self:
            del self.model._harness_patchable

    # -- the graph ----------------------------------------------------------------------

    @property
    def edges(self) -> tuple[Edge, ...]:
        return self.graph.edges

    @property
    def n_edges(self) -> int:
        return self.graph.n_edges

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    def edge_weights(self, edges: Iterable[str | Edge], value: float = 1.0) -> Tensor:
        """A ``[1, n_edges]`` weight vector with ``value`` on the given edges, 0 elsewhere."""
        weights = torch.zeros(1, self.n_edges, device=self.device, dtype=self.dtype)
        names = [e.name if isinstance(e, Edge) else e for e in edges]
        index = torch.tensor(self.graph.edge_indices(names), dtype=torch.long)
        weights[0, index.to(self.device)] = value
        return weights

    # -- forward passes -----------------------------------------------------------------

    @torch.no_grad()
    def source_activations(self, tokens: Tensor) -> Tensor:
        """Every source's output on ``tokens``: ``[batch, n_sources, pos, d_model]``, no grad."""
        batch, pos = tokens.shape
        buffer = torch.empty(
            batch,
            self.graph.n_sources,
            pos,
            self.model.cfg.d_model,
            device=self.device,
            dtype=self.dtype,
        )
        self._state = _Recording(buffer)
        try:
            self.model(tokens)
        finally:
            self._state = None
        return buffer

    def forward_patched(
        self,
        tokens: Tensor,
        patch: Tensor,
        weights: Tensor,
        resid_start: Tensor | None = None,
    ) -> Tensor:
        """Logits of ``tokens`` with every edge moved toward ``patch`` by its weight.

        Args:
            tokens: ``[batch, pos]`` token ids.
            patch: ``[batch or 1, n_sources, pos, d_model]`` patch values of the sources.
            weights: ``[n_edges]``, ``[1, n_edges]`` or ``[batch, n_edges]`` patch weights
                (0 keeps an edge's live value, 1 replaces it by the patch value); may
                require grad.
            resid_start: ``[batch or 1, pos, d_model]``: if given, the value of the
                ``Resid Start`` source itself (the embedding) is replaced by it.

        Returns:
            ``[batch, pos, d_vocab_out]`` logits.
        """
        if weights.ndim == 1:
            weights = weights[None]
        if weights.shape[-1] != self.n_edges or weights.shape[0] not in (1, tokens.shape[0]):
            raise ValueError(
                f"weights must be [1 or batch, {self.n_edges}], got {tuple(weights.shape)}"
            )
        batch, pos = tokens.shape
        delta = torch.empty(
            batch,
            self.graph.n_sources,
            pos,
            self.model.cfg.d_model,
            device=self.device,
            dtype=self.dtype,
        )
        self._state = _Patching(patch, weights, delta, resid_start)
        try:
            return self.model(tokens)
        finally:
            self._state = None

    def run_patched(
        self,
        tokens: Tensor,
        source_tokens: Tensor,
        edges: Iterable[str | Edge],
    ) -> Tensor:
        """Logits of ``tokens``; each listed edge carries its source's value on ``source_tokens``.

        The primitive behind every circuit evaluation: pass the edges *outside* a circuit
        to evaluate the circuit under resample ablation.
        """
        with torch.no_grad():
            patch = self.source_activations(source_tokens)
            return self.forward_patched(tokens, patch, self.edge_weights(edges))

    # -- hooks --------------------------------------------------------------------------

    def _register_hooks(self) -> None:
        modules = dict(self.model.named_modules())
        for group in self.graph.source_groups:
            if group.has_head_dim:
                # Per-head results from hook_z with one matmul: transformer_lens's own
                # hook_result materialises a [batch, pos, head, d_head, d_model] product.
                attn = modules[group.hook_name.rsplit(".", 1)[0]]
                hook = self._source_hook(group, attn)
                target = modules[group.hook_name.replace("hook_result", "hook_z")]
            else:
                hook, target = self._source_hook(group), modules[group.hook_name]
            self._handles.append(target.register_forward_hook(hook))
        for group in self.graph.destination_groups:
            hook = self._destination_hook(group)
            self._handles.append(modules[group.hook_name].register_forward_hook(hook))

    def _source_hook(self, group: SourceGroup, attn=None):
        first, end = group.first_slot, group.end_slot
        is_resid_start = first == 0

        def hook(module, inputs, output):
            state = self._state
            if state is None:
                return None
            replaced = None
            if attn is not None:  # output is z: [batch, pos, head, d_head]
                output = torch.einsum("bphd,hdm->bphm", output, attn.W_O)
            elif is_resid_start and getattr(state, "resid_start", None) is not None:
                output = replaced = state.resid_start.expand_as(output).to(output.dtype)
            value = output if group.has_head_dim else output[:, :, None]
            if isinstance(state, _Recording):
                state.buffer[:, first:end] = value.transpose(1, 2)
                return None
            with torch.no_grad():
                torch.sub(
                    state.patch[:, first:end], value.transpose(1, 2), out=state.delta[:, first:end]
                )
            state.chunks.append((first, end, output))
            return replaced

        return hook

    def _destination_hook(self, group: DestinationGroup):
        n_up, rows = group.n_upstream, len(group.nodes)
        start, stop = group.edge_offset, group.edge_offset + group.n_edges

        def hook(module, inputs, output):
            state = self._state
            if not isinstance(state, _Patching):
                return None
            weights = state.weights[:, start:stop].reshape(-1, rows, n_up)
            chunks = [c for c in state.chunks if c[1] <= n_up]
            bounds = tuple((first, end) for first, end, _ in chunks)
            mixed = _UpstreamMix.apply(
                weights, state.delta[:, :n_up], bounds, *(c[2] for c in chunks)
            )  # [batch, pos, rows, d_model]
            if not group.has_head_dim:
                mixed = mixed[:, :, 0]
            return output + mixed

        return hook


@contextlib.contextmanager
def frozen_weights(model):
    """No gradients (and no autograd graph) through the model's own weights, restored on
    exit: algorithms that differentiate with respect to patch weights only need this.

    Example:
        >>> import torch
        >>> layer = torch.nn.Linear(2, 2)
        >>> with frozen_weights(layer):
        ...     layer.weight.requires_grad
        False
        >>> layer.weight.requires_grad
        True
    """
    flags = [(p, p.requires_grad) for p in model.parameters()]
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
