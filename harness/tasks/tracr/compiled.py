"""A compiled program as transformer_lens weights: what a weights file holds.

:class:`CompiledTracr` is made by :func:`harness.tasks.tracr.convert.convert_assembled`
from tracr's compiled model, written and read as plain data (:meth:`CompiledTracr.payload`,
loadable with ``weights_only=True``; :mod:`harness.tasks.tracr.weight_files`), and turned
into a ``HookedTransformer`` by :meth:`CompiledTracr.to_model`. ``CACHE_FORMAT`` is the
version of that plain data: a cached file of another format is compiled again.

Example:
    >>> compiled = CompiledTracr("p", "1.0.0", {}, {}, {"BOS": 0, "x": 3}, None, (), ())
    >>> CompiledTracr.from_payload(compiled.payload()) == compiled
    True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from harness.tasks.tracr.program import BOS

CACHE_FORMAT = 1


@dataclass(frozen=True)
class CompiledTracr:
    """A compiled program as transformer_lens weights: what the cache holds.

    Attributes:
        program: The program's name.
        tracr_version: The ``tracr-pypi`` version that compiled it.
        config: ``HookedTransformerConfig`` keyword arguments.
        state_dict: The model's parameters (CPU tensors).
        input_encoding: Input value (``1``, ``"x"``, ``"BOS"``...) -> token id.
        output_encoding: Output value -> output class id (categorical), ``None`` if numerical.
        residual_labels: tracr's labels of the residual dimensions.
        output_labels: The labels the unembedding reads, one per output class.
        derived: The ground truths derived from these weights (plain data, see
            :func:`harness.tasks.tracr.tasks.circuits_payload`) where the file ships them
            (the package's files do), else ``None`` (derived at load).
    """

    program: str
    tracr_version: str
    config: dict[str, Any]
    state_dict: dict[str, Tensor]
    input_encoding: dict[Any, int]
    output_encoding: dict[Any, int] | None
    residual_labels: tuple[str, ...]
    output_labels: tuple[str, ...]
    derived: dict[str, Any] | None = None

    def encode(self, values: list[Any]) -> list[int]:
        """Token ids of ``[BOS, *values]``.

        Example:
            >>> compiled = CompiledTracr("p", "1.0.0", {}, {}, {"BOS": 0, "x": 3}, None, (), ())
            >>> compiled.encode(["x", "x"])
            [0, 3, 3]
        """
        return [self.input_encoding[BOS]] + [self.input_encoding[v] for v in values]

    def to_model(self, device: str | torch.device = "cpu") -> Any:
        """A ``HookedTransformer`` with these weights, on ``device``."""
        from transformer_lens import HookedTransformer, HookedTransformerConfig

        model = HookedTransformer(HookedTransformerConfig(**self.config))
        missing, unexpected = model.load_state_dict(self.state_dict, strict=False)
        params = dict(model.named_parameters())
        if unexpected or any(name in params for name in missing):
            raise ValueError(f"weights do not fit the model: {missing=}, {unexpected=}")
        return model.to(device, print_details=False).eval()

    def payload(self) -> dict[str, Any]:
        """Plain data for ``torch.save`` (loadable with ``weights_only=True``)."""
        payload = {
            "format": CACHE_FORMAT,
            "program": self.program,
            "tracr_version": self.tracr_version,
            "config": self.config,
            "state_dict": self.state_dict,
            "encodings": {"input": self.input_encoding, "output": self.output_encoding},
            "residual_labels": list(self.residual_labels),
            "output_labels": list(self.output_labels),
        }
        if self.derived is not None:
            payload["derived"] = self.derived
        return payload

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> CompiledTracr:
        return cls(
            program=payload["program"],
            tracr_version=payload["tracr_version"],
            config=payload["config"],
            state_dict=payload["state_dict"],
            input_encoding=payload["encodings"]["input"],
            output_encoding=payload["encodings"]["output"],
            residual_labels=tuple(payload["residual_labels"]),
            output_labels=tuple(payload["output_labels"]),
            derived=payload.get("derived"),
        )
