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
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import torch
from torch import Tensor

from harness.engine.device import resolve_device
from harness.engine.graph import DestinationGroup, Edge, EdgeGraph, SourceGroup

# Architectures whose head outputs are normalised after the hook, so sources do not add up.
_POST_NORM_ARCHITECTURES = ("Olmo2ForCausalLM", "Olmo3ForCausalLM")


@dataclass
class _Recording:
    """State of a forward pass that only records source activations."""

    buffer: Tensor  # [batch, n_sources, pos, d_model]


@dataclass
class _Patching:
    """State of one patched forward pass.

    When gradients are wanted, the pass's taps and mixes form one chain of autograd nodes
    in forward order, linked by a *token* (one element, expanded to the size of ``delta``
    and ``weights`` together). Backward walks the chain in reverse and carries one real
    buffer along it, ``∂/∂delta`` and ``∂/∂weights`` side by side: each mix adds its
    prefix of ``∂/∂delta`` and writes its block of ``∂/∂weights``; each tap reads its own
    slots, after every mix downstream of it has run. So a backward costs one matmul pair
    per destination group and one read per source group, instead of one gradient per
    (destination, source group) pair.
    """

    patch: Tensor  # [batch or 1, n_sources, pos, d_model]
    weights: Tensor  # [n_masks (1 or batch), n_edges]
    delta: Tensor  # [batch, n_sources, pos, d_model], patch − current, no grad
    resid_start: Tensor | None  # [batch or 1, pos, d_model], replaces Resid Start's value
    token: Tensor | None = None  # the chain's link; None when no gradient is wanted
    # one element every token expands (each link's token is a view of its own)
    _token_base: Tensor | None = field(default=None, repr=False)
    # the buffer backward walks now, with its two views (made once, not at every link)
    _views: tuple[Tensor, Tensor, Tensor] | None = field(default=None, repr=False)

    @property
    def buffer_size(self) -> int:
        """Elements of the gradient buffer: ``∂/∂delta`` then ``∂/∂weights``."""
        return self.delta.numel() + self.weights.numel()

    def new_token(self) -> Tensor:
        """A one-element tensor expanded to the gradient buffer's size (no memory)."""
        if self._token_base is None:
            self._token_base = torch.empty((), device=self.delta.device, dtype=self.delta.dtype)
        return self._token_base.expand(self.buffer_size)

    def gradients(self, buffer: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
        """``(buffer, ∂/∂delta view, ∂/∂weights view)``; a zero buffer when ``None``."""
        if self._views is not None and self._views[0] is buffer:
            return self._views
        if buffer is None:  # the chain's last link: the buffer starts here
            buffer = torch.zeros(self.buffer_size, device=self.delta.device, dtype=self.delta.dtype)
        n_delta = self.delta.numel()
        self._views = (
            buffer,
            buffer[:n_delta].view(self.delta.shape),
            buffer[n_delta:].view(self.weights.shape),
        )
        return self._views

    def release_gradients(self) -> None:
        """Drop the buffer backward walked (the chain's first link calls this last)."""
        self._views = None


class _ChainStart(torch.autograd.Function):
    """Starts a pass's chain; its backward hands the filled ``∂/∂weights`` to the weights."""

    @staticmethod
    def forward(ctx, anchor, state, anchor_is_weights):  # type: ignore[override]
        # anchor: the weights when they require grad, else a scalar leaf that does
        ctx.set_materialize_grads(False)
        ctx.state, ctx.anchor_is_weights = state, anchor_is_weights
        ctx.save_for_backward(state.weights)  # unpacked in backward: in-place edits raise
        return state.new_token()

    @staticmethod
    def backward(ctx, grad_token):  # type: ignore[override]
        ctx.saved_tensors  # noqa: B018 (the version check)
        grad_weights = ctx.state.gradients(grad_token)[2] if ctx.anchor_is_weights else None
        ctx.state.release_gradients()
        return grad_weights, None, None


class _SourceTap(torch.autograd.Function):
    """Writes a source group's ``patch − current`` into its slots of ``delta``.

    Backward: ``∂/∂current = −∂/∂delta[slots]`` (through ``W_O`` for per-head sources,
    whose per-head outputs are ``z @ W_O``).
    """

    @staticmethod
    def forward(ctx, value, w_o, token, state, first, end):  # type: ignore[override]
        # value: [batch, pos, d_model], or z [batch, pos, head, d_head] when w_o is given
        ctx.set_materialize_grads(False)
        _write_delta(state.patch, state.delta, value, w_o, first, end)
        ctx.state, ctx.first, ctx.end = state, first, end
        # z is needed only for W_O's own gradient (saving it would keep it alive otherwise)
        ctx.save_for_backward(value if w_o is not None and w_o.requires_grad else None, w_o)
        return state.new_token()

    @staticmethod
    def backward(ctx, grad_token):  # type: ignore[override]
        z, w_o = ctx.saved_tensors
        grad_value = grad_w_o = None
        if grad_token is not None:
            _, grad_delta, _ = ctx.state.gradients(grad_token)
            slots = grad_delta[:, ctx.first : ctx.end]  # [batch, n_slots, pos, d_model]
            if w_o is None:
                if ctx.needs_input_grad[0]:
                    grad_value = -slots[:, 0]
            else:
                if ctx.needs_input_grad[0]:  # [batch, head, pos, d_head] -> [b, pos, head, d_h]
                    grad_value = -torch.matmul(slots, w_o.transpose(1, 2)).transpose(1, 2)
                if ctx.needs_input_grad[1]:
                    grad_w_o = -torch.einsum("bphd,bhpm->hdm", z, slots)
        return grad_value, grad_w_o, grad_token, None, None, None


class _DestinationMix(torch.autograd.Function):
    """``Σ_s w[n, r, s] · delta[b, s, p, :]`` for one destination group (its prefix of
    upstream slots, its block of weights)."""

    @staticmethod
    def forward(ctx, token, state, group):  # type: ignore[override]
        ctx.set_materialize_grads(False)
        weights = _block(state.weights, group)  # [n_masks, rows, n_up]
        delta = state.delta[:, : group.n_upstream]  # [batch, n_up, pos, d_model]
        ctx.state, ctx.group, ctx.weights, ctx.delta = state, group, weights, delta
        return _mix(weights, delta), state.new_token()

    @staticmethod
    def backward(ctx, grad_out, grad_token):  # type: ignore[override]
        buffer, grad_delta, grad_weights = ctx.state.gradients(grad_token)
        if grad_out is None:
            return buffer, None, None
        weights, delta = ctx.weights, ctx.delta
        batch, n_up, pos, d_model = delta.shape
        rows = weights.shape[1]
        flat = delta.reshape(batch, n_up, pos * d_model)
        grad = grad_out.transpose(1, 2).reshape(batch, rows, pos * d_model)
        weights_block = _block(grad_weights, ctx.group)
        acc = grad_delta[:, :n_up].view(batch, n_up, pos * d_model)
        if weights.shape[0] == 1:
            # per-example products summed (an einsum over b and k copies both operands)
            torch.sum(torch.bmm(grad, flat.transpose(1, 2)), 0, out=weights_block[0])
            acc.baddbmm_(weights[0].t().expand(batch, n_up, rows), grad)
        else:
            weights_block.copy_(torch.bmm(grad, flat.transpose(1, 2)))
            acc.baddbmm_(weights.transpose(1, 2), grad)
        return buffer, None, None


def _block(weights: Tensor, group: DestinationGroup) -> Tensor:
    """A destination group's ``[n_masks, rows, n_up]`` view of ``[n_masks, n_edges]``."""
    start = group.edge_offset
    return weights[:, start : start + group.n_edges].view(-1, len(group.nodes), group.n_upstream)


def _source_value(value: Tensor, w_o: Tensor | None) -> Tensor:
    """A source group's outputs in slot layout ``[batch, n_slots, pos, d_model]``: from
    ``[batch, pos, d_model]``, or per head from z ``[batch, pos, head, d_head]`` and ``w_o``
    ``[head, d_head, d_model]``."""
    if w_o is None:
        return value[:, None]
    return torch.matmul(value.transpose(1, 2), w_o)


def _write_delta(patch, delta, value, w_o, first, end) -> None:
    """``delta[:, first:end] = patch[:, first:end] − value`` in slot layout; a patch of
    ``batch / r`` examples is tiled ``r`` times along the batch."""
    with torch.no_grad():
        patch, value, delta = patch[:, first:end], _source_value(value, w_o), delta[:, first:end]
        if patch.shape[0] not in (1, delta.shape[0]):
            tiles = delta.shape[0] // patch.shape[0]
            value = value.view(tiles, -1, *value.shape[1:])
            delta = delta.view(tiles, -1, *delta.shape[1:])
        torch.sub(patch, value, out=delta)


def _mix(weights: Tensor, delta: Tensor) -> Tensor:
    """``[n_masks, rows, n_up] × [batch, n_up, pos, d] -> [batch, pos, rows, d]``."""
    batch, n_up, pos, d_model = delta.shape
    flat = delta.reshape(batch, n_up, pos * d_model)
    shared = weights.shape[0] == 1
    mixed = torch.matmul(weights[0], flat) if shared else torch.bmm(weights, flat)
    # mixed: [batch, rows, pos × d_model]
    return mixed.view(batch, -1, pos, d_model).transpose(1, 2)


PASS_BYTES = 256 * 2**20
"""At most this much patch buffer in one forward pass of :meth:`PatchableModel.circuit_logits`
(measured on tracr tasks, 1 CPU thread: 22 circuits in one pass are 1.4-2.5x faster than
one per pass; GPT-2-sized batches exceed it and go one per pass)."""


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

        transformer_lens's ``use_attn_result`` is not among them (per-head outputs come
        from ``hook_z``) and is left as it is; where it is on, every forward pays for a
        ``[batch, pos, head, d_head, d_model]`` product (IOI on CPU: 1.7× the step time).

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
        n_kv_heads = getattr(cfg, "n_key_value_heads", None)
        if not separate_qkv and n_kv_heads is not None and n_kv_heads != cfg.n_heads:
            raise ValueError(
                f"grouped-query attention ({n_kv_heads} key/value heads for {cfg.n_heads} "
                "query heads) has no combined per-head input: use separate_qkv=True"
            )
        if device is not None:
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
            patch: ``[batch or 1, n_sources, pos, d_model]`` patch values of the sources
                (treated as constants); a patch of ``batch / r`` examples is tiled ``r``
                times along the batch (``r`` trials of the same prompts, without a copy).
            weights: ``[n_edges]``, ``[1, n_edges]`` or ``[batch, n_edges]`` patch weights
                (0 keeps an edge's live value, 1 replaces it by the patch value); may
                require grad.
            resid_start: ``[batch or 1, pos, d_model]`` (or tiled like ``patch``): if
                given, the value of the ``Resid Start`` source itself (the embedding) is
                replaced by it.

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
        for name, given in (("patch", patch), ("resid_start", resid_start)):
            if given is not None and batch % given.shape[0]:
                raise ValueError(
                    f"{name} has {given.shape[0]} examples, which do not tile a batch of {batch}"
                )
        if resid_start is not None and resid_start.shape[0] not in (1, batch):
            resid_start = resid_start.repeat(batch // resid_start.shape[0], 1, 1)
        delta = torch.empty(
            batch,
            self.graph.n_sources,
            pos,
            self.model.cfg.d_model,
            device=self.device,
            dtype=self.dtype,
        )
        state = _Patching(patch.detach(), weights, delta, resid_start)
        if torch.is_grad_enabled():
            if weights.requires_grad:
                state.token = _ChainStart.apply(weights, state, True)
            elif any(p.requires_grad for p in self.model.parameters()):
                anchor = torch.empty((), device=self.device, requires_grad=True)
                state.token = _ChainStart.apply(anchor, state, False)
        self._state = state
        try:
            return self.model(tokens)
        finally:
            self._state = None
            state.token = None  # the chain's nodes hold the state: no reference cycle

    def circuit_logits(
        self, tokens: Tensor, patch: Tensor, weights: Tensor, max_pass_bytes: int | None = None
    ) -> Iterator[Tensor]:
        """Logits of ``tokens`` under each of several circuits, in order, without grad.

        Several circuits go through one forward pass, as tiled copies of the batch with one
        circuit's weights each, while the ``[copies × batch, n_sources, pos, d_model]``
        patch buffer stays within ``max_pass_bytes`` (default :data:`PASS_BYTES`); one
        circuit per pass beyond it.

        Args:
            tokens: ``[batch, pos]`` token ids.
            patch: ``[batch or 1, n_sources, pos, d_model]`` patch values.
            weights: ``[n_circuits, n_edges]`` patch weights (1 ablates an edge).

        Yields:
            ``[batch, pos, d_vocab_out]`` logits, one tensor per circuit.
        """
        batch = tokens.shape[0]
        per_pass = self.circuits_per_pass(tokens, weights.shape[0], max_pass_bytes)
        for start in range(0, weights.shape[0], per_pass):
            chunk = weights[start : start + per_pass]  # [k, n_edges]
            k = chunk.shape[0]
            with torch.no_grad():  # not around the yield: the caller's grad mode stays its own
                logits = self.forward_patched(  # [k * batch, pos, d_vocab_out]
                    tokens.repeat(k, 1), patch, chunk.repeat_interleave(batch, dim=0)
                )
            yield from logits.view(k, batch, *logits.shape[1:])

    def circuits_per_pass(
        self, tokens: Tensor, n_circuits: int, max_pass_bytes: int | None = None
    ) -> int:
        """How many circuits :meth:`circuit_logits` evaluates in one forward pass over
        ``tokens`` ``[batch, pos]`` (at least 1, at most ``n_circuits``)."""
        batch, pos = tokens.shape
        per_copy = batch * self.graph.n_sources * pos * self.model.cfg.d_model
        limit = PASS_BYTES if max_pass_bytes is None else max_pass_bytes
        return max(1, min(n_circuits, limit // max(1, per_copy * self.dtype.itemsize)))

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
            w_o = attn.W_O if attn is not None else None  # output is then z
            if isinstance(state, _Recording):
                with torch.no_grad():
                    state.buffer[:, first:end] = _source_value(output, w_o)
                return None
            replaced = None
            if is_resid_start and state.resid_start is not None:
                output = replaced = state.resid_start.expand_as(output).to(output.dtype)
            if state.token is None:
                _write_delta(state.patch, state.delta, output, w_o, first, end)
            else:
                state.token = _SourceTap.apply(output, w_o, state.token, state, first, end)
            return replaced

        return hook

    def _destination_hook(self, group: DestinationGroup):
        def hook(module, inputs, output):
            state = self._state
            if not isinstance(state, _Patching):
                return None
            if state.token is None:
                mixed = _mix(_block(state.weights, group), state.delta[:, : group.n_upstream])
            else:
                mixed, state.token = _DestinationMix.apply(state.token, state, group)
            # mixed: [batch, pos, rows, d_model]
            return output + (mixed if group.has_head_dim else mixed[:, :, 0])

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
