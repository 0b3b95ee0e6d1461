"""Mask functions: from learnable logits to edge masks in [0, 1].

The hard concrete distribution (Louizos et al. 2018) with the constants Subnetwork
Probing uses (Cao et al. 2021): stretch interval (−0.1, 1.1), temperature 2/3, and an
initial logit of log 5, for which the deterministic mask is 0.9.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

STRETCH_LOW, STRETCH_HIGH = -0.1, 1.1
TEMPERATURE = 2 / 3
INIT_LOGIT = math.log(5.0)  # deterministic hard-concrete mask 0.9
MASK_FNS = ("hard_concrete", "sigmoid", "none")
_UNIFORM_EPS = 1e-4
# log-odds shift giving P(gate > 0) for the stretched distribution
_L0_SHIFT = TEMPERATURE * math.log(-STRETCH_LOW / STRETCH_HIGH)


def check_mask_fn(mask_fn: str | None) -> str:
    """The canonical name of a mask function (``None`` means ``"none"``)."""
    name = "none" if mask_fn is None else mask_fn
    if name not in MASK_FNS:
        raise ValueError(f"mask_fn {mask_fn!r} is not one of {', '.join(MASK_FNS)} (or None)")
    return name


def hard_concrete_sample(
    logits: Tensor, n_samples: int = 1, generator: torch.Generator | None = None
) -> Tensor:
    """Reparameterised hard-concrete samples: ``[n] -> [n_samples, n]``.

    Example:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> hard_concrete_sample(torch.zeros(3), 2, g).shape
        torch.Size([2, 3])
    """
    return hard_concrete_from_noise(logits, uniform_noise(logits, n_samples, generator))


def uniform_noise(logits: Tensor, n_samples: int, generator: torch.Generator | None) -> Tensor:
    """The uniform draws behind ``n_samples`` hard-concrete samples: ``[n_samples, *logits]``,
    kept off 0 and 1 so that their log-odds stay finite.

    Example:
        >>> import torch
        >>> noise = uniform_noise(torch.zeros(4), 3, torch.Generator().manual_seed(0))
        >>> tuple(noise.shape), bool(((noise > 0) & (noise < 1)).all())
        ((3, 4), True)
    """
    noise = torch.rand(
        (n_samples, *logits.shape), generator=generator, device=logits.device, dtype=logits.dtype
    )
    return noise.clamp_(_UNIFORM_EPS, 1 - _UNIFORM_EPS)


def hard_concrete_from_noise(logits: Tensor, noise: Tensor) -> Tensor:
    """Hard-concrete samples from uniform ``noise`` (broadcast against ``logits``).

    Example:
        >>> import torch
        >>> hard_concrete_from_noise(torch.zeros(2), torch.full((1, 2), 0.5)).tolist()
        [[0.5, 0.5]]
    """
    concrete = torch.sigmoid((noise.log() - (-noise).log1p() + logits) / TEMPERATURE)
    return (concrete * (STRETCH_HIGH - STRETCH_LOW) + STRETCH_LOW).clamp(0.0, 1.0)


def hard_concrete_deterministic(logits: Tensor) -> Tensor:
    """The noise-free hard-concrete mask used at evaluation time."""
    return (torch.sigmoid(logits) * (STRETCH_HIGH - STRETCH_LOW) + STRETCH_LOW).clamp(0.0, 1.0)


def gate_open_probability(logits: Tensor) -> Tensor:
    """P(hard-concrete gate > 0), the differentiable expected L0 norm per edge."""
    return torch.sigmoid(logits - _L0_SHIFT)


def sample_masks(
    mask_fn: str, logits: Tensor, n_samples: int, generator: torch.Generator | None
) -> Tensor:
    """Training-time masks ``[n_samples or 1, n]`` (only hard concrete is random)."""
    if mask_fn == "hard_concrete":
        return hard_concrete_sample(logits, n_samples, generator)
    if mask_fn == "sigmoid":
        return torch.sigmoid(logits)[None]
    return logits[None]


def deterministic_masks(mask_fn: str, logits: Tensor) -> Tensor:
    """Evaluation-time masks ``[n]``."""
    if mask_fn == "hard_concrete":
        return hard_concrete_deterministic(logits)
    if mask_fn == "sigmoid":
        return torch.sigmoid(logits)
    return logits


def mask_probability(mask_fn: str, logits: Tensor) -> Tensor:
    """The probability-like value of each mask being on (for penalties)."""
    if mask_fn == "hard_concrete":
        return gate_open_probability(logits)
    if mask_fn == "sigmoid":
        return torch.sigmoid(logits)
    return logits


def drop_masks(masks: Tensor, p: float, generator: torch.Generator | None) -> Tensor:
    """Dropout on masks, as the reference applies it (``torch.nn.Dropout`` in training
    mode): each mask is zeroed with probability ``p`` and the others are scaled by
    ``1 / (1 − p)``, so a kept mask can exceed 1 (it then extrapolates past the patch
    value).

    Example:
        >>> import torch
        >>> dropped = drop_masks(torch.full((1, 1000), 0.5), 0.5, torch.Generator().manual_seed(0))
        >>> sorted(set(dropped.flatten().tolist()))
        [0.0, 1.0]
    """
    if p <= 0:
        return masks
    keep = torch.rand(masks.shape, generator=generator, device=masks.device) >= p
    return masks * keep.to(masks.dtype) / (1 - p)
